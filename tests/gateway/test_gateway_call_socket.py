"""``/ws/call``: authentication, close codes, event validation, reconnects and call timers."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from bridgehost.basics import today
from bridgehost.state import CallLog


async def _connect(gw, body, token=None):
    ws = await gw.http.ws_connect(f"{gw.base}{body['ws_path']}")
    await ws.send_json({"type": "call.auth", "token": token or body["client_token"]})
    return ws


async def _authed(gw, body):
    ws = await _connect(gw, body)
    assert (await ws.receive_json(timeout=5))["type"] == "call.auth.ok"
    return ws


async def _closed_with(ws) -> int:
    async with asyncio.timeout(5):
        while True:
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                return ws.close_code


async def _next_json(ws, kind: str) -> dict:
    async with asyncio.timeout(5):
        while True:
            message = await ws.receive()
            if message.type is aiohttp.WSMsgType.TEXT:
                data = json.loads(message.data)
                if data["type"] == kind:
                    return data


async def test_unknown_call_is_closed_4004(gw):
    await gw.start_call()
    ws = await gw.http.ws_connect(f"{gw.base}/ws/call?call_id=nope")
    assert await _closed_with(ws) == 4004


async def test_wrong_token_is_4001_and_three_failures_end_the_call(gw):
    body = await gw.start_call()
    for _ in range(2):
        assert await _closed_with(await _connect(gw, body, token="wrong")) == 4001
    assert await _closed_with(await _connect(gw, body, token="wrong")) == 4008
    ended = await gw.bridge.wait_for("call.ended")
    assert ended["reason"] == "call_auth_rate_limited"


async def test_second_socket_is_refused_4009(gw):
    body = await gw.start_call()
    first = await _authed(gw, body)
    assert await _closed_with(await _connect(gw, body)) == 4009
    assert not first.closed


async def test_invalid_events_are_rejected_not_logged(gw):
    body = await gw.start_call()
    ws = await _authed(gw, body)
    for event in (
        {"type": "call.ended", "reason": "x"},  # only the gateway may end a call
        {"type": "raw", "payload": {}},
        {"type": "user.transcript.final", "text": "x" * 9000},
        {"type": "vad", "state": "dancing"},
    ):
        await ws.send_json({"type": "call.event", "id": "e", "event": event})
        reply = await _next_json(ws, "error")
        assert reply["code"] == "bad_event"
    await ws.send_str("not json")
    assert (await _next_json(ws, "error"))["code"] == "bad_message"
    types = [e["type"] for e in CallLog(gw.gateway.paths.call_log(body["call_id"])).read().events]
    assert "call.ended" not in types and "raw" not in types and "vad" not in types


async def test_oversized_frame_closes_the_socket(gateway_factory):
    gw = await gateway_factory(max_ws_message_bytes=4096)
    body = await gw.start_call()
    ws = await _authed(gw, body)
    await ws.send_str(json.dumps({"type": "call.event", "event": {"text": "x" * 10_000}}))
    assert await _closed_with(ws) == 1009


async def test_dropped_socket_may_reconnect_within_grace(gateway_factory):
    gw = await gateway_factory(reconnect_grace_ms=1500)
    body = await gw.start_call()
    ws = await _authed(gw, body)
    await ws.close()
    await asyncio.sleep(0.2)
    ws = await _authed(gw, body)
    assert gw.gateway.calls.current is not None
    await ws.close()
    ended = await gw.bridge.wait_for("call.ended", timeout=6)
    assert ended["reason"] == "browser_disconnect"


async def test_bridge_hangup_ends_with_telegram_reason_and_force_end(gw):
    body = await gw.start_call()
    ws = await _authed(gw, body)
    await gw.bridge.hangup(body["call_id"])
    force = await _next_json(ws, "call.force_end")
    assert force["reason"] == "telegram_hangup"
    ended = await gw.bridge.wait_for("call.ended")
    assert (ended["reason"], ended["ended_by"]) == ("telegram_hangup", "telegram")


async def test_finalize_appends_last_events_then_ends(gw):
    body = await gw.start_call()
    ws = await _authed(gw, body)
    assert not ws.closed
    events = [
        {"type": "assistant.transcript.final", "text": "last words"},
        {"type": "call.ended", "reason": "sneaky"},
    ]
    async with gw.http.post(
        f"{gw.base}/api/call/finalize",
        json={
            "call_id": body["call_id"],
            "client_token": body["client_token"],
            "reason": "page_closed",
            "events": events,
        },
    ) as resp:
        result = await resp.json()
    assert result == {"ok": True, "accepted": 1, "rejected": 1, "reason": "page_closed"}
    log = CallLog(gw.gateway.paths.call_log(body["call_id"])).read().events
    assert [e["type"] for e in log][-2:] == ["assistant.transcript.final", "call.ended"]
    assert log[-1]["reason"] == "page_closed"
    async with gw.http.post(
        f"{gw.base}/api/call/finalize",
        json={"call_id": body["call_id"], "client_token": body["client_token"]},
    ) as resp:
        assert resp.status == 404


async def test_idle_warning_then_idle_timeout(gateway_factory):
    gw = await gateway_factory(
        idle_warning_ms=300, idle_timeout_ms=800, max_call_ms=60_000, max_daily_call_ms=120_000
    )
    body = await gw.start_call()
    ws = await _authed(gw, body)
    replayed = await _next_json(ws, "call.event")  # missed before the socket was up
    assert replayed["event"]["type"] == "transcript.unavailable"
    warning = await _next_json(ws, "call.event")
    assert warning["event"]["type"] == "call.idle_warning"
    assert warning["event"]["remaining_ms"] == 500
    force = await _next_json(ws, "call.force_end")
    assert force["reason"] == "idle_timeout"
    ended = await gw.bridge.wait_for("call.ended")
    assert (ended["reason"], ended["ended_by"]) == ("idle_timeout", "gateway")


async def test_max_duration_ends_the_call(gateway_factory):
    gw = await gateway_factory(
        idle_warning_ms=1000, idle_timeout_ms=2000, max_call_ms=2000, max_daily_call_ms=600_000
    )
    body = await gw.start_call()
    ws = await _authed(gw, body)
    assert not ws.closed
    ended = await gw.bridge.wait_for("call.ended", timeout=6)
    assert ended["reason"] == "max_call_duration_reached"
    assert ended["duration_ms"] >= 1900
    assert gw.gateway.store.used_ms(today())[1] >= 1900


async def test_start_timeout_when_media_never_starts(gateway_factory):
    gw = await gateway_factory(startup_timeout_ms=1000)
    body = await gw.start_call()
    ws = await _authed(gw, body)
    assert not ws.closed
    ended = await gw.bridge.wait_for("call.ended", timeout=5)
    assert ended["reason"] == "call_start_timeout"
    assert gw.gateway.store.get_call(body["call_id"]).end_reason == "call_start_timeout"
