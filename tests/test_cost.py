"""Pricing: each billed token class once, transcription added, totals-only usage split."""

from __future__ import annotations

import pytest

from bridgehost.builtin.openai._events import normalize
from bridgehost.config import PricesConfig
from bridgehost.cost import TokenUsage, cost_usd, usd

# Each class at a different power of ten, so any class priced twice or missed shows.
PRICES = PricesConfig(
    text_input_usd_per_million_tokens=1.0,
    audio_input_usd_per_million_tokens=10.0,
    cached_input_usd_per_million_tokens=100.0,
    text_output_usd_per_million_tokens=1000.0,
    audio_output_usd_per_million_tokens=10000.0,
    transcription_input_usd_per_million_tokens=100000.0,
    transcription_output_usd_per_million_tokens=1000000.0,
    transcription_usd_per_minute=60.0,
)


def test_each_class_is_priced_once_at_its_own_rate() -> None:
    one_million_each = TokenUsage(*([1_000_000] * 7), transcription_s=60.0)
    assert cost_usd(one_million_each, PRICES) == 1_111_171.0


def test_a_response_is_priced_from_its_classes_not_its_input_total() -> None:
    # The SDK's example: 789 input tokens = 313 text + 476 audio, 640 of them cached.
    response = {
        "type": "response.done",
        "response": {
            "status": "completed",
            "usage": {
                "total_tokens": 821,
                "input_tokens": 789,
                "output_tokens": 32,
                "input_token_details": {
                    "text_tokens": 313,
                    "audio_tokens": 476,
                    "image_tokens": 0,
                    "cached_tokens": 640,
                    "cached_tokens_details": {
                        "text_tokens": 256,
                        "audio_tokens": 384,
                        "image_tokens": 0,
                    },
                },
                "output_token_details": {"text_tokens": 9, "audio_tokens": 23},
            },
        },
    }
    (event,) = normalize(response)
    usage = TokenUsage.from_event(event)
    assert usage == TokenUsage(
        text_input_tokens=57,
        audio_input_tokens=92,
        cached_input_tokens=640,
        text_output_tokens=9,
        audio_output_tokens=23,
    )
    assert usage.text_input_tokens + usage.audio_input_tokens + usage.cached_input_tokens == 789
    assert cost_usd(usage, PRICES) == pytest.approx(
        (57 * 1 + 92 * 10 + 640 * 100 + 9 * 1000 + 23 * 10000) / 1e6
    )


def test_transcription_usage_is_added() -> None:
    transcribed = {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "item_1",
        "content_index": 0,
        "transcript": "hello",
        "usage": {
            "type": "tokens",
            "input_tokens": 20,
            "output_tokens": 2,
            "total_tokens": 22,
            "input_token_details": {"audio_tokens": 20, "text_tokens": 0},
        },
    }
    by_duration = {**transcribed, "usage": {"type": "duration", "seconds": 30}}
    events = [*normalize(transcribed), *normalize(by_duration)]
    assert [e["type"] for e in events] == [
        "user.transcript.final",
        "usage",
        "user.transcript.final",
        "usage",
    ]
    usage = TokenUsage.total(events)
    assert usage == TokenUsage(
        transcription_input_tokens=20, transcription_output_tokens=2, transcription_s=30.0
    )
    assert cost_usd(usage, PRICES) == pytest.approx(20 * 0.1 + 2 * 1.0 + 30.0)


def test_usage_with_totals_only_counts_its_audio_as_audio() -> None:
    legacy = {"type": "usage", "input_tokens": 300, "output_tokens": 50, "input_audio_s": 10.0}
    assert TokenUsage.from_event(legacy) == TokenUsage(
        text_input_tokens=200, audio_input_tokens=100, text_output_tokens=50
    )


def test_bad_fields_count_as_nothing() -> None:
    event = {"type": "usage", "audio_output_tokens": -5, "text_input_tokens": True}
    assert TokenUsage.from_event(event).empty
    assert TokenUsage.total([{"type": "vad", "state": "speech_started"}]).empty


def test_usd_text() -> None:
    assert (usd(None), usd(0), usd(0.0042), usd(1.234)) == ("$0.00", "$0.00", "$0.0042", "$1.23")
