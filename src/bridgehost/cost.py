"""What a call costs: billed tokens by class, each priced once at ``[handoff.prices]``.

A backend reports ``usage`` events (see :mod:`bridgehost.builtin.openai._events`). One event
carries either a realtime response's tokens, split into classes that do not overlap —
uncached text input, uncached audio input, cached input, text output, audio output — or the
input transcription's usage (tokens, or seconds for models billed by duration), which OpenAI
bills separately at the transcription model's price. :class:`TokenUsage` sums them and
:func:`cost_usd` prices each class once. The gateway uses it for the daily money cap
(``realtime.max_daily_cost_usd``); the handoff uses it for the estimate it shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridgehost.config import PricesConfig

USAGE_FIELDS = (
    "text_input_tokens",
    "audio_input_tokens",
    "cached_input_tokens",
    "text_output_tokens",
    "audio_output_tokens",
    "transcription_input_tokens",
    "transcription_output_tokens",
)
"""The token counts a ``usage`` event may carry (integers), besides :data:`SECONDS_FIELDS`."""
SECONDS_FIELDS = ("transcription_s", "live_session_s")
"""Durations a ``usage`` event may carry: transcription billed by duration, GPT-Live time."""


AUDIO_IN_PER_S = 10
"""Tokens per second of the caller's audio (about 1 per 100 ms, as OpenAI documents it)."""
AUDIO_OUT_PER_S = 20
"""Tokens per second of the model's audio (about 1 per 50 ms)."""


def _count(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12:
        return value
    return 0


def _seconds(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 10**9:
        return float(value)
    return 0.0


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Billed usage by class; the classes never overlap, so each token is priced once."""

    text_input_tokens: int = 0
    audio_input_tokens: int = 0
    cached_input_tokens: int = 0
    text_output_tokens: int = 0
    audio_output_tokens: int = 0
    transcription_input_tokens: int = 0
    transcription_output_tokens: int = 0
    transcription_s: float = 0.0
    live_session_s: float = 0.0

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> TokenUsage:
        """The classes one ``usage`` event reports (missing or bad fields count as 0).

        An event with totals only (``input_tokens``, ``output_tokens``: a backend that does
        not split them, or a log written before they were split) is split with its audio
        seconds at OpenAI's token rates; the rest counts as uncached text. Audio seconds
        without totals count as that many audio tokens.
        """
        if not any(name in event for name in (*USAGE_FIELDS, *SECONDS_FIELDS)):
            return cls._from_totals(event)
        return cls(
            **{name: _count(event.get(name)) for name in USAGE_FIELDS},
            transcription_s=_seconds(event.get("transcription_s")),
            live_session_s=_seconds(event.get("live_session_s")),
        )

    @classmethod
    def _from_totals(cls, event: Mapping[str, Any]) -> TokenUsage:
        total_in, total_out = _count(event.get("input_tokens")), _count(event.get("output_tokens"))
        audio_in = round(_seconds(event.get("input_audio_s")) * AUDIO_IN_PER_S)
        audio_out = round(_seconds(event.get("output_audio_s")) * AUDIO_OUT_PER_S)
        if total_in:  # the audio is part of the total, never more than it
            audio_in = min(total_in, audio_in)
        if total_out:
            audio_out = min(total_out, audio_out)
        return cls(
            text_input_tokens=max(0, total_in - audio_in),
            audio_input_tokens=audio_in,
            text_output_tokens=max(0, total_out - audio_out),
            audio_output_tokens=audio_out,
        )

    @classmethod
    def total(cls, events: Iterable[Mapping[str, Any]]) -> TokenUsage:
        """The sum over every ``usage`` event in ``events`` (other events are skipped)."""
        summed = cls()
        for event in events:
            if event.get("type") == "usage":
                summed = summed + cls.from_event(event)
        return summed

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    @property
    def empty(self) -> bool:
        """Nothing was reported."""
        return self == TokenUsage()


def cost_usd(usage: TokenUsage, prices: PricesConfig) -> float:
    """The estimated price of ``usage`` in USD: every class once, at its own rate."""
    per_token = (
        usage.text_input_tokens * prices.text_input_usd_per_million_tokens
        + usage.audio_input_tokens * prices.audio_input_usd_per_million_tokens
        + usage.cached_input_tokens * prices.cached_input_usd_per_million_tokens
        + usage.text_output_tokens * prices.text_output_usd_per_million_tokens
        + usage.audio_output_tokens * prices.audio_output_usd_per_million_tokens
        + usage.transcription_input_tokens * prices.transcription_input_usd_per_million_tokens
        + usage.transcription_output_tokens * prices.transcription_output_usd_per_million_tokens
    ) / 1e6
    per_minute = (
        usage.transcription_s / 60 * prices.transcription_usd_per_minute
        + usage.live_session_s / 60 * prices.live_session_usd_per_minute
    )
    return round(per_token + per_minute, 6)


def usd(amount: float | None) -> str:
    """``$0.42`` (cents), ``$0.0042`` below a cent, ``$0.00`` for nothing."""
    if not amount:
        return "$0.00"
    return f"${amount:.2f}" if amount >= 0.01 else f"${amount:.4f}"


__all__ = ["USAGE_FIELDS", "TokenUsage", "cost_usd", "usd"]
