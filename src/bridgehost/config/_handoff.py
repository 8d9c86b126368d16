"""``[handoff]`` and ``[handoff.prices]``: where a finished call goes, how deliveries retry, and
the prices its cost estimate uses."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bridgehost.config._fields import setting
from bridgehost.config._problems import CrossFieldError, FieldProblem, Issue

_STRICT = ConfigDict(extra="forbid", frozen=True)


class PricesConfig(BaseModel):
    """``[handoff.prices]``: prices used to estimate a call's cost in the handoff (USD).

    The defaults approximate OpenAI's list prices for the gpt-realtime family (audio input
    ~10 tokens/s at $32/M, output ~20 tokens/s at $64/M); set them from the current price list
    of ``realtime.model``. They only affect the estimate shown, never the budget.
    """

    model_config = _STRICT

    audio_input_usd_per_minute: float = setting(
        0.02,
        "Estimated price of one minute of the caller's audio",
        unit="USD/minute",
        strict=True,
        ge=0,
    )
    audio_output_usd_per_minute: float = setting(
        0.08,
        "Estimated price of one minute of the model's audio",
        unit="USD/minute",
        strict=True,
        ge=0,
    )
    text_input_usd_per_million_tokens: float = setting(
        4.0,
        "Price of text input tokens (instructions, context)",
        unit="USD per 1M tokens",
        strict=True,
        ge=0,
    )
    text_output_usd_per_million_tokens: float = setting(
        16.0,
        "Price of text output tokens",
        unit="USD per 1M tokens",
        strict=True,
        ge=0,
    )


class HandoffConfig(BaseModel):
    """``[handoff]``: where a finished call's artifact goes and how deliveries retry."""

    model_config = _STRICT

    sinks: list[str] = setting(
        ["file", "codex", "telegram"],
        "Handoff sink providers; each gets every artifact",
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
        "First retry delay; doubles per attempt",
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
        description="Prices used to estimate a call's cost. Default: see [handoff.prices].",
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
