"""``POST /api/call/bootstrap``: every row of the error contract, as the Mini App sees it."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from bridgehost.basics import iso, today, utc_now

from .conftest import init_data


async def _error(resp) -> tuple[int, str, str]:
    body = await resp.json()
    assert set(body) == {"error"}, body
    return resp.status, body["error"]["code"], body["error"]["message"]


async def _armed_token(gw) -> str:
    return (await gw.arm())["launch_url"].split("launch=")[1]


async def test_malformed_json_is_400(gw):
    async with gw.http.post(
        f"{gw.base}/api/call/bootstrap",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    ) as resp:
        status, code, _ = await _error(resp)
    assert (status, code) == (400, "malformed_json")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"launch_token": "x"},
        {"launch_token": 5, "init_data": "a"},
        {"launch_token": "x", "init_data": "y" * 9000},
    ],
)
async def test_missing_or_bad_fields_are_400(gw, body):
    async with gw.http.post(f"{gw.base}/api/call/bootstrap", json=body) as resp:
        status, code, message = await _error(resp)
    assert status == 400 and code in {"missing_field", "field_too_long"}
    assert "init_data" in message or "launch_token" in message


async def test_oversized_body_is_413(gw):
    async with gw.http.post(
        f"{gw.base}/api/call/bootstrap",
        data=b"x" * 200_000,
        headers={"Content-Type": "application/json"},
    ) as resp:
        status, code, _ = await _error(resp)
    assert (status, code) == (413, "body_too_large")


async def test_disarmed_surface_is_503(gw):
    resp = await gw.bootstrap("whatever")
    status, code, message = await _error(resp)
    assert (status, code) == (503, "surface_disarmed")
    assert "bridgectl call arm" in message


async def test_unknown_token_is_404_and_expired_is_410(gw):
    token = await _armed_token(gw)
    status, code, message = await _error(await gw.bootstrap("not-the-token"))
    assert (status, code) == (404, "launch_unknown") and "/call" in message
    gw.gateway.surface.state.token_expires_at = iso(utc_now() - timedelta(seconds=1))
    status, code, message = await _error(await gw.bootstrap(token))
    assert (status, code) == (410, "launch_expired") and "/call" in message


async def test_bad_signature_stale_and_future_init_data_are_401(gw):
    token = await _armed_token(gw)
    forged = init_data(token="999:other-bot-token")
    status, code, _ = await _error(await gw.bootstrap(token, forged))
    assert (status, code) == (401, "init_data_bad_hash")
    stale = init_data(auth_date=int(time.time()) - 3600)
    status, code, message = await _error(await gw.bootstrap(token, stale))
    assert (status, code) == (401, "init_data_stale") and "/call" in message
    future = init_data(auth_date=int(time.time()) + 3600)
    status, code, _ = await _error(await gw.bootstrap(token, future))
    assert (status, code) == (401, "init_data_future")


async def test_other_telegram_user_is_refused(gw):
    token = await _armed_token(gw)
    status, code, message = await _error(await gw.bootstrap(token, init_data(user_id=777)))
    assert (status, code) == (401, "user_not_authorized")
    assert "not allowed" in message


async def test_bridge_not_connected_is_503(gateway_factory):
    gw = await gateway_factory(connect_bridge=False)
    token = await _armed_token(gw)
    status, code, message = await _error(await gw.bootstrap(token))
    assert (status, code) == (503, "bridge_not_connected")
    assert "bridge-telegram" in message


async def test_prepare_timeout_is_504(gateway_factory):
    gw = await gateway_factory(startup_timeout_ms=1000)
    gw.bridge.answer = False
    token = await _armed_token(gw)
    status, code, _ = await _error(await gw.bootstrap(token))
    assert (status, code) == (504, "prepare_timeout")
    assert gw.gateway.calls.current is None


async def test_bridge_refusal_is_409_with_its_reason(gw):
    gw.bridge.allow = False
    token = await _armed_token(gw)
    status, code, message = await _error(await gw.bootstrap(token))
    assert (status, code) == (409, "refused")
    assert "bridgectl bind --latest" in message


async def test_second_call_while_one_is_live_is_409(gw):
    body = await gw.start_call()
    token = await _armed_token(gw)
    status, code, message = await _error(await gw.bootstrap(token))
    assert (status, code) == (409, "call_in_progress")
    assert "Hang it up" in message
    assert gw.gateway.calls.current.call_id == body["call_id"]


async def test_budget_exhausted_is_409(gateway_factory):
    gw = await gateway_factory(max_daily_call_ms=600_000)
    gw.gateway.store.charge("earlier-call", today(), 600_000)
    token = await _armed_token(gw)
    status, code, message = await _error(await gw.bootstrap(token))
    assert (status, code) == (409, "budget_exhausted")
    assert "resets at midnight" in message


async def test_rate_limit_is_429_with_retry_after(gateway_factory):
    gw = await gateway_factory(bootstrap_rate_limit_per_user=1)
    gw.bridge.allow = False  # refusals the user did not cause are refunded...
    token = await _armed_token(gw)
    for _ in range(2):
        assert (await gw.bootstrap(token)).status == 409
    gw.bridge.allow = True  # ...but a successful call keeps its slot
    first = await gw.start_call()
    async with gw.http.post(f"{gw.base}/control/hangup", headers=gw.control_headers()) as resp:
        assert resp.status == 200
    await gw.gateway.calls.shutdown()
    assert first["call_id"]
    token = await _armed_token(gw)
    resp = await gw.bootstrap(token)
    status, code, _ = await _error(resp)
    assert (status, code) == (429, "rate_limited")
    assert int(resp.headers["Retry-After"]) > 0


async def test_repeated_failed_sign_ins_are_rate_limited(gateway_factory):
    gw = await gateway_factory(bootstrap_rate_limit_per_ip=2)
    token = await _armed_token(gw)
    forged = init_data(token="999:other-bot-token")
    codes = [(await _error(await gw.bootstrap(token, forged)))[1] for _ in range(4)]
    assert codes[:2] == ["init_data_bad_hash"] * 2
    assert codes[-1] == "rate_limited"


async def test_success_returns_call_and_limits(gw):
    body = await gw.start_call()
    assert set(body) >= {"call_id", "client_token", "transport", "ws_path", "limits", "budget"}
    assert body["limits"]["idle_timeout_ms"] == 120_000
    assert body["ws_path"] == f"/ws/call?call_id={body['call_id']}"
    record = gw.gateway.store.get_call(body["call_id"])
    assert record.status == "launching" and record.telegram_user_id == 4242


async def test_unfinished_launch_ends_with_launch_timeout(gateway_factory):
    gw = await gateway_factory(launch_window_ms=5000)
    body = await gw.start_call()
    session = gw.gateway.calls.current
    session.set_timer("launch", 50, lambda: gw.gateway.calls._launch_expired(session))
    ended = await gw.bridge.wait_for("call.ended")
    assert ended["reason"] == "call_launch_timeout"
    assert gw.gateway.store.get_call(body["call_id"]).status == "ended"


async def test_calls_that_really_started_do_not_use_up_the_rate_limit(gateway_factory):
    gw = await gateway_factory(bootstrap_rate_limit_per_user=1)
    for _ in range(3):
        body = await gw.start_call()
        ws = await gw.http.ws_connect(f"{gw.base}{body['ws_path']}")
        await ws.send_json({"type": "call.auth", "token": body["client_token"]})
        await ws.receive_json(timeout=5)
        await ws.send_json({"type": "call.event", "id": 1, "event": {"type": "call.started"}})
        await ws.receive_json(timeout=5)
        async with gw.http.post(
            f"{gw.base}/api/call/hangup",
            json={"call_id": body["call_id"], "client_token": body["client_token"]},
        ):
            pass
        await gw.gateway.calls.shutdown()
        await ws.close()


async def test_page_leaving_during_prepare_frees_the_one_call_rule(gw):
    gw.bridge.answer_delay_s = 0.5
    token = await _armed_token(gw)
    body = {"launch_token": token, "init_data": init_data()}
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await gw.http.post(f"{gw.base}/api/call/bootstrap", json=body)
    ended = await gw.bridge.wait_for("call.ended")
    assert (ended["reason"], ended["ended_by"]) == ("bootstrap_cancelled", "browser")
    assert gw.gateway.calls.current is None
    gw.bridge.answer_delay_s = 0.0
    token = await _armed_token(gw)
    resp = await gw.bootstrap(token)
    assert resp.status == 200, await resp.text()
