"""WebSocket routes of the fake OpenAI: ``GET /v1/realtime?call_id=`` (the sideband of a WebRTC
call) and ``GET /v1/realtime?model=`` (a whole session over a plain WebSocket, audio as base64).

Both echo the ``realtime`` subprotocol (browsers need one echoed back). A sideband gets the same
server events as the call's data channel from the moment it joins (no greeting of its own) and is
closed with 1000 when the call ends. A plain session starts with ``session.created``; the beta
``OpenAI-Beta: realtime=v1`` header or subprotocol gets an error and close code 4000, as GA does.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .openai_common import SECRET, EphemeralSecret, error_response
from .openai_realtime import RealtimeModel
from .openai_realtime_session import session_from_request

if TYPE_CHECKING:
    from .openai_api import FakeOpenAI


async def realtime_ws(fake: FakeOpenAI, request: web.Request) -> web.StreamResponse:
    """``GET /v1/realtime``: a sideband with ``?call_id=``, else a plain WebSocket session."""
    call_id = request.query.get("call_id")
    if call_id is not None:
        call = fake.calls.get(call_id)
        if call is None or call.ended.is_set():
            return error_response(404, f"Call '{call_id}' not found or already ended.")
    ws = web.WebSocketResponse(protocols=("realtime",))
    await ws.prepare(request)
    fake.sockets.add(ws)
    try:
        if call_id is not None:
            call.sidebands.add(ws)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await call.model.handle_client_message(msg.data)
            call.sidebands.discard(ws)
        else:
            await _ws_session(fake, request, ws)
    finally:
        fake.sockets.discard(ws)
    return ws


async def _ws_session(fake: FakeOpenAI, request: web.Request, ws: web.WebSocketResponse) -> None:
    """Run one session over ``ws``: an ephemeral key brings its minted session config."""
    secret: EphemeralSecret | None = request[SECRET]
    session = (
        secret.session
        if secret
        else session_from_request(
            {"type": "realtime", "model": request.query.get("model") or "gpt-realtime"}
        )
    )

    async def emit(event: dict[str, Any]) -> None:
        if not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(json.dumps(event))

    async def close(code: int, reason: str) -> None:
        await ws.close(code=code, message=reason.encode())

    model = RealtimeModel(
        session, fake.script, emit=emit, webrtc=False, on_close=close, **fake.model_options
    )
    fake.ws_sessions.append(model)
    beta = "realtime=v1" in request.headers.get(
        "OpenAI-Beta", ""
    ) or "openai-beta.realtime-v1" in request.headers.get("Sec-WebSocket-Protocol", "")
    if beta:
        await model.error(
            "The beta Realtime API is no longer supported; remove the OpenAI-Beta header.",
            code="beta_api_shape_disabled",
        )
        await close(4000, "beta_api_shape_disabled")
        return
    await model.start()
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await model.handle_client_message(msg.data)
    await model.aclose()
