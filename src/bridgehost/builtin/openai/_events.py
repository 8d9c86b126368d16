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

``usage`` carries the billed tokens of one response, split into classes that never overlap
(``input_tokens`` already includes the audio and the cached tokens, so it is kept only as a
total): uncached text input, uncached audio input, cached input (text and audio), text output
and audio output; :mod:`bridgehost.cost` prices each class once. Audio seconds are estimated
from audio tokens as OpenAI documents them (caller audio about 1 token per 100 ms, assistant
audio about 1 token per 50 ms); only input audio not already cached counts, so the re-sent
conversation is not counted again on every turn.

``conversation.item.input_audio_transcription.completed`` also yields a ``usage`` event for
the transcription, which OpenAI bills apart at the transcription model's price: its tokens
(``transcription_input_tokens``, ``transcription_output_tokens``), or ``transcription_s`` for
models billed by duration.
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
    out: list[Event] = [{"type": "user.transcript.final", "text": text}] if text else []
    usage = transcription_usage_event(_mapping(event.get("usage")))
    return [*out, usage] if usage is not None else out


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
    """The ``usage`` event of one ``response.done.response.usage`` object (None when empty).

    Cached tokens are a subset of the input tokens: they are taken out of the text and audio
    input classes, so ``text + audio + cached`` input adds up to ``input_tokens``.
    """
    inputs = _mapping(usage.get("input_token_details"))
    cached = _mapping(inputs.get("cached_tokens_details"))
    outputs = _mapping(usage.get("output_token_details"))
    input_total = _count(usage.get("input_tokens"))
    output_total = _count(usage.get("output_tokens"))
    cached_total = _count(inputs.get("cached_tokens"))
    cached_audio = _count(cached.get("audio_tokens"))
    if "text_tokens" in cached:
        cached_text = _count(cached.get("text_tokens"))
    else:  # only the audio part is itemized: the rest of the cached tokens is text
        cached_text = max(0, cached_total - cached_audio)
    audio_in = _count(inputs.get("audio_tokens"))
    text_in = _count(inputs.get("text_tokens")) if inputs else input_total
    audio_out = _count(outputs.get("audio_tokens"))
    text_out = _count(outputs.get("text_tokens")) if outputs else output_total
    new_audio_in = max(0, audio_in - cached_audio)
    event: Event = {
        "type": "usage",
        "input_tokens": input_total,
        "output_tokens": output_total,
        "text_input_tokens": max(0, text_in - cached_text),
        "audio_input_tokens": new_audio_in,
        "cached_input_tokens": max(cached_total, cached_audio + cached_text),
        "text_output_tokens": text_out,
        "audio_output_tokens": audio_out,
        "input_audio_s": round(new_audio_in * INPUT_AUDIO_S_PER_TOKEN, 3),
        "output_audio_s": round(audio_out * OUTPUT_AUDIO_S_PER_TOKEN, 3),
    }
    return event if input_total or output_total else None


def transcription_usage_event(usage: Mapping[str, Any]) -> Event | None:
    """The ``usage`` event of one input transcription's ``usage`` (None when empty).

    Token-billed models report ``{"type": "tokens", "input_tokens", "output_tokens", ...}``;
    duration-billed ones ``{"type": "duration", "seconds"}``.
    """
    if usage.get("type") == "duration":
        seconds = usage.get("seconds")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0:
            return {"type": "usage", "transcription_s": round(min(float(seconds), 1e6), 3)}
        return None
    tokens_in, tokens_out = _count(usage.get("input_tokens")), _count(usage.get("output_tokens"))
    if not tokens_in and not tokens_out:
        return None
    return {
        "type": "usage",
        "transcription_input_tokens": tokens_in,
        "transcription_output_tokens": tokens_out,
    }


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


__all__ = ["HANDLED_TYPES", "normalize", "transcription_usage_event", "usage_event"]
