"""Health routes and the local control API that ``bridgectl`` uses.

``GET /healthz`` answers anyone with ``{"ok": true}`` and nothing else. Everything else here
answers only requests from this machine (loopback peer, no proxy or tunnel headers) that carry
``Authorization: Bearer <REALTIME_CONTROL_SECRET>``; anything else gets 404, so the control API
does not even show through the tunnel.

``POST /control/arm {source?}`` streams progress as JSON lines (``{"progress": "..."}``), at least
one every :data:`~bridgehost.gateway_api.ARM_KEEPALIVE_S` seconds while it waits, and ends with one
``{"result": {...}}`` or ``{"error": {...}}`` line, so ``bridgectl call arm`` can show what it is
waiting for while the tunnel comes up.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeVar

from aiohttp import web

from bridgehost.builtin.cloudflared._policy import cooldown_fields
from bridgehost.gateway._keys import GATEWAY
from bridgehost.gateway.core import Gateway
from bridgehost.gateway.domain_errors import DomainError
from bridgehost.gateway.errors import ApiError, read_json_body
from bridgehost.protocol.control import (
    ArmRequest,
    Body,
    BodyError,
    DisarmRequest,
    DisarmResponse,
    HangupRequest,
    HangupResponse,
    parse_body,
)

_HIDDEN = ApiError(404, "not_found", "No such route.")
_Body = TypeVar("_Body", bound=Body)


def add_routes(app: web.Application) -> None:
    """Register health and control routes."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/healthz/details", details)
    app.router.add_get("/control/status", control_status)
    app.router.add_post("/control/arm", control_arm)
    app.router.add_post("/control/disarm", control_disarm)
    app.router.add_post("/control/hangup", control_hangup)


async def healthz(request: web.Request) -> web.Response:
    """Liveness for probes and tunnels: no secrets, no details."""
    return web.json_response({"ok": True})


def _require_control(request: web.Request) -> Any:
    gw = request.app[GATEWAY]
    if not gw.is_local_request(request):
        raise _HIDDEN
    if not gw.is_control_request(request):
        raise ApiError(
            401,
            "unauthorized",
            "The control secret is missing or wrong: bridgectl reads "
            "REALTIME_CONTROL_SECRET from the environment, .env or credentials.",
        )
    return gw


async def _status(gw: Gateway) -> dict[str, Any]:
    current = gw.calls.current
    tunnel = await gw.tunnel.health()
    return {
        "ok": True,
        "surface": gw.surface.snapshot(),
        "tunnel": {
            "mode": gw.config.realtime.effective_tunnel_mode,
            "ok": tunnel.ok,
            "detail": tunnel.detail,
            "fix": tunnel.fix,
            "public_url": gw.tunnel.public_url,
            **cooldown_fields(gw.tunnel),
        },
        "bridges": gw.hub.snapshot(),
        "call": current.summary() if current else None,
        "recent_calls": [r.to_json() for r in gw.store.recent_calls(10)],
        "budget": gw.calls.budget().to_json(),
        "backend": {"name": gw.config.realtime.backend, "transport": gw.transport},
    }


async def details(request: web.Request) -> web.Response:
    """``GET /healthz/details``: bridges, calls, surface, tunnel and budget (control secret)."""
    return web.json_response(await _status(_require_control(request)))


async def control_status(request: web.Request) -> web.Response:
    """``GET /control/status``: what ``bridgectl status`` and ``call status`` print."""
    return web.json_response(await _status(_require_control(request)))


async def control_arm(request: web.Request) -> web.StreamResponse:
    """``POST /control/arm {source?}``: start the tunnel, wait for the public origin, mint a
    token. ``source`` (who arms: ``telegram``, ``bridgectl``…) becomes the surface's
    ``armed_by``."""
    gw = _require_control(request)
    source = (await _control_body(request, gw, ArmRequest)).source
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    arming = asyncio.ensure_future(
        gw.surface.arm(source, lambda text: lines.put_nowait({"progress": text}))
    )
    arming.add_done_callback(lambda _task: lines.put_nowait({}))
    while (line := await lines.get()) or not arming.done():
        if line:
            await response.write((json.dumps(line) + "\n").encode())
    try:
        final: dict[str, Any] = {"result": arming.result().to_json()}
    except (ApiError, DomainError) as exc:
        final = {"error": {"code": exc.code, "message": exc.message}}
    await response.write((json.dumps(final) + "\n").encode())
    await response.write_eof()
    return response


async def control_disarm(request: web.Request) -> web.Response:
    """``POST /control/disarm {reason?}``: stop the tunnel and invalidate the invite."""
    gw = _require_control(request)
    reason = (await _control_body(request, gw, DisarmRequest)).effective_reason
    await gw.surface.disarm(reason, "bridgectl")
    return web.json_response(DisarmResponse(reason=reason).model_dump())


async def control_hangup(request: web.Request) -> web.Response:
    """``POST /control/hangup {call_id?, reason?}``: end the live call."""
    gw = _require_control(request)
    body = await _control_body(request, gw, HangupRequest)
    session = gw.calls.current
    if session is None or (body.call_id is not None and body.call_id != session.call_id):
        raise ApiError(404, "no_call", "No call is running.")
    await gw.calls.request_end(session, body.effective_reason, "operator")
    answer = HangupResponse(call_id=session.call_id, reason=session.ending_reason)
    return web.json_response(answer.model_dump())


async def _control_body(request: web.Request, gw: Gateway, model: type[_Body]) -> _Body:
    """The request's body as ``model`` (an empty body is ``{}``); 400 ``invalid_field``."""
    raw: Any = {}
    if request.can_read_body:
        raw = await read_json_body(request, max_bytes=gw.config.realtime.max_body_bytes)
    try:
        return parse_body(model, raw)
    except BodyError as exc:
        raise ApiError(400, "invalid_field", str(exc)) from None
