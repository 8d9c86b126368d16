"""``/ws/bridge``: the control channel between the gateway and the bridge (bridge-telegram).

The bridge connects over loopback with ``Authorization: Bearer <REALTIME_CONTROL_SECRET>`` and
sends ``bridge.hello`` first. Messages are JSON text frames:

=====================  ==============  ========================================================
type                   direction       meaning
=====================  ==============  ========================================================
``bridge.hello``       bridge → gw     ``{bridge_id, status}``; the gateway replays unacknowledged
                                       events of every call, then answers ``hello.ok``
``bridge.status``      bridge → gw     ``{status}``: readiness as the bridge sees it
``call.prepare``       gw → bridge     ``{id, call: {call_id, bridge_id, telegram_user_id}}``
``call.prepare.result`` bridge → gw    ``{reply_to, allowed, reason?, context: {parts: [...]}}``
``call.event``         gw → bridge     ``{call_id, event}``: every logged event, in ``seq`` order
``call.ack``           bridge → gw     ``{call_id, seq}``: the bridge holds events up to ``seq``
``call.hangup``        bridge → gw     ``{call_id?, reason}``: end the call (``/hangup``)
=====================  ==============  ========================================================

Delivery is at-least-once and ordered: events are replayed from the call's log after any
reconnect until the bridge acknowledges them, so nothing logged is lost across restarts of
either side. The bridge de-duplicates by ``(call_id, seq)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from bridgehost.gateway.errors import ApiError
from bridgehost.gateway.store import GatewayStore, iso, utc_now
from bridgehost.state import CallLog, StatePaths

log = structlog.get_logger("bridgehost.gateway.bridge")

HELLO_TIMEOUT_S = 5.0
HEARTBEAT_S = 15.0


@dataclass
class BridgePeer:
    """One connected bridge."""

    bridge_id: str
    socket: web.WebSocketResponse
    status: dict[str, Any] = field(default_factory=dict)
    connected_at: str = field(default_factory=lambda: iso(utc_now()) or "")
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, message: dict[str, Any]) -> bool:
        """Send one frame; False if the socket is gone."""
        if self.socket.closed:
            return False
        try:
            async with self.send_lock:
                await self.socket.send_json(message)
        except (ConnectionError, RuntimeError):
            return False
        return True


@dataclass(frozen=True)
class PrepareResult:
    """The bridge's answer to ``call.prepare``."""

    allowed: bool
    reason: str | None
    context: dict[str, Any]


class BridgeHub:
    """Accepts bridge connections, forwards call events, and asks bridges to prepare calls."""

    def __init__(
        self,
        store: GatewayStore,
        paths: StatePaths,
        *,
        max_message_bytes: int,
        authorize: Callable[[web.Request], bool],
    ) -> None:
        self.store = store
        self.paths = paths
        self.max_message_bytes = max_message_bytes
        self.authorize = authorize
        self.peers: dict[str, BridgePeer] = {}
        self._pending: dict[str, asyncio.Future[PrepareResult]] = {}
        self.on_hangup: Callable[[str | None, str], Awaitable[None]] | None = None
        self._closing = False

    def connected(self, bridge_id: str) -> bool:
        """Whether that bridge has a live control channel."""
        peer = self.peers.get(bridge_id)
        return peer is not None and not peer.socket.closed

    # -- the socket ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``GET /ws/bridge``: authenticate, upgrade, then serve the peer until it leaves."""
        if not self.authorize(request):
            raise ApiError(
                401,
                "unauthorized",
                "The control secret is missing or wrong. Set REALTIME_CONTROL_SECRET "
                "to the same value for bridge-gateway and bridge-telegram.",
            )
        socket = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=self.max_message_bytes)
        await socket.prepare(request)
        peer = await self._hello(socket)
        if peer is None:
            return socket
        try:
            async for message in socket:
                if message.type is not WSMsgType.TEXT:
                    continue
                await self._dispatch(peer, message.data)
        finally:
            if self.peers.get(peer.bridge_id) is peer:
                del self.peers[peer.bridge_id]
                level = log.info if self._closing else log.warning
                level("bridge disconnected", bridge_id=peer.bridge_id)
        return socket

    async def _hello(self, socket: web.WebSocketResponse) -> BridgePeer | None:
        try:
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                first = await socket.receive_json()
        except (TimeoutError, ValueError, TypeError):
            await socket.close(code=4001, message=b"expected bridge.hello")
            return None
        bridge_id = first.get("bridge_id") if isinstance(first, dict) else None
        if first.get("type") != "bridge.hello" or not isinstance(bridge_id, str) or not bridge_id:
            await socket.close(code=4001, message=b"expected bridge.hello")
            return None
        old = self.peers.get(bridge_id)
        if old is not None:
            await old.socket.close(code=4008, message=b"replaced")
        peer = BridgePeer(bridge_id, socket, status=first.get("status") or {})
        self.peers[bridge_id] = peer
        log.info("bridge connected", bridge_id=bridge_id)
        await self._replay(peer)
        await peer.send({"type": "hello.ok"})
        return peer

    async def _replay(self, peer: BridgePeer) -> None:
        for record in self.store.calls_awaiting_bridge(peer.bridge_id):
            path = self.paths.call_log(record.call_id)
            if not path.exists():
                continue
            events = await asyncio.to_thread(lambda p=path: CallLog(p).read().events)
            for event in events:
                if event.get("seq", 0) > record.bridge_acked_seq:
                    await peer.send(
                        {"type": "call.event", "call_id": record.call_id, "event": event}
                    )

    async def _dispatch(self, peer: BridgePeer, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            log.warning("bridge sent malformed JSON", bridge_id=peer.bridge_id)
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "bridge.status" and isinstance(message.get("status"), dict):
            peer.status = message["status"]
        elif kind == "call.prepare.result":
            self._resolve(message)
        elif kind == "call.ack":
            call_id, seq = message.get("call_id"), message.get("seq")
            if isinstance(call_id, str) and isinstance(seq, int):
                self.store.ack_bridge(call_id, seq)
        elif kind == "call.hangup" and self.on_hangup is not None:
            call_id = message.get("call_id")
            reason = message.get("reason") if isinstance(message.get("reason"), str) else None
            await self.on_hangup(
                call_id if isinstance(call_id, str) else None, (reason or "telegram_hangup")[:64]
            )
        else:
            log.warning("bridge sent an unknown message", bridge_id=peer.bridge_id, type=kind)

    def _resolve(self, message: dict[str, Any]) -> None:
        future = self._pending.get(message.get("reply_to", ""))
        if future is None or future.done():
            return
        context = message.get("context")
        reason = message.get("reason")
        future.set_result(
            PrepareResult(
                allowed=message.get("allowed") is True,
                reason=reason if isinstance(reason, str) else None,
                context=context if isinstance(context, dict) else {},
            )
        )

    # -- requests --------------------------------------------------------------------------

    async def prepare(
        self, bridge_id: str, call: dict[str, Any], timeout_s: float
    ) -> PrepareResult:
        """Ask the bridge to prepare a call; raise 503 when absent, 504 on timeout."""
        peer = self.peers.get(bridge_id)
        if peer is None or peer.socket.closed:
            raise bridge_not_connected()
        request_id = secrets.token_hex(8)
        future: asyncio.Future[PrepareResult] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            if not await peer.send({"type": "call.prepare", "id": request_id, "call": call}):
                raise bridge_not_connected()
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise ApiError(
                504,
                "prepare_timeout",
                "The bridge did not prepare the call in time (it reads the bound "
                "Codex thread). Try again; if it keeps happening, check "
                "journalctl -u bridge-telegram.",
            ) from None
        finally:
            self._pending.pop(request_id, None)

    async def forward(self, bridge_id: str, call_id: str, event: dict[str, Any]) -> None:
        """Send one logged event to the bridge if connected (replayed later otherwise)."""
        peer = self.peers.get(bridge_id)
        if peer is not None:
            await peer.send({"type": "call.event", "call_id": call_id, "event": event})

    async def close_all(self) -> None:
        """Close every bridge socket (gateway shutdown)."""
        self._closing = True
        for peer in list(self.peers.values()):
            with contextlib.suppress(Exception):
                await peer.socket.close(code=1001, message=b"gateway stopping")

    def snapshot(self) -> list[dict[str, Any]]:
        """Connected bridges for the details route."""
        return [
            {"bridge_id": p.bridge_id, "connected_at": p.connected_at, "status": p.status}
            for p in self.peers.values()
            if not p.socket.closed
        ]


def bridge_not_connected() -> ApiError:
    """The 503 every route gives when the bridge is away."""
    return ApiError(
        503,
        "bridge_not_connected",
        "The bridge control channel is not connected. Start bridge-telegram "
        "(systemctl start bridge-telegram) and check REALTIME_CONTROL_SECRET.",
    )
