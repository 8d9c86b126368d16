"""``/ws/bridge`` frames: both directions parse, bad ones name the problem, unknown ones are
told apart so a newer peer can be ignored rather than disconnected."""

from __future__ import annotations

import json

import pytest

from bridgehost.protocol.bridge import (
    MAX_CLOSE_REASON_BYTES,
    BridgeHello,
    CallAck,
    CallEventFrame,
    CallHangup,
    CallPrepare,
    CallPrepareResult,
    FrameError,
    UnknownFrame,
    close_reason,
    parse_from_bridge,
    parse_from_gateway,
    parse_hello,
)


def test_frames_round_trip_through_json():
    frames = [
        BridgeHello(bridge_id="bridge", status={"owner": "telegram"}),
        CallPrepareResult(reply_to="r1", allowed=True, context={"parts": [{"title": "t"}]}),
        CallAck(call_id="c1", seq=3),
        CallHangup(call_id=None, reason="telegram_hangup"),
    ]
    for frame in frames:
        assert parse_from_bridge(frame.to_json()) == frame
    prepare = CallPrepare(id="r1", call={"call_id": "c1", "bridge_id": "b", "telegram_user_id": 1})
    assert parse_from_gateway(prepare.to_json()) == prepare
    event = {"seq": 2, "at": "t", "type": "vad", "state": "speech_started", "source": "browser"}
    frame = parse_from_gateway(json.dumps({"type": "call.event", "call_id": "c1", "event": event}))
    assert isinstance(frame, CallEventFrame) and frame.event.model_dump() == event


def test_hello_defaults_and_lenient_parts():
    hello = parse_hello('{"type": "bridge.hello", "bridge_id": "b", "status": null}')
    assert hello.status == {}
    result = parse_from_bridge('{"type": "call.prepare.result", "reply_to": "r"}')
    assert isinstance(result, CallPrepareResult)
    assert (result.allowed, result.reason, result.context) == (False, None, {})
    hangup = parse_from_bridge(json.dumps({"type": "call.hangup", "reason": "x" * 100}))
    assert isinstance(hangup, CallHangup) and hangup.reason == "x" * 64


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[1, 2]", "the first frame must be a JSON object, not an array"),
        ('"hello"', "a JSON object, not a string"),
        ("{not json", "this one is not JSON"),
        ('{"bridge_id": "b"}', "a frame needs a 'type'"),
        ('{"type": "call.ack", "call_id": "c", "seq": 1}', "must be bridge.hello, not 'call.ack'"),
        ('{"type": "bridge.hi"}', "must be bridge.hello, not 'bridge.hi'"),
        ('{"type": "bridge.hello"}', "bridge.hello.bridge_id is missing"),
        ('{"type": "bridge.hello", "bridge_id": 7}', "bridge.hello.bridge_id must be a string"),
        ('{"type": "bridge.hello", "bridge_id": ""}', "bridge.hello.bridge_id must not be empty"),
        ('{"type": "bridge.hello", "bridge_id": "b", "status": []}', "status must be an object"),
    ],
)
def test_bad_hellos_name_the_problem(data, message):
    with pytest.raises(FrameError) as caught:
        parse_hello(data)
    assert message.removeprefix("the first frame ") in str(caught.value)


def test_bad_frames_name_the_field_and_unknown_types_are_distinct():
    with pytest.raises(FrameError, match=r"call\.prepare\.result\.reply_to must be a string"):
        parse_from_bridge('{"type": "call.prepare.result", "reply_to": 5, "allowed": true}')
    with pytest.raises(FrameError, match=r"result\.context must have 'parts' as a list of objects"):
        parse_from_bridge(
            '{"type": "call.prepare.result", "reply_to": "r", "context": {"parts": 1}}'
        )
    with pytest.raises(FrameError, match=r"call\.ack\.seq must be an integer"):
        parse_from_bridge('{"type": "call.ack", "call_id": "c", "seq": true}')
    with pytest.raises(UnknownFrame) as unknown:
        parse_from_bridge('{"type": "call.from_a_newer_bridge", "call_id": "c", "text": "hi"}')
    assert unknown.value.kind == "call.from_a_newer_bridge"
    with pytest.raises(UnknownFrame):
        parse_from_gateway('{"type": "call.from_a_newer_gateway", "call_id": "c"}')
    with pytest.raises(FrameError, match=r"call\.delegate\.question"):
        parse_from_gateway(
            '{"type": "call.delegate", "call_id": "c", "delegation_id": "d", "revision": 1}'
        )


def test_a_deeply_nested_frame_is_a_frame_error():
    with pytest.raises(FrameError, match="nest arrays or objects this deeply"):
        parse_from_bridge("[" * 5000 + "]" * 5000)


def test_close_reasons_fit_a_close_frame():
    assert close_reason("short") == "short"
    long = close_reason("é" * 200)
    assert len(long.encode()) <= MAX_CLOSE_REASON_BYTES and long.endswith("...")
