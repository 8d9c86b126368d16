"""A whole relay call through the real gateway: bootstrap, call socket, events, hang-up."""

from __future__ import annotations

import asyncio
import json

from bridgehost.state import CallLog


async def _auth(gw, body):
    ws = await gw.http.ws_connect(f"{gw.base}{body['ws_path']}")
    await ws.send_json({"type": "call.auth", "token": body["client_token"]})
    ok = await ws.receive_json(timeout=5)
    assert ok["type"] == "call.auth.ok", ok
    return ws, ok


async def _send_event(ws, event, event_id):
    await ws.send_json({"type": "call.event", "id": event_id, "event": event})
    while True:
        reply = await ws.receive(timeout=5)
        if reply.type.name != "TEXT":
            continue
        data = json.loads(reply.data)
        if data.get("id") == event_id:
            return data


async def test_relay_call_end_to_end(gw):
    body = await gw.start_call()
    assert body["transport"] == "relay"
    assert body["limits"]["max_call_ms"] == 300_000
    prepare = gw.bridge.prepares[0]["call"]
    assert prepare["call_id"] == body["call_id"] and prepare["telegram_user_id"] == 4242

    ws, ok = await _auth(gw, body)
    assert ok["call"]["call_id"] == body["call_id"]
    ack = await _send_event(ws, {"type": "call.started"}, 1)
    assert ack["type"] == "call.event.ack" and ack["seq"] >= 2
    ack = await _send_event(ws, {"type": "user.transcript.final", "text": "hello agent"}, 2)
    assert ack["type"] == "call.event.ack"

    await ws.send_bytes(b"\x01\x02" * 480)
    async with asyncio.timeout(5):
        while True:
            message = await ws.receive()
            if message.type.name == "BINARY":
                assert message.data == b"\x01\x02" * 480
                break

    async with gw.http.post(
        f"{gw.base}/api/call/hangup",
        json={"call_id": body["call_id"], "client_token": body["client_token"]},
    ) as resp:
        assert resp.status == 200
    ended = await gw.bridge.wait_for("call.ended")
    assert ended["reason"] == "user_hangup" and ended["ended_by"] == "browser"
    await ws.close()

    log = CallLog(gw.gateway.paths.call_log(body["call_id"])).read().events
    types = [e["type"] for e in log]
    assert types[0] == "transcript.unavailable"
    assert "call.started" in types and "user.transcript.final" in types
    assert types[-1] == "call.ended"
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    assert all(e["at"].endswith("+00:00") for e in log)
    record = gw.gateway.store.get_call(body["call_id"])
    assert record.status == "ended" and record.end_reason == "user_hangup"
    assert gw.gateway.calls.current is None
