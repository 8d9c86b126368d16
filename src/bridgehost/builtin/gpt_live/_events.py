"""GPT-Live server events → the gateway's normalized call events, and end reasons.

- ``session.usage.updated`` / ``session.closed``: ``usage.seconds`` is cumulative (never sum
  it), so :class:`UsageMeter` turns it into ``usage {live_session_s}`` increments, charged as
  they arrive;
- ``error`` → ``call.error`` with OpenAI's code (``openai_error`` when it has none); a command
  error does not end the session;
- ``session.closed.reason`` → the reason the gateway records (:func:`end_reason`), one of
  the generic voice-service reasons of ``protocol.end_reasons.EndReason``.

Transcript deltas are grouped into turns by :mod:`bridgehost.builtin.gpt_live._transcript`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridgehost.protocol.end_reasons import EndReason

MAX_MESSAGE = 500
MAX_CODE = 64

Event = dict[str, Any]

CLOSE_REASONS = {
    "close_requested": EndReason.BACKEND_ENDED,
    "remote_hangup": EndReason.BACKEND_ENDED,
    "expired": EndReason.SESSION_EXPIRED,
    "content": EndReason.CONTENT_FILTERED,
    "connection_lost": EndReason.UPSTREAM_CONNECTION_LOST,
}
"""``session.closed.reason`` → the end reason the gateway records for a call GPT-Live ended."""
SIDEBAND_LOST = EndReason.SIDEBAND_LOST
"""The sideband dropped without ``session.closed``: the call cannot be followed any more."""


def end_reason(reason: object) -> str:
    """The end reason for a ``session.closed`` the gateway did not ask for."""
    return CLOSE_REASONS.get(str(reason), EndReason.BACKEND_ENDED).value


def _text(value: object, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def error_event(event: Mapping[str, Any]) -> Event:
    """The ``call.error`` for one GPT-Live ``error`` event."""
    error = event.get("error")
    error = error if isinstance(error, Mapping) else {}
    return {
        "type": "call.error",
        "code": _text(error.get("code"), MAX_CODE)
        or _text(error.get("type"), MAX_CODE)
        or "openai_error",
        "message": _text(error.get("message"), MAX_MESSAGE) or "GPT-Live reported an error",
    }


class UsageMeter:
    """Turns GPT-Live's cumulative ``usage.seconds`` into increments for the budget."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def update(self, event: Mapping[str, Any]) -> Event | None:
        """The ``usage`` event for the growth since the last report (None if none)."""
        usage = event.get("usage")
        seconds = usage.get("seconds") if isinstance(usage, Mapping) else None
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            return None
        if not 0 <= seconds < 10**9 or seconds <= self.seconds:
            return None
        grown, self.seconds = float(seconds) - self.seconds, float(seconds)
        return {"type": "usage", "live_session_s": round(grown, 3)}


__all__ = ["CLOSE_REASONS", "SIDEBAND_LOST", "UsageMeter", "end_reason", "error_event"]
