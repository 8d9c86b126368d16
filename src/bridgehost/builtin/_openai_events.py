"""OpenAI Realtime (GA) server events → the gateway's normalized call events.

The gateway accepts only its own whitelist from a backend (``bridgehost.gateway.events``), so
every upstream event is translated here, with text bounded, or dropped:

- ``conversation.item.input_audio_transcription.completed`` → ``user.transcript.final``
- ``conversation.item.input_audio_transcription.failed`` → ``call.error``
- ``response.output_audio_transcript.done`` (or ``response.output_text.done``) →
  ``assistant.transcript.final``
- ``input_audio_buffer.speech_started`` / ``.speech_stopped`` → ``vad``
- ``response.done``: status ``cancelled`` → ``response.interrupted``; status ``failed`` →
  ``call.error``; its ``response.usage`` → ``usage``
- ``error`` → ``call.error``

``usage`` carries the billed tokens of one response, and audio seconds estimated from audio
tokens as OpenAI documents them (caller audio about 1 token per 100 ms, assistant audio about
1 token per 50 ms); only input audio not already cached counts, so the re-sent conversation is
not counted again on every turn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

MAX_TEXT = 8000
MAX_MESSAGE = 500
MAX_CODE = 64
INPUT_AUDIO_S_PER_TOKEN = 0.1
OUTPUT_AUDIO_S_PER_TOKEN = 0.05

Event = dict[str, Any]


def _text(value: object, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    value = value.strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _count(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12:
        return value
    return 0


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _error(code: object, message: object, fallback_code: str, fallback: str) -> Event:
    return {
        "type": "call.error",
        "code": _text(code, MAX_CODE) or fallback_code,
        "message": _text(message, MAX_MESSAGE) or fallback,
    }


def _user_transcript(event: Mapping[str, Any]) -> list[Event]:
    text = _text(event.get("transcript"), MAX_TEXT)
    return [{"type": "user.transcript.final", "text": text}] if text else []


def _transcription_failed(event: Mapping[str, Any]) -> list[Event]:
    error = _mapping(event.get("error"))
    message = _text(error.get("message"), MAX_MESSAGE - 60)
    return [
        _error(
            "transcription_failed",
            "OpenAI could not transcribe what the caller said"
            + (f": {message}" if message else ""),
            "transcription_failed",
            "",
        )
    ]


def _assistant_transcript(event: Mapping[str, Any]) -> list[Event]:
    text = _text(event.get("transcript", event.get("text")), MAX_TEXT)
    return [{"type": "assistant.transcript.final", "text": text}] if text else []


def _vad(state: str) -> Callable[[Mapping[str, Any]], list[Event]]:
    def convert(event: Mapping[str, Any]) -> list[Event]:
        return [{"type": "vad", "state": state}]

    return convert


def usage_event(usage: Mapping[str, Any]) -> Event | None:
    """The ``usage`` event of one ``response.done.response.usage`` object (None when empty)."""
    inputs = _mapping(usage.get("input_token_details"))
    cached = _mapping(inputs.get("cached_tokens_details"))
    outputs = _mapping(usage.get("output_token_details"))
    new_audio_in = max(0, _count(inputs.get("audio_tokens")) - _count(cached.get("audio_tokens")))
    event: Event = {
        "type": "usage",
        "input_tokens": _count(usage.get("input_tokens")),
        "output_tokens": _count(usage.get("output_tokens")),
        "input_audio_s": round(new_audio_in * INPUT_AUDIO_S_PER_TOKEN, 3),
        "output_audio_s": round(_count(outputs.get("audio_tokens")) * OUTPUT_AUDIO_S_PER_TOKEN, 3),
    }
    return event if event["input_tokens"] or event["output_tokens"] else None


def _response_done(event: Mapping[str, Any]) -> list[Event]:
    response = _mapping(event.get("response"))
    details = _mapping(response.get("status_details"))
    out: list[Event] = []
    status = response.get("status")
    if status == "cancelled":
        out.append({"type": "response.interrupted"})
    elif status == "failed":
        error = _mapping(details.get("error"))
        out.append(
            _error(
                error.get("code"),
                error.get("message"),
                "response_failed",
                "OpenAI could not produce the assistant's answer",
            )
        )
    usage = usage_event(_mapping(response.get("usage")))
    if usage is not None:
        out.append(usage)
    return out


def _upstream_error(event: Mapping[str, Any]) -> list[Event]:
    error = _mapping(event.get("error"))
    return [
        _error(
            error.get("code") or error.get("type"),
            error.get("message"),
            "openai_error",
            "OpenAI reported an error in the call",
        )
    ]


_HANDLERS: dict[str, Callable[[Mapping[str, Any]], list[Event]]] = {
    "conversation.item.input_audio_transcription.completed": _user_transcript,
    "conversation.item.input_audio_transcription.failed": _transcription_failed,
    "response.output_audio_transcript.done": _assistant_transcript,
    "response.output_text.done": _assistant_transcript,
    "input_audio_buffer.speech_started": _vad("speech_started"),
    "input_audio_buffer.speech_stopped": _vad("speech_stopped"),
    "response.done": _response_done,
    "error": _upstream_error,
}

HANDLED_TYPES = frozenset(_HANDLERS)
"""The OpenAI server event types that produce normalized events; the rest are dropped."""


def normalize(event: Mapping[str, Any]) -> list[Event]:
    """The normalized events for one OpenAI server event (often none)."""
    handler = _HANDLERS.get(str(event.get("type")))
    return handler(event) if handler is not None else []


__all__ = ["HANDLED_TYPES", "normalize", "usage_event"]
