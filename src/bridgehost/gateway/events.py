"""Call events on the gateway: the models and checks live in :mod:`bridgehost.protocol.events`.

Whatever a browser or backend reports goes through :func:`validate_event` before it reaches a
call's log; :class:`bridgehost.gateway.session.CallSession` then stamps ``seq`` and ``at``.
"""

from __future__ import annotations

from bridgehost.protocol.events import (
    EVENT_TYPES,
    MAX_SHORT,
    MAX_TEXT,
    EventError,
    Source,
    counts_as_activity,
    validate_event,
)

__all__ = [
    "EVENT_TYPES",
    "MAX_SHORT",
    "MAX_TEXT",
    "EventError",
    "Source",
    "counts_as_activity",
    "validate_event",
]
