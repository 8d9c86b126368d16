"""bridgehost's durable state: per-process SQLite stores and per-call event logs.

Each process owns its own database (``gateway.db``, ``bridge.db``) and nobody read-modify-writes
another process's state; :class:`Store` records its owner and refuses any other. The gateway also
writes one append-only :class:`CallLog` per call under ``calls/``. The API is synchronous; callers
on the event loop keep transactions short.

    paths = default_paths(config.storage.root)
    with Store.open(paths.gateway_db, "gateway", GATEWAY_MIGRATIONS) as store:
        with store.transaction():
            store.execute("INSERT INTO calls (id) VALUES (?)", (call_id,))
    CallLog(paths.call_log(call_id)).append({"type": "call.started", "seq": 1})
"""

from bridgehost.basics import validate_call_id
from bridgehost.state._db import Store
from bridgehost.state._errors import StateError
from bridgehost.state._migrations import Migration
from bridgehost.state._paths import EVENTS_FILENAME, StatePaths, default_paths
from bridgehost.state.calllog import (
    DEFAULT_MAX_LINE_BYTES,
    CallLog,
    ReadResult,
    list_call_logs,
)

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "EVENTS_FILENAME",
    "CallLog",
    "Migration",
    "ReadResult",
    "StateError",
    "StatePaths",
    "Store",
    "default_paths",
    "list_call_logs",
    "validate_call_id",
]
