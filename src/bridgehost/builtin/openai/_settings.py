"""The ``[plugins.openai]`` settings and the server-side session config sent with each call.

The session config is built on the gateway from ``bridge.config.toml`` and the call's assembled
instructions, and travels to OpenAI with the server key in the ``POST /v1/realtime/calls``
request that carries the browser's SDP offer: the browser never sees a key, the prompt or the
config, so it cannot change them (the original implementation's weaknesses 12.2 and 12.3).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bridgehost.builtin._openai_sdk import KEY_FIX
from bridgehost.builtin.openai._ask_codex import ASK_CODEX_TOOL
from bridgehost.builtin.openai._ask_codex import INSTRUCTIONS as ASK_CODEX_INSTRUCTIONS
from bridgehost.config import RealtimeConfig

NAME = "openai"
"""The backend's name, as ``realtime.backend`` selects it."""


class OpenAISettings(BaseModel):
    """``[plugins.openai]``: optional tuning of the OpenAI Realtime backend.

    The model, voice and transcription model are ``realtime.model``, ``realtime.voice`` and
    ``realtime.transcription_model``; this table only holds what is specific to OpenAI.
    """

    # Built when the config selects this backend and validates its table, not at registration.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    turn_detection: Literal["server_vad", "semantic_vad"] = Field(
        "server_vad",
        description="How OpenAI decides the caller has finished a turn: "
        "server_vad (silence) or semantic_vad (meaning)",
    )
    eagerness: Literal["low", "medium", "high", "auto"] = Field(
        "auto", description="With semantic_vad: how quickly the model answers"
    )
    vad_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="With server_vad: speech activation threshold, 0 to 1"
    )
    prefix_padding_ms: int = Field(
        300,
        ge=0,
        le=2000,
        description="With server_vad: audio kept before speech",
        json_schema_extra={"unit": "ms"},
    )
    silence_duration_ms: int = Field(
        500,
        ge=100,
        le=5000,
        description="With server_vad: silence that ends a turn",
        json_schema_extra={"unit": "ms"},
    )
    noise_reduction: Literal["near_field", "far_field", "off"] = Field(
        "near_field",
        description="Input noise reduction: near_field suits a phone held close; off disables it",
    )
    transcription_language: str | None = Field(
        None,
        min_length=2,
        max_length=8,
        description="ISO-639-1 language of the caller (improves transcripts); unset: detected",
        examples=["en"],
    )
    request_timeout_s: float = Field(
        15.0,
        gt=0,
        le=120,
        description="Timeout of each HTTP request and sideband handshake",
        json_schema_extra={"unit": "s"},
    )
    max_retries: int = Field(
        1,
        ge=0,
        le=5,
        description="SDK retries of a failed request (429, 5xx, network)",
        json_schema_extra={"unit": "count"},
    )
    close_timeout_s: float = Field(
        3.0,
        gt=0,
        le=4.5,
        description="Time allowed for the hang-up and the final events, bounded below the "
        "gateway's 5 s backend-close limit",
        json_schema_extra={"unit": "s"},
    )
    ask_codex_tool: bool = Field(
        True,
        description="Declare the ask_codex function tool, so the voice model can ask the "
        "coding agent (Codex) during the call",
    )
    sideband_reconnects: int = Field(
        2,
        ge=0,
        le=5,
        description="Attempts to re-attach a sideband that dropped abnormally",
        json_schema_extra={"unit": "count"},
    )


def turn_detection(settings: OpenAISettings) -> dict[str, Any]:
    """The ``audio.input.turn_detection`` object for the settings."""
    if settings.turn_detection == "semantic_vad":
        return {
            "type": "semantic_vad",
            "eagerness": settings.eagerness,
            "create_response": True,
            "interrupt_response": True,
        }
    return {
        "type": "server_vad",
        "threshold": settings.vad_threshold,
        "prefix_padding_ms": settings.prefix_padding_ms,
        "silence_duration_ms": settings.silence_duration_ms,
        "create_response": True,
        "interrupt_response": True,
    }


def session_config(
    realtime: RealtimeConfig, settings: OpenAISettings, instructions: str
) -> dict[str, Any]:
    """The GA realtime session object for one call (``session`` of ``calls.create``).

    Input transcription is always on: it is the only source of the caller's side of the
    transcript. There is no expiry to set: no client secret is minted, and the gateway ends the
    call itself (hang-up through the calls API) at its caps.
    """
    transcription: dict[str, Any] = {"model": realtime.transcription_model}
    if settings.transcription_language:
        transcription["language"] = settings.transcription_language
    audio_input: dict[str, Any] = {
        "transcription": transcription,
        "turn_detection": turn_detection(settings),
    }
    if settings.noise_reduction != "off":
        audio_input["noise_reduction"] = {"type": settings.noise_reduction}
    config: dict[str, Any] = {
        "type": "realtime",
        "model": realtime.model,
        "output_modalities": ["audio"],
        "audio": {"input": audio_input, "output": {"voice": realtime.voice}},
    }
    if settings.ask_codex_tool:
        config["tools"] = [ASK_CODEX_TOOL]
        config["tool_choice"] = "auto"
        instructions = (instructions + ASK_CODEX_INSTRUCTIONS) if instructions else ""
    if instructions:
        config["instructions"] = instructions
    return config


__all__ = ["KEY_FIX", "NAME", "OpenAISettings", "session_config", "turn_detection"]
