"""The routes the Mini App uses: page, bootstrap, WebRTC offer, hang-up and finalize."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import structlog
from aiohttp import web

from bridgehost.gateway import miniapp
from bridgehost.gateway._keys import GATEWAY
from bridgehost.gateway.app_events import CallEvents
from bridgehost.gateway.core import Gateway
from bridgehost.gateway.domain_errors import BridgeNotConnected, DomainError
from bridgehost.gateway.errors import ApiError, read_json_body
from bridgehost.gateway.events import EventError
from bridgehost.gateway.initdata import InitDataError, verify_init_data
from bridgehost.gateway.instructions import build_instructions
from bridgehost.gateway.ratelimit import RateLimited
from bridgehost.gateway.session import CallSession
from bridgehost.gateway.surface import TokenStatus
from bridgehost.protocol.end_reasons import BROWSER_END_REASONS
from bridgehost.providers import ProviderStartError, SessionSetup

log = structlog.get_logger("bridgehost.gateway.routes")

MAX_FINAL_EVENTS = 200


def add_routes(app: web.Application) -> None:
    """Register the Mini App's routes."""
    app.router.add_get("/miniapp", miniapp.page)
    app.router.add_get(miniapp.WORKLET_PATH, miniapp.worklet)
    app.router.add_post("/api/call/bootstrap", bootstrap)
    app.router.add_post("/api/call/webrtc", webrtc)
    app.router.add_post("/api/call/hangup", hangup)
    app.router.add_post("/api/call/finalize", finalize)


def _string(body: Mapping[str, Any], name: str, max_len: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(400, "missing_field", f"The request needs a non-empty string {name!r}.")
    if len(value) > max_len:
        raise ApiError(400, "field_too_long", f"{name!r} is longer than {max_len} characters.")
    return value


def _launch_error(status: TokenStatus) -> ApiError:
    if status is TokenStatus.EXPIRED:
        return ApiError(
            410,
            "launch_expired",
            "This call link has expired. Send /call in Telegram for a fresh one.",
        )
    return ApiError(
        404,
        "launch_unknown",
        "This call link is no longer valid. Send /call in Telegram for a new one.",
    )


async def bootstrap(request: web.Request) -> web.Response:
    """``POST /api/call/bootstrap {launch_token, init_data}``: verify, prepare, open the call."""
    gw = request.app[GATEWAY]
    rt = gw.config.realtime
    body = await read_json_body(request, max_bytes=rt.max_body_bytes)
    launch = _string(body, "launch_token", 200)
    init_data = _string(body, "init_data", 8192)
    if not gw.surface.state.armed:
        raise ApiError(
            503,
            "surface_disarmed",
            "Calls are switched off right now. Ask the operator to run "
            "'bridgectl call arm', then send /call again.",
        )
    status = gw.surface.check_token(launch)
    if status is not TokenStatus.VALID:
        raise _launch_error(status)
    address = gw.client_address(request)
    user_id = _verify_user(gw, init_data, address)
    reserved = gw.bootstrap_limits.reserve(
        {"address": address, "bridge": rt.bridge_id, "user": f"{rt.bridge_id}:{user_id}"}
    )
    if isinstance(reserved, RateLimited):
        raise ApiError(
            429,
            "rate_limited",
            f"Too many call attempts ({reserved.which} limit). Wait a little and try again.",
            retry_after=reserved.retry_after,
        )
    try:
        payload = await _open_call(gw, user_id, request)
    except (ApiError, DomainError) as exc:
        if not isinstance(exc, ApiError) or exc.status != 401:
            gw.bootstrap_limits.refund(reserved)
        raise
    if gw.calls.current is not None and gw.calls.current.call_id == payload["call_id"]:
        gw.calls.current.rate_reservation = reserved
    return web.json_response(payload)


def _verify_user(gw: Gateway, init_data: str, address: str) -> int:
    token = gw.secrets.telegram_bot_token
    if token is None:
        raise ApiError(
            503,
            "gateway_misconfigured",
            "The gateway has no TELEGRAM_BOT_TOKEN, so it cannot check who you are. "
            "The operator must set it and restart bridge-gateway.",
        )
    failure_key = f"bootstrap:{address}"
    try:
        verified = verify_init_data(
            init_data,
            bot_token=token.get_secret_value(),
            max_age=timedelta(milliseconds=gw.config.realtime.init_data_max_age_ms),
        )
    except InitDataError as exc:
        if gw.auth_failures.add(failure_key) > gw.config.realtime.bootstrap_rate_limit_per_ip:
            raise ApiError(
                429,
                "rate_limited",
                "Too many failed sign-ins from your address. Wait a little and try again.",
                retry_after=gw.auth_failures.retry_after(
                    failure_key, gw.config.realtime.bootstrap_rate_limit_per_ip
                ),
            ) from exc
        raise ApiError(401, f"init_data_{exc.reason}", exc.message) from exc
    allowed = gw.config.telegram.authorized_chat_id
    if allowed is None or verified.user_id != allowed:
        raise ApiError(
            401, "user_not_authorized", "This Telegram account is not allowed to call this bridge."
        )
    return verified.user_id


async def _open_call(gw: Gateway, user_id: int, request: web.Request) -> dict[str, Any]:
    rt = gw.config.realtime
    budget = gw.calls.budget()
    if budget.next_call_cap_ms <= 0:
        raise ApiError(
            409,
            "budget_exhausted",
            f"Today's call budget is used up ({budget.used_ms // 60000} of "
            f"{budget.daily_cap_ms // 60000} minutes). It resets at midnight.",
        )
    async with gw.calls.preparing():
        if not gw.hub.connected(rt.bridge_id):
            raise BridgeNotConnected()
        session, client_token = gw.calls.open_call(
            bridge_id=rt.bridge_id,
            user_id=user_id,
            transport=gw.transport,
            max_call_ms=budget.next_call_cap_ms,
        )
        try:
            await _prepare_and_open(gw, session, user_id)
        except (ApiError, DomainError) as exc:
            await gw.calls.finish(session, exc.code, "gateway")
            raise
        if request.transport is None or request.transport.is_closing():
            # The page gave up while the bridge prepared: nobody will ever connect this call,
            # so end it now rather than hold the one-call rule until the launch window ends.
            await gw.calls.finish(session, "bootstrap_cancelled", "browser")
            raise ApiError(499, "bootstrap_cancelled", "The page left before the call was ready.")
        await gw.calls.launch(session)
    return {
        "call_id": session.call_id,
        "client_token": client_token,
        "transport": gw.transport,
        "ws_path": f"/ws/call?call_id={session.call_id}",
        "limits": gw.call_limits(session),
        "budget": budget.to_json(),
    }


async def _prepare_and_open(gw: Gateway, session: CallSession, user_id: int) -> None:
    rt = gw.config.realtime
    timeout_s = min(max(rt.startup_timeout_ms / 1000, 5.0), 30.0)
    result = await gw.hub.prepare(
        rt.bridge_id,
        {
            "call_id": session.call_id,
            "bridge_id": rt.bridge_id,
            "telegram_user_id": user_id,
        },
        timeout_s,
    )
    if not result.allowed:
        raise ApiError(409, "refused", result.reason or "The bridge refused the call.")
    setup = SessionSetup(
        call_id=session.call_id,
        max_call_ms=session.max_call_ms,
        instructions=build_instructions(result.context.get("parts") or []),
    )
    try:
        session.backend = await gw.backend.open_session(setup, CallEvents(gw.calls, session))
        gw.delegations.attach(session)
    except ProviderStartError as exc:
        raise ApiError(502, "backend_failed", _provider_message("did not start", exc)) from exc


def _provider_message(what: str, exc: ProviderStartError) -> str:
    text = str(exc).rstrip(".")
    fix = f" {exc.fix.rstrip('.')}." if exc.fix else ""
    return f"The voice service {what}: {text}.{fix}"


def _session_for(gw: Gateway, body: Mapping[str, Any]) -> CallSession:
    call_id = _string(body, "call_id", 64)
    token = _string(body, "client_token", 200)
    session = gw.calls.current
    if session is None or session.call_id != call_id or not session.token_matches(token):
        raise ApiError(
            404,
            "unknown_call",
            "This call is not running any more. Send /call in Telegram to start a new one.",
        )
    return session


async def webrtc(request: web.Request) -> web.Response:
    """``POST /api/call/webrtc {call_id, client_token, sdp}``: proxy the SDP offer."""
    gw = request.app[GATEWAY]
    body = await read_json_body(request, max_bytes=gw.config.realtime.max_body_bytes)
    session = _session_for(gw, body)
    sdp = _string(body, "sdp", 60_000)
    if session.record.transport != "webrtc" or session.backend is None:
        raise ApiError(
            400,
            "wrong_transport",
            "This call uses the relay transport; connect to the call socket instead.",
        )
    if session.is_ending:
        raise ApiError(409, "call_ending", "This call is ending.")
    try:
        answer = await session.backend.answer_offer(sdp)
    except ProviderStartError as exc:
        raise ApiError(502, "backend_failed", _provider_message("refused the call", exc)) from exc
    return web.json_response({"sdp": answer})


def _end_reason(body: Mapping[str, Any]) -> str:
    """The page's ``reason`` if it is one the page may give, else ``user_hangup``.

    Absent or null means ``user_hangup``; anything but a string is a 400, checked before the
    call is touched.
    """
    reason = body.get("reason")
    if reason is None:
        return "user_hangup"
    if not isinstance(reason, str):
        raise ApiError(
            400,
            "invalid_field",
            "'reason' must be a string, such as 'user_hangup' or 'page_closed'.",
        )
    return reason if reason in BROWSER_END_REASONS else "user_hangup"


async def hangup(request: web.Request) -> web.Response:
    """``POST /api/call/hangup {call_id, client_token, reason?}`` from the page."""
    gw = request.app[GATEWAY]
    body = await read_json_body(request, max_bytes=gw.config.realtime.max_body_bytes)
    session = _session_for(gw, body)
    await gw.calls.request_end(session, _end_reason(body), "browser")
    return web.json_response({"ok": True, "reason": session.ending_reason})


async def finalize(request: web.Request) -> web.Response:
    """``POST /api/call/finalize {call_id, client_token, reason?, events?}``: final events, end."""
    gw = request.app[GATEWAY]
    body = await read_json_body(request, max_bytes=gw.config.realtime.max_ws_message_bytes)
    session = _session_for(gw, body)
    reason = _end_reason(body)
    events = body.get("events") or []
    if not isinstance(events, list) or len(events) > MAX_FINAL_EVENTS:
        raise ApiError(
            400, "bad_events", f"'events' must be a list of at most {MAX_FINAL_EVENTS} events."
        )
    accepted = rejected = 0
    for item in events:
        wrapped = isinstance(item, dict) and isinstance(item.get("event"), dict)
        event = item["event"] if wrapped else item
        client_id = item.get("id") if wrapped and isinstance(item.get("id"), str | int) else None
        try:
            if await gw.calls.ingest(session, event, "browser", client_id=client_id) is not None:
                accepted += 1
        except EventError:
            rejected += 1
    await gw.calls.request_end(session, reason, "browser")
    await gw.calls.finish(session)
    return web.json_response(
        {"ok": True, "accepted": accepted, "rejected": rejected, "reason": session.ending_reason}
    )
