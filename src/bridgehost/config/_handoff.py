"""``[handoff]`` and ``[handoff.prices]``: where a finished call goes, how deliveries retry, and
the prices its cost estimate uses."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bridgehost.config._fields import setting
from bridgehost.config._problems import CrossFieldError, FieldProblem, Issue
from bridgehost.config._removed import drop_removed

_STRICT = ConfigDict(extra="forbid", frozen=True)


def _price(default: float, description: str) -> float:
    return setting(  # type: ignore[no-any-return]
        default, description, unit="USD per 1M tokens", strict=True, ge=0, allow_inf_nan=False
    )


class PricesConfig(BaseModel):
    """``[handoff.prices]``: what one token of each billed class costs (USD).

    A realtime response bills uncached text input, uncached audio input, cached input, text
    output and audio output; the input transcription is billed apart, at the transcription
    model's price (per token, or per minute for models billed by duration). Each token is
    priced once at its class's rate (:func:`bridgehost.cost.cost_usd`). The defaults
    approximate OpenAI's list prices for the gpt-realtime family and gpt-4o-transcribe; set
    them from the current price list of ``realtime.model`` and
    ``realtime.transcription_model``. They drive the estimate shown in status and the handoff,
    and ``realtime.max_daily_cost_usd``.
    """

    model_config = _STRICT

    text_input_usd_per_million_tokens: float = _price(
        4.0, "Price of uncached text input tokens (instructions, context, transcripts)"
    )
    audio_input_usd_per_million_tokens: float = _price(
        32.0, "Price of uncached audio input tokens (the caller's audio, ~10 tokens/s)"
    )
    cached_input_usd_per_million_tokens: float = _price(
        0.4, "Price of cached input tokens, text or audio (the re-sent conversation)"
    )
    text_output_usd_per_million_tokens: float = _price(16.0, "Price of text output tokens")
    audio_output_usd_per_million_tokens: float = _price(
        64.0, "Price of audio output tokens (the model's voice, ~20 tokens/s)"
    )
    transcription_input_usd_per_million_tokens: float = _price(
        6.0, "Price of the transcription model's audio input tokens"
    )
    transcription_output_usd_per_million_tokens: float = _price(
        10.0, "Price of the transcription model's text output tokens"
    )
    transcription_usd_per_minute: float = setting(
        0.006,
        "Price of transcription billed by duration (models that report seconds, not tokens)",
        unit="USD/minute",
        strict=True,
        ge=0,
        allow_inf_nan=False,
    )
    live_session_usd_per_minute: float = setting(
        0.05,
        "Price of GPT-Live session time (the gpt-live backend reports seconds, not tokens)",
        unit="USD/minute",
        strict=True,
        ge=0,
        allow_inf_nan=False,
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_removed(cls, data: Any) -> Any:
        """Accept and drop the per-minute audio prices older files set (``config._removed``)."""
        return drop_removed("handoff.prices", data)


class HandoffConfig(BaseModel):
    """``[handoff]``: where a finished call's artifact goes and how deliveries retry."""

    model_config = _STRICT

    sinks: list[str] = setting(
        ["file", "codex", "telegram"],
        'Handoff sink providers; every artifact goes to each: "file", "codex", "telegram", '
        "or a plugin's (`bridgectl plugins` lists them)",
    )
    codex_mode: Literal["turn", "inject"] = setting(
        "turn",
        'How the codex sink hands off: "turn" starts a turn in the bound thread, '
        '"inject" appends the artifact without starting one',
    )
    max_inline_transcript_chars: int = setting(
        20000,
        "Transcripts longer than this are attached as a file path instead of inline",
        unit="characters",
        strict=True,
        gt=0,
    )
    retry_max_attempts: int = setting(
        8,
        "Delivery attempts per sink before giving up",
        unit="count",
        strict=True,
        ge=1,
    )
    retry_base_s: float = setting(
        2.0,
        "First retry delay; doubles per attempt up to retry_max_s",
        unit="s",
        strict=True,
        gt=0,
    )
    retry_max_s: float = setting(
        300.0,
        "Longest retry delay",
        unit="s",
        strict=True,
        gt=0,
    )
    prices: PricesConfig = Field(
        default_factory=PricesConfig,
        description="What one token of each billed class costs; each token is priced once, at "
        "its class's rate. A realtime response bills uncached text input, uncached audio input, "
        "cached input, text output and audio output; the caller's transcription is billed apart "
        "at the transcription model's price. The defaults approximate the list prices of the "
        "gpt-realtime family and gpt-4o-transcribe; set them from the current price list. They "
        "drive the spend shown by `bridgectl call status`, /call status and the handoff, and "
        "realtime.max_daily_cost_usd. Default: see [handoff.prices].",
    )

    @field_validator("sinks", mode="after")
    @classmethod
    def _sinks(cls, value: list[str]) -> list[str]:
        names = [name.strip() for name in value]
        if any(not name for name in names):
            raise FieldProblem("sink names must not be empty", "remove the empty entry")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise FieldProblem(
                f"lists {', '.join(duplicates)} more than once", "name each sink once"
            )
        return names

    @model_validator(mode="after")
    def _cross_field(self) -> HandoffConfig:
        if self.retry_base_s > self.retry_max_s:
            raise CrossFieldError(
                [
                    Issue(
                        ("retry_base_s", "retry_max_s"),
                        f"handoff.retry_base_s ({self.retry_base_s:g}) must be at most "
                        f"handoff.retry_max_s ({self.retry_max_s:g})",
                        "lower handoff.retry_base_s or raise handoff.retry_max_s",
                    )
                ]
            )
        return self
