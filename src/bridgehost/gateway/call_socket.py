"""``/ws/call?call_id=…``: the browser's call socket.

The first frame must be ``{"type": "call.auth", "token": <client token>}`` within a deadline.
After ``call.auth.ok`` the browser sends ``{"type": "call.event", "id": <its id>, "event": {...}}``
frames, each acknowledged with ``{"type": "call.event.ack", "id", "seq"}`` only after the event is
on disk. In relay transport, binary frames carry audio (PCM16 mono 24 kHz) both ways. The gateway
sends ``call.event`` (transcripts, warnings) and ``call.force_end``. A dropped socket may
re-authenticate with the same token within the reconnect grace without ending the call.

Close codes: 4001 auth failed or timed out, 4004 unknown call, 4006 call ending, 4007 bad
message, 4008 too many failures, 4009 another socket is connected, 4000 call ended.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import WSMsgType, web

from bridgehost.gateway._keys import GATEWAY
from bridgehost.gateway.calls import BROWSER_EVENT_TYPES
from bridgehost.gateway.errors import has_lone_surrogate
from bridgehost.gateway.events import EventError

if TYPE_CHECKING:
    from bridgehost.gateway.core import Gateway
    from bridgehost.gateway.session import CallSession

log = structlog.get_logger("bridgehost.gateway.call_socket")

AUTH_TIMEOUT_S = 5.0
AUTH_FAILURES_ALLOWED = 3


async def handle_call_socket(request: web.Request) -> web.StreamResponse:
    """Serve one browser call socket."""
    gateway = request.app[GATEWAY]
    socket = web.WebSocketResponse(
        heartbeat=20.0, max_msg_size=gateway.config.realtime.max_ws_message_bytes
    )
    await socket.prepare(request)
    session = gateway.calls.current
    call_id = request.query.get("call_id")
    if session is None or session.call_id != call_id:
        await socket.close(code=4004, message=b"unknown_call")
        return socket
    key = f"{call_id}:{gateway.client_address(request)}"
    if not await _authenticate(gateway, session, socket, key):
        return socket
    try:
        await _serve(gateway, session, socket)
    finally:
        if session.browser is socket:
            session.browser = None
            await gateway.calls.browser_disconnected(session)
    return socket


async def _authenticate(
    gateway: Gateway, session: CallSession, socket: web.WebSocketResponse, key: str
) -> bool:
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_S):
            message = await socket.receive()
    except TimeoutError:  # slow networks time out; only wrong tokens count as failures
        await socket.close(code=4001, message=b"auth_timeout")
        return False
    data = _parse_frame(message.data) if message.type is WSMsgType.TEXT else None
    if (
        data is None
        or data.get("type") != "call.auth"
        or not session.token_matches(data.get("token"))
    ):
        await _auth_failed(gateway, session, socket, key, "unauthorized")
        return False
    gateway.auth_failures.clear(key)
    if session.is_ending:
        await socket.close(code=4006, message=b"call_ending")
        return False
    if session.browser is not None and not session.browser.closed:
        await socket.close(code=4009, message=b"call_already_connected")
        return False
    session.browser = socket
    await gateway.calls.browser_connected(session)
    await socket.send_json({"type": "call.auth.ok", "call": gateway.call_limits(session)})
    since = data.get("since_seq")
    await _replay_to_browser(session, socket, since if isinstance(since, int) else 0)
    return True


async def _replay_to_browser(
    session: CallSession, socket: web.WebSocketResponse, since_seq: int
) -> None:
    """Send what the page missed (before it connected, or while it was away) from the log."""

    def logged() -> list[dict[str, Any]]:
        try:
            return session.log.read().events
        except FileNotFoundError:  # the page came first: nothing is logged yet
            return []

    events = await asyncio.to_thread(logged)
    for event in events:
        if (
            event.get("seq", 0) > since_seq
            and event.get("source") != "browser"
            and event.get("type") in BROWSER_EVENT_TYPES
        ):
            await socket.send_json({"type": "call.event", "event": event})


async def _auth_failed(
    gateway: Gateway, session: CallSession, socket: web.WebSocketResponse, key: str, why: str
) -> None:
    if gateway.auth_failures.add(key) >= AUTH_FAILURES_ALLOWED:
        await socket.close(code=4008, message=b"rate_limited")
        await gateway.calls.request_end(session, "call_auth_rate_limited", "gateway")
        return
    await socket.close(code=4001, message=why.encode())


def _parse_frame(text: str) -> dict[str, Any] | None:
    """A text frame's JSON object, or None if it is not one or holds a lone surrogate."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or has_lone_surrogate(value):
        return None
    return value


async def _serve(gateway: Gateway, session: CallSession, socket: web.WebSocketResponse) -> None:
    async for message in socket:
        if message.type is WSMsgType.BINARY:
            if session.record.transport != "relay":
                await socket.send_json(
                    {
                        "type": "error",
                        "code": "wrong_transport",
                        "message": "audio travels over WebRTC on this call",
                    }
                )
            elif session.backend is not None and not session.is_ending:
                await session.backend.send_audio(message.data)
            continue
        if message.type is not WSMsgType.TEXT:
            continue
        await _on_text(gateway, session, socket, message.data)


async def _on_text(
    gateway: Gateway, session: CallSession, socket: web.WebSocketResponse, data: str
) -> None:
    frame = _parse_frame(data)
    if frame is None:
        await socket.send_json(
            {
                "type": "error",
                "code": "bad_message",
                "message": "frames must be JSON objects of valid Unicode text",
            }
        )
        return
    if frame.get("type") != "call.event":
        await socket.send_json(
            {"type": "error", "code": "bad_message", "message": "expected a call.event frame"}
        )
        return
    client_id = frame.get("id") if isinstance(frame.get("id"), str | int) else None
    event: Any = frame.get("event")  # anything at all: ingest validates it
    try:
        stamped = await gateway.calls.ingest(session, event, "browser", client_id=client_id)
    except EventError as exc:
        await socket.send_json(
            {"type": "error", "code": "bad_event", "id": client_id, "message": str(exc)}
        )
        return
    await socket.send_json(
        {"type": "call.event.ack", "id": client_id, "seq": stamped["seq"] if stamped else None}
    )
