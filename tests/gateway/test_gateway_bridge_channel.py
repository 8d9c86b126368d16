"""``/ws/bridge`` against a real gateway: frames that break the protocol close the channel with
a 4xxx code naming the problem (never a crashed handler), unknown frame types are ignored."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import WSMsgType

from bridgehost.protocol.bridge import CLOSE_BAD_FRAME, CLOSE_BAD_HELLO

from .conftest import CONTROL_SECRET

HEADERS = {"Authorization": f"Bearer {CONTROL_SECRET}"}
HELLO = {"type": "bridge.hello", "bridge_id": "probe", "status": {}}


async def _closed(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    while True:
        message = await ws.receive(timeout=5)
        if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            return ws.close_code, str(message.extra or "")


async def _greeted(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(url, headers=HEADERS)
    await ws.send_json(HELLO)
    assert (await ws.receive_json(timeout=5)) == {"type": "hello.ok"}
    return ws


async def test_a_hello_that_is_not_an_object_closes_with_4001_naming_the_problem(gw):
    url = gw.bridge.url
    for frame, problem in [
        ("[1, 2]", "a frame must be a JSON object, not an array"),
        ('"bridge.hello"', "a frame must be a JSON object, not a string"),
        ("not json", "this one is not JSON"),
        ('{"type": "bridge.hello"}', "bridge.hello.bridge_id is missing"),
        ('{"type": "bridge.hello", "bridge_id": ["b"]}', "bridge.hello.bridge_id must be a string"),
        ('{"type": "call.ack", "call_id": "c", "seq": 1}', "the first frame must be bridge.hello"),
    ]:
        ws = await gw.http.ws_connect(url, headers=HEADERS)
        await ws.send_str(frame)
        code, reason = await _closed(ws)
        assert code == CLOSE_BAD_HELLO, (frame, code, reason)
        assert problem in reason, (frame, reason)
    assert gw.gateway.hub.connected("bridge"), "the real bridge is untouched"
    assert not gw.gateway.hub.connected("probe")


async def test_a_prepare_result_with_a_non_string_reply_to_closes_with_4002(gw):
    ws = await _greeted(gw.http, gw.bridge.url)
    await ws.send_json({"type": "call.prepare.result", "reply_to": 7, "allowed": True})
    code, reason = await _closed(ws)
    assert code == CLOSE_BAD_FRAME
    assert reason == "call.prepare.result.reply_to must be a string"
    again = await _greeted(gw.http, gw.bridge.url)  # the gateway still serves bridges
    await again.close()


async def test_bad_fields_in_other_frames_close_the_channel_too(gw):
    for frame, problem in [
        ({"type": "call.ack", "call_id": "c", "seq": "1"}, "call.ack.seq must be an integer"),
        ({"type": "bridge.status", "status": [1]}, "bridge.status.status must be an object"),
        ({"type": "call.hangup", "reason": 5}, "call.hangup.reason must be a string"),
    ]:
        ws = await _greeted(gw.http, gw.bridge.url)
        await ws.send_json(frame)
        assert await _closed(ws) == (CLOSE_BAD_FRAME, problem)
    assert gw.gateway.calls.current is None


async def test_unknown_frame_types_are_ignored_and_the_channel_stays_up(gw):
    ws = await _greeted(gw.http, gw.bridge.url)
    await ws.send_json({"type": "call.note", "call_id": "c", "text": "from a newer bridge"})
    await ws.send_json({"type": "bridge.status", "status": {"owner": "probe"}})
    async with asyncio.timeout(5):
        while True:
            peers = {p["bridge_id"]: p for p in gw.gateway.hub.snapshot()}
            if peers.get("probe", {}).get("status") == {"owner": "probe"}:
                break
            await asyncio.sleep(0.02)
    assert not ws.closed and gw.gateway.hub.connected("probe")
    await ws.close()
