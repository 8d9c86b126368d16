"""The daily money cap on a real gateway: spend is metered from usage, ends a call, refuses one."""

from __future__ import annotations

import asyncio

from bridgehost.gateway.app_events import CallEvents


async def _connect(gw, body):
    ws = await gw.http.ws_connect(f"{gw.base}{body['ws_path']}")
    await ws.send_json({"type": "call.auth", "token": body["client_token"]})
    ok = await ws.receive_json(timeout=5)
    assert ok["type"] == "call.auth.ok", ok
    return ws


async def _status(gw):
    async with gw.http.get(f"{gw.base}/control/status", headers=gw.control_headers()) as resp:
        assert resp.status == 200
        return await resp.json()


async def test_spend_reaching_the_cap_ends_the_call_and_refuses_the_next(gateway_factory):
    gw = await gateway_factory(max_daily_cost_usd=0.05)
    body = await gw.start_call()
    ws = await _connect(gw, body)
    session = gw.gateway.calls.current
    backend = CallEvents(gw.gateway.calls, session)  # the path a backend reports through

    # 1000 audio output tokens at the default $64/M: $0.064 — but first a small response.
    await backend.event({"type": "usage", "text_input_tokens": 1000, "text_output_tokens": 100})
    status = await _status(gw)
    assert status["call"]["cost_usd"] == 0.0056  # 1000 × $4/M + 100 × $16/M
    assert status["budget"]["spent_usd"] == 0.0056
    assert status["budget"]["daily_cost_cap_usd"] == 0.05
    assert status["budget"]["cost_cap_reached"] is False
    assert gw.gateway.calls.current is session  # under the cap: the call goes on

    await backend.event({"type": "usage", "audio_output_tokens": 1000})
    ended = await gw.bridge.wait_for("call.ended")
    assert (ended["reason"], ended["ended_by"]) == ("daily_cost_cap", "gateway")
    await ws.close()
    async with asyncio.timeout(5):
        while gw.gateway.calls.current is not None:
            await asyncio.sleep(0.02)

    status = await _status(gw)
    assert status["budget"]["cost_cap_reached"] is True
    assert status["budget"]["spent_usd"] == 0.0696 and status["budget"]["cost_left_usd"] == 0
    (recent,) = status["recent_calls"]
    assert recent["end_reason"] == "daily_cost_cap" and recent["cost_usd"] == 0.0696

    armed = await gw.arm()
    resp = await gw.bootstrap(armed["launch_url"].split("launch=")[1])
    refusal = await resp.json()
    assert resp.status == 409
    assert refusal["error"]["code"] == "daily_cost_cap"
    assert refusal["error"]["message"] == (
        "Today's spending cap is reached ($0.07 of $0.05, realtime.max_daily_cost_usd). "
        "It resets at midnight."
    )
    assert gw.gateway.calls.current is None and len(gw.bridge.prepares) == 1


async def test_without_a_cap_spend_is_shown_and_never_ends_a_call(gateway_factory):
    gw = await gateway_factory()
    body = await gw.start_call()
    ws = await _connect(gw, body)
    session = gw.gateway.calls.current
    backend = CallEvents(gw.gateway.calls, session)
    await backend.event({"type": "usage", "audio_output_tokens": 1_000_000})
    await backend.event({"type": "usage", "transcription_s": 60.0})
    status = await _status(gw)
    assert status["call"]["cost_usd"] == 64.006  # $64 of audio out + one minute transcribed
    assert status["budget"]["daily_cost_cap_usd"] is None
    assert status["budget"]["cost_left_usd"] is None
    assert status["budget"]["cost_cap_reached"] is False
    assert gw.gateway.calls.current is session
    await ws.close()


async def test_spend_survives_a_gateway_restart(gateway_factory):
    gw = await gateway_factory(max_daily_cost_usd=1.0)
    body = await gw.start_call()
    ws = await _connect(gw, body)
    backend = CallEvents(gw.gateway.calls, gw.gateway.calls.current)
    await backend.event({"type": "usage", "audio_input_tokens": 10_000})  # $0.32
    await ws.close()
    gw.stop.set()
    async with asyncio.timeout(15):
        await gw.task

    again = await gateway_factory(max_daily_cost_usd=1.0)
    budget = (await _status(again))["budget"]
    assert budget["spent_usd"] == 0.32 and budget["cost_left_usd"] == 0.68
