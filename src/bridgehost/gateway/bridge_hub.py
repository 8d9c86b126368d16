"""``/ws/bridge``: the gateway's side of the control channel to the bridge (bridge-telegram).

The frames, their fields and the delivery rules are in :mod:`bridgehost.protocol.bridge`. The
gateway authenticates the bridge (``Authorization: Bearer <REALTIME_CONTROL_SECRET>``), expects
``bridge.hello`` first, replays every unacknowledged event, answers ``hello.ok``, and then serves
the bridge's frames. A frame that breaks the protocol closes the channel with a 4xxx code and
the problem as the reason; a frame of a type this gateway does not know is logged and ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import WSMsgType, web
from pydantic import ValidationError

from bridgehost.basics import iso, utc_now
from bridgehost.gateway.domain_errors import BridgeNotConnected, PrepareTimeout
from bridgehost.gateway.errors import ApiError
from bridgehost.protocol.bridge import (
    CLOSE_BAD_FRAME,
    CLOSE_BAD_HELLO,
    CLOSE_REPLACED,
    BridgeHello,
    BridgeStatus,
    CallAck,
    CallDelegateProgress,
    CallDelegateResult,
    CallEventFrame,
    CallHangup,
    CallNote,
    CallPrepare,
    CallPrepareResult,
    Frame,
    FrameError,
    HelloOk,
    LoggedEvent,
    PrepareCall,
    UnknownFrame,
    close_reason,
    parse_from_bridge,
    parse_hello,
)
from bridgehost.protocol.end_reasons import EndReason
from bridgehost.state import CallLog, StatePaths
from bridgehost.state.gateway_store import GatewayStore

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

    async def send(self, frame: Frame) -> bool:
        """Send one frame; False if the socket is gone."""
        if self.socket.closed:
            return False
        try:
            async with self.send_lock:
                await self.socket.send_str(frame.to_json())
        except (ConnectionError, RuntimeError):
            return False
        return True


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
        self._pending: dict[str, asyncio.Future[CallPrepareResult]] = {}
        self.on_hangup: Callable[[str | None, str], Awaitable[None]] | None = None
        #: Delegation frames (``call.delegate.progress``/``.result``); see gateway.delegations.
        self.on_delegation_frame: Callable[[Frame], Awaitable[None]] | None = None
        #: ``call.note`` frames (a chat message typed during a call); see gateway.call_notes.
        self.on_note: Callable[[CallNote], Awaitable[object]] | None = None
        #: A bridge said hello (after the replay): re-send what it may have missed.
        self.on_connected: Callable[[str], Awaitable[None]] | None = None
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
                try:
                    await self._dispatch(peer, message.data)
                except FrameError as exc:
                    log.warning(
                        "bridge broke the protocol", bridge_id=peer.bridge_id, error=str(exc)
                    )
                    await socket.close(
                        code=CLOSE_BAD_FRAME, message=close_reason(str(exc)).encode()
                    )
        finally:
            if self.peers.get(peer.bridge_id) is peer:
                del self.peers[peer.bridge_id]
                level = log.info if self._closing else log.warning
                level("bridge disconnected", bridge_id=peer.bridge_id)
        return socket

    async def _hello(self, socket: web.WebSocketResponse) -> BridgePeer | None:
        try:
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                first = await socket.receive()
        except TimeoutError:
            await socket.close(code=CLOSE_BAD_HELLO, message=b"expected bridge.hello in time")
            return None
        if first.type is not WSMsgType.TEXT:
            await socket.close(code=CLOSE_BAD_HELLO, message=b"expected bridge.hello as text")
            return None
        try:
            hello = parse_hello(first.data)
        except FrameError as exc:
            log.warning("bridge sent a bad hello", error=str(exc))
            await socket.close(code=CLOSE_BAD_HELLO, message=close_reason(str(exc)).encode())
            return None
        old = self.peers.get(hello.bridge_id)
        if old is not None:
            await old.socket.close(code=CLOSE_REPLACED, message=b"replaced")
        peer = BridgePeer(hello.bridge_id, socket, status=dict(hello.status))
        self.peers[hello.bridge_id] = peer
        log.info("bridge connected", bridge_id=hello.bridge_id)
        await self._replay(peer)
        await peer.send(HelloOk())
        if self.on_connected is not None:
            await self.on_connected(peer.bridge_id)
        return peer

    async def _replay(self, peer: BridgePeer) -> None:
        for record in self.store.calls_awaiting_bridge(peer.bridge_id):
            path = self.paths.call_log(record.call_id)
            if not path.exists():
                continue
            log_read = await asyncio.to_thread(CallLog(path).read)
            for event in log_read.events:
                seq = event.get("seq")
                if not (isinstance(seq, int) and seq > record.bridge_acked_seq):
                    continue
                try:
                    frame = _event_frame(record.call_id, event)
                except ValidationError:  # a line damaged from outside: the rest still goes
                    log.warning("skipped a damaged logged event", call_id=record.call_id, seq=seq)
                    continue
                await peer.send(frame)

    async def _dispatch(self, peer: BridgePeer, data: str) -> None:
        """Act on one frame; :class:`FrameError` if it breaks the protocol."""
        try:
            frame = parse_from_bridge(data)
        except UnknownFrame as exc:
            log.warning("bridge sent an unknown message", bridge_id=peer.bridge_id, type=exc.kind)
            return
        if isinstance(frame, BridgeStatus):
            peer.status = dict(frame.status)
        elif isinstance(frame, CallPrepareResult):
            future = self._pending.get(frame.reply_to)
            if future is not None and not future.done():
                future.set_result(frame)
        elif isinstance(frame, CallAck):
            self.store.ack_bridge(frame.call_id, frame.seq)
        elif isinstance(frame, CallHangup):
            if self.on_hangup is not None:
                await self.on_hangup(frame.call_id, frame.reason or EndReason.TELEGRAM_HANGUP)
        elif isinstance(frame, CallNote):
            if self.on_note is not None:
                await self.on_note(frame)
        elif isinstance(frame, CallDelegateProgress | CallDelegateResult):
            if self.on_delegation_frame is not None:
                await self.on_delegation_frame(frame)
        elif isinstance(frame, BridgeHello):
            raise FrameError("bridge.hello was already sent on this channel")

    # -- requests --------------------------------------------------------------------------

    async def prepare(
        self, bridge_id: str, call: dict[str, Any], timeout_s: float
    ) -> CallPrepareResult:
        """Ask the bridge to prepare a call; raise 503 when absent, 504 on timeout."""
        peer = self.peers.get(bridge_id)
        if peer is None or peer.socket.closed:
            raise BridgeNotConnected()
        request_id = secrets.token_hex(8)
        future: asyncio.Future[CallPrepareResult] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            frame = CallPrepare(id=request_id, call=PrepareCall.model_validate(call))
            if not await peer.send(frame):
                raise BridgeNotConnected()
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise PrepareTimeout() from None
        finally:
            self._pending.pop(request_id, None)

    async def send_to(self, bridge_id: str, frame: Frame) -> bool:
        """Send one frame to that bridge; False when it is not connected."""
        peer = self.peers.get(bridge_id)
        return peer is not None and await peer.send(frame)

    async def forward(self, bridge_id: str, call_id: str, event: dict[str, Any]) -> None:
        """Send one logged event to the bridge if connected (replayed later otherwise)."""
        peer = self.peers.get(bridge_id)
        if peer is not None:
            await peer.send(_event_frame(call_id, event))

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


def _event_frame(call_id: str, event: dict[str, Any]) -> CallEventFrame:
    return CallEventFrame(call_id=call_id, event=LoggedEvent.model_validate(event))
