"""journald's native protocol for :mod:`bridgehost.logging`: events become indexed fields.

One rendered event becomes ``MESSAGE`` (the event and its keys as ``key=value``), ``PRIORITY``,
``SYSLOG_IDENTIFIER``, ``EVENT``, ``LOGGER`` and one field per key (``call_id`` → ``CALL_ID``),
sent as a datagram to journald's socket by :class:`JournaldHandler`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from logging_journald import JournaldTransport

JOURNAL_SOCKET = "/run/systemd/journal/socket"
_PRIORITIES = {"debug": 7, "info": 6, "warning": 4, "warn": 4, "error": 3, "critical": 2}
_FIELD_BAD_CHARS = re.compile(r"[^A-Z0-9_]")
_RESERVED_FIELDS = frozenset({"MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "EVENT", "LOGGER"})


def journal_field_name(key: str) -> str:
    """Turn an event key into a valid journald field name (``call_id`` → ``CALL_ID``).

    journald accepts ``[A-Z0-9_]``, at most 64 characters, not starting with ``_`` (trusted,
    set by journald itself) nor with a digit. Keys that would collide with the fields this
    module sets (``message`` …) get an ``F_`` prefix.
    """
    name = _FIELD_BAD_CHARS.sub("_", key.upper()).lstrip("_")
    if not name or name[0].isdigit() or name in _RESERVED_FIELDS:
        name = "F_" + name
    return name[:64]


def _journal_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | dict | list) or value is None:
        return json.dumps(value, default=repr)
    return str(value)


def _logfmt(event_dict: Mapping[str, Any]) -> str:
    parts = []
    for key, value in event_dict.items():
        text = _journal_value(value)
        if not text or set(text) & {" ", "\t", "=", '"', "'", "\n"}:
            text = repr(text)
        parts.append(f"{key}={text}")
    return " ".join(parts)


def journal_fields(event_dict: Mapping[str, Any], service: str) -> list[tuple[str, str | int]]:
    """Turn one rendered event into journald fields: MESSAGE, PRIORITY, … then one per key.

    ``MESSAGE`` (what ``journalctl`` shows) is the event followed by its other keys as
    ``key=value``, then the traceback, if any, on the following lines.
    """
    ed = dict(event_dict)
    event = _journal_value(ed.pop("event", ""))
    level = str(ed.pop("level", "info")).lower()
    ed.pop("timestamp", None)  # journald stamps every entry itself
    logger_name = ed.pop("logger", None)
    trailers = [str(ed.pop(key)) for key in ("stack", "exception") if key in ed]

    message = " ".join(part for part in (event, _logfmt(ed)) if part)
    fields: list[tuple[str, str | int]] = [
        ("MESSAGE", "\n".join([message, *trailers])),
        ("PRIORITY", _PRIORITIES.get(level, 6)),
        ("SYSLOG_IDENTIFIER", service),
        ("EVENT", event),
    ]
    if logger_name is not None:
        fields.append(("LOGGER", str(logger_name)))
    fields.extend((journal_field_name(str(k)), _journal_value(v)) for k, v in ed.items())
    return fields


class JournaldHandler(logging.Handler):
    """Sends records to journald; writes the message to ``fallback`` if journald is gone.

    Its formatter renders JSON (``ProcessorFormatter`` must return a string); the handler parses
    it back into fields. The round trip costs microseconds and keeps every step ordinary.
    """

    def __init__(self, service: str, socket_path: str | os.PathLike[str], fallback: TextIO) -> None:
        super().__init__()
        self.service = service
        # Unconnected: every send addresses the path, as sd_journal_sendv() does, so a restarted
        # journald (a new socket at the same path) is picked up and a missing one is not fatal.
        self.transport = JournaldTransport(socket_path=Path(socket_path), connected=False)
        self.fallback = fallback

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = journal_fields(json.loads(self.format(record)), self.service)
        except Exception:
            self.handleError(record)
            return
        try:
            self.transport.send(fields)
        except OSError:
            try:
                self.fallback.write(f"{fields[0][1]}\n")
                self.fallback.flush()
            except Exception:
                self.handleError(record)

    def close(self) -> None:
        self.transport.socket.close()
        super().close()
