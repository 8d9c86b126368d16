"""GA Realtime session objects for the fake (defaults, GA-only validation, merging), plus the
small audio/text/usage helpers of :mod:`fakes.openai_realtime`."""

from __future__ import annotations

import array
import copy
import math
import re
import time
from typing import Any

from .openai_common import new_id

DEFAULT_MODEL = "gpt-realtime"

#: Top-level keys of the beta session shape; the GA API closes the socket (4000) on these.
BETA_KEYS = (
    "modalities",
    "voice",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "turn_detection",
)


class SessionError(ValueError):
    """A session config the real API would reject; carries the API's error fields."""

    def __init__(
        self, message: str, *, code: str, param: str | None = None, fatal: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        #: The GA API closes a WebSocket with code 4000 for this error (beta shape).
        self.fatal = fatal


def default_session(model: str = DEFAULT_MODEL) -> dict[str, Any]:
    """The full effective session the GA API reports before any update."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess", 21),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "include": None,
        "expires_at": int(time.time()) + 3600,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "create_response": True,
                    "interrupt_response": True,
                    "idle_timeout_ms": None,
                },
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "alloy",
                "speed": 1.0,
            },
        },
    }


def validate_session(cfg: Any, *, allow_transcription: bool = False) -> None:
    """Raise :class:`SessionError` for what the GA API rejects in a (partial) session object."""
    if not isinstance(cfg, dict):
        raise SessionError(
            "Invalid type for 'session': expected an object.", code="invalid_type", param="session"
        )
    beta = [key for key in BETA_KEYS if key in cfg]
    if beta:
        raise SessionError(
            f"The beta Realtime API shape is no longer supported (got {', '.join(beta)}); "
            "use the GA session shape.",
            code="beta_api_shape_disabled",
            fatal=True,
        )
    kinds = ("realtime", "transcription") if allow_transcription else ("realtime",)
    if "type" not in cfg:
        raise SessionError(
            "Missing required parameter: 'session.type'.",
            code="missing_required_parameter",
            param="session.type",
        )
    if cfg["type"] not in kinds:
        raise SessionError(
            f"Invalid value: '{cfg['type']}'. Supported values are: "
            + ", ".join(f"'{k}'" for k in kinds)
            + ".",
            code="invalid_value",
            param="session.type",
        )
    modalities = cfg.get("output_modalities")
    if modalities is not None and modalities not in (["audio"], ["text"]):
        raise SessionError(
            "Invalid 'session.output_modalities': use ['audio'] or ['text'].",
            code="invalid_value",
            param="session.output_modalities",
        )
    audio = cfg.get("audio") or {}
    if not isinstance(audio, dict):
        raise SessionError(
            "Invalid type for 'session.audio': expected an object.",
            code="invalid_type",
            param="session.audio",
        )
    for side in ("input", "output"):
        part = audio.get(side) or {}
        fmt = part.get("format") if isinstance(part, dict) else None
        if fmt is not None and not isinstance(fmt, dict):
            raise SessionError(
                f"Invalid type for 'session.audio.{side}.format': expected an object, but got "
                "a string instead.",
                code="invalid_type",
                param=f"session.audio.{side}.format",
            )
        if (
            isinstance(fmt, dict)
            and fmt.get("type") == "audio/pcm"
            and fmt.get("rate", 24000) != 24000
        ):
            raise SessionError(
                "Invalid 'rate': audio/pcm supports only 24000.",
                code="invalid_value",
                param=f"session.audio.{side}.format.rate",
            )


def merge_session(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the fields present in ``patch`` changed (objects merged, ``model`` kept)."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if key in ("model", "id", "object") and key in merged:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_session(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def session_from_request(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """The effective session for a validated creation request (client secret or call)."""
    cfg = cfg or {"type": "realtime"}
    base = default_session(cfg.get("model") or DEFAULT_MODEL)
    if cfg.get("type") == "transcription":
        base.update(type="transcription", object="realtime.transcription_session")
    return merge_session(base, cfg)


def transcription_enabled(session: dict[str, Any]) -> bool:
    """Whether the session asked for input transcription (off by default in the real API)."""
    return bool(((session.get("audio") or {}).get("input") or {}).get("transcription"))


def turn_detection(session: dict[str, Any]) -> dict[str, Any] | None:
    """The session's turn detection config, ``None`` when the client drives turns itself."""
    return ((session.get("audio") or {}).get("input") or {}).get("turn_detection")


#: 100 ms of a 600 Hz tone, PCM16 24 kHz mono: the audio of ``response.output_audio.delta``.
TONE_100MS = array.array(
    "h", (int(8000 * math.sin(2 * math.pi * 600 * i / 24000)) for i in range(2400))
).tobytes()


def pcm16_rms(data: bytes) -> float:
    """Root mean square of little-endian signed 16-bit samples."""
    samples = array.array("h", data[: len(data) // 2 * 2])
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def chunks(text: str) -> list[str]:
    """Split text into word-sized deltas that join back exactly to the original."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def usage(audio_ms: float, session: dict[str, Any], text: str, seconds: float) -> dict[str, Any]:
    """``response.done.response.usage``: ~1 token per 100 ms heard, per 50 ms spoken."""
    audio_in = int(audio_ms / 100)
    text_in = len(str(session.get("instructions") or "").split()) + 10
    text_out, audio_out = len(chunks(text)), int(seconds / 0.05)
    return {
        "total_tokens": audio_in + text_in + text_out + audio_out,
        "input_tokens": audio_in + text_in,
        "output_tokens": text_out + audio_out,
        "input_token_details": {
            "text_tokens": text_in,
            "audio_tokens": audio_in,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }
