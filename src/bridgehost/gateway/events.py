"""Call events: the whitelist, size bounds, and the server-side stamp.

Whatever a browser or backend reports is checked here before it reaches a call's log: the type
must be one we know and the sender may send, every field is typed and bounded, unknown fields
are dropped. The gateway then stamps server time (``at``) and a per-call sequence number
(``seq``); the browser's own clock, if given, is kept only as ``client_at``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Source = Literal["browser", "backend", "gateway"]

MAX_TEXT = 8000
MAX_SHORT = 500

# type -> (who may send it, {field: (kind, max length)})
_FIELDS: dict[str, tuple[frozenset[str], dict[str, tuple[type, int]]]] = {
    "call.started": (frozenset({"browser", "backend", "gateway"}), {}),
    "call.start_failed": (frozenset({"browser", "backend"}), {"message": (str, MAX_SHORT)}),
    "call.idle_warning": (frozenset({"gateway"}), {"remaining_ms": (int, 0)}),
    "call.warning": (frozenset({"gateway"}), {"kind": (str, 64), "remaining_ms": (int, 0)}),
    "call.error": (
        frozenset({"backend", "gateway"}),
        {"code": (str, 64), "message": (str, MAX_SHORT)},
    ),
    "call.ended": (
        frozenset({"gateway"}),
        {"reason": (str, 64), "ended_by": (str, 32), "duration_ms": (int, 0)},
    ),
    "vad": (frozenset({"browser", "backend"}), {"state": (str, 32)}),
    "user.transcript.final": (frozenset({"browser", "backend"}), {"text": (str, MAX_TEXT)}),
    "assistant.transcript.final": (frozenset({"browser", "backend"}), {"text": (str, MAX_TEXT)}),
    "transcript.unavailable": (frozenset({"backend"}), {"reason": (str, MAX_SHORT)}),
    "response.interrupted": (frozenset({"browser", "backend"}), {"audio_end_ms": (int, 0)}),
    "usage": (
        frozenset({"backend"}),
        {
            "input_audio_s": (float, 0),
            "output_audio_s": (float, 0),
            "input_tokens": (int, 0),
            "output_tokens": (int, 0),
        },
    ),
    "chat.message": (frozenset({"gateway"}), {"text": (str, MAX_TEXT)}),
}

EVENT_TYPES = frozenset(_FIELDS)
_VAD_STATES = frozenset({"speech_started", "speech_stopped"})


class EventError(ValueError):
    """An event that cannot be accepted; the message says which field and why."""


def validate_event(raw: Any, source: Source) -> dict[str, Any]:
    """Check one reported event and return its clean form (type plus known fields only)."""
    if not isinstance(raw, Mapping):
        raise EventError("an event must be a JSON object")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise EventError(f"unknown event type {str(kind)[:64]!r}")
    senders, fields = _FIELDS[kind]
    if source not in senders:
        raise EventError(f"{source} may not send {kind!r}")
    clean: dict[str, Any] = {"type": kind}
    for name, (expected, limit) in fields.items():
        if name not in raw or raw[name] is None:
            continue
        clean[name] = _check_field(kind, name, raw[name], expected, limit)
    if kind == "vad" and clean.get("state") not in _VAD_STATES:
        raise EventError("vad.state must be speech_started or speech_stopped")
    client_at = raw.get("at")
    if isinstance(client_at, str) and len(client_at) <= 40:
        clean["client_at"] = client_at
    return clean


def _check_field(kind: str, name: str, value: Any, expected: type, limit: int) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or isinstance(value, bool):
        raise EventError(f"{kind}.{name} must be a {expected.__name__}")
    if expected is str and len(value) > limit:
        raise EventError(f"{kind}.{name} is longer than {limit} characters")
    if expected in (int, float) and not (0 <= value < 10**12):
        raise EventError(f"{kind}.{name} is out of range")
    return value


def counts_as_activity(event: Mapping[str, Any]) -> bool:
    """Events that show someone is talking: they reset the idle timers."""
    return event["type"] in {
        "vad",
        "user.transcript.final",
        "assistant.transcript.final",
        "response.interrupted",
    }
