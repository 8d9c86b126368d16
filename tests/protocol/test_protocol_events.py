"""Call events as the gateway accepts them: who may send what, bounds, unknown fields dropped."""

from __future__ import annotations

import pytest

from bridgehost.protocol.events import EVENT_TYPES, EventError, validate_event


def test_clean_event_keeps_known_fields_and_the_client_clock():
    raw = {"type": "usage", "input_audio_s": 3, "input_tokens": 7, "extra": "x", "at": "12:00"}
    clean = validate_event(raw, "backend")
    assert clean == {"type": "usage", "input_audio_s": 3.0, "input_tokens": 7, "client_at": "12:00"}
    assert isinstance(clean["input_audio_s"], float)


def test_missing_and_null_fields_are_left_out():
    assert validate_event({"type": "call.started", "at": 5}, "browser") == {"type": "call.started"}
    clean = validate_event({"type": "user.transcript.final", "text": None}, "browser")
    assert clean == {"type": "user.transcript.final"}


@pytest.mark.parametrize(
    ("raw", "source", "message"),
    [
        ([], "browser", "an event must be a JSON object"),
        ({"type": "nope"}, "browser", "unknown event type 'nope'"),
        ({"type": 5}, "browser", "unknown event type '5'"),
        ({"type": "call.ended", "reason": "x"}, "browser", "browser may not send 'call.ended'"),
        ({"type": "usage"}, "browser", "browser may not send 'usage'"),
        ({"type": "vad"}, "browser", "vad.state must be speech_started or speech_stopped"),
        ({"type": "vad", "state": "x"}, "backend", "vad.state must be speech_started or"),
        ({"type": "user.transcript.final", "text": 3}, "browser", "text must be a string"),
        ({"type": "usage", "input_tokens": True}, "backend", "input_tokens must be an integer"),
        ({"type": "usage", "input_tokens": 1.5}, "backend", "input_tokens must be an integer"),
        ({"type": "usage", "output_audio_s": -1}, "backend", "output_audio_s is out of range"),
        ({"type": "usage", "output_audio_s": 1e13}, "backend", "output_audio_s is out of range"),
        ({"type": "call.start_failed", "message": "x" * 501}, "browser", "longer than 500"),
        ({"type": "user.transcript.final", "text": "\ud800"}, "browser", "not valid Unicode"),
    ],
)
def test_bad_events_are_refused_with_the_field_and_the_reason(raw, source, message):
    with pytest.raises(EventError, match=message.replace(".", r"\.").replace("(", r"\(")):
        validate_event(raw, source)


def test_the_gateway_may_send_its_own_events():
    ended = {
        "type": "call.ended",
        "reason": "idle_timeout",
        "ended_by": "gateway",
        "duration_ms": 1,
    }
    assert validate_event(ended, "gateway") == ended
    assert "call.ended" in EVENT_TYPES and "chat.message" in EVENT_TYPES
