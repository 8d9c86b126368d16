"""The bridge's own state (``{storage.root}/bridge.db``): binding, session owner, received calls.

bridge-telegram owns this file. ``bridgectl bind``, ``claim`` and ``release`` are the operator
acting for the bridge: each is one short transaction on one setting, so they never race the
daemon into a lost update, and the daemon reads the binding fresh whenever it needs it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bridgehost.basics import iso, utc_now
from bridgehost.state import Migration, Store, default_paths

Owner = Literal["telegram", "desktop"]
HandoffState = Literal["pending", "handed", "discarded"]

BRIDGE_MIGRATIONS = [
    Migration(
        1,
        "calls and their events as received from the gateway",
        sql="""
        CREATE TABLE bridge_calls (
            call_id TEXT PRIMARY KEY,
            thread_id TEXT,
            telegram_user_id INTEGER,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT,
            end_reason TEXT,
            ended_by TEXT,
            last_seq INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE bridge_call_events (
            call_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            event TEXT NOT NULL,
            PRIMARY KEY (call_id, seq)
        );
        CREATE TABLE processed_updates (
            update_id INTEGER PRIMARY KEY,
            processed_at TEXT NOT NULL
        );
        CREATE TABLE call_notes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            call_id TEXT,
            text TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        """,
    ),
    Migration(
        2,
        "bridge-telegram: whether an ended call was handed to the handoff pipeline",
        sql="""
        ALTER TABLE bridge_calls ADD COLUMN handoff_state TEXT;
        CREATE INDEX call_notes_by_call ON call_notes (call_id);
        """,
    ),
    Migration(
        10,
        "bridge-telegram: chat messages on their way to the bound Codex thread",
        sql="""
        CREATE TABLE chat_inbox (
            update_id INTEGER PRIMARY KEY,
            payload TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'done')),
            placeholder_id INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX chat_inbox_pending ON chat_inbox (status, update_id);
        """,
    ),
    # Versions 20+ belong to the handoff (bridgehost.handoff.outbox); keep lower ones above.
    Migration(
        20,
        "handoff artifacts and the per-sink delivery outbox",
        sql="""
        CREATE TABLE handoff_artifacts (
            call_id TEXT PRIMARY KEY,
            payload TEXT NOT NULL,
            summarized INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE handoff_outbox (
            call_id TEXT NOT NULL,
            sink TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('pending', 'delivering', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            last_error TEXT,
            receipt TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            delivered_at TEXT,
            PRIMARY KEY (call_id, sink)
        );
        CREATE INDEX handoff_outbox_due ON handoff_outbox (status, next_attempt_at);
        """,
    ),
]
"""Migrations of ``bridge.db``; later features append to this list, never edit an entry."""


@dataclass(frozen=True)
class Binding:
    """Which Codex thread calls hand off to, and who owns the session now."""

    thread_id: str | None
    owner: Owner
    bound_at: str | None

    def to_json(self) -> dict[str, Any]:
        """For status output and ``bridge.status`` messages."""
        return {"thread_id": self.thread_id, "owner": self.owner, "bound_at": self.bound_at}


class BridgeStore:
    """Typed access to ``bridge.db``."""

    def __init__(self, store: Store) -> None:
        self.db = store

    @classmethod
    def open(cls, storage_root: Path) -> BridgeStore:
        """Open (and migrate) the bridge's database under ``storage_root``."""
        return cls(Store.open(default_paths(storage_root).bridge_db, "bridge", BRIDGE_MIGRATIONS))

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # -- binding and owner ---------------------------------------------------------------

    def binding(self) -> Binding:
        """The current binding (owner defaults to telegram)."""
        data = self.db.get_setting("binding") or {}
        owner: Owner = "desktop" if data.get("owner") == "desktop" else "telegram"
        return Binding(data.get("thread_id"), owner, data.get("bound_at"))

    def _update_binding(self, **changes: Any) -> Binding:
        with self.db.transaction():
            data = self.db.get_setting("binding") or {}
            data.update(changes)
            self.db.set_setting("binding", data)
        return self.binding()

    def bind(self, thread_id: str) -> Binding:
        """Bind calls to a Codex thread."""
        return self._update_binding(thread_id=thread_id, bound_at=iso(utc_now()))

    def set_owner(self, owner: Owner) -> Binding:
        """Hand the session to Telegram (``claim``) or the desktop (``release``)."""
        return self._update_binding(owner=owner)

    # -- calls and events ------------------------------------------------------------------

    def record_event(self, call_id: str, event: dict[str, Any]) -> bool:
        """Store one forwarded event; False when ``(call_id, seq)`` was already stored."""
        seq = int(event["seq"])
        with self.db.transaction():
            if self.db.query_one(
                "SELECT 1 FROM bridge_call_events WHERE call_id = ? AND seq = ?", (call_id, seq)
            ):
                return False
            self.db.execute(
                "INSERT OR IGNORE INTO bridge_calls (call_id, status, created_at) "
                "VALUES (?, 'live', ?)",
                (call_id, event.get("at") or iso(utc_now())),
            )
            self.db.execute(
                "INSERT INTO bridge_call_events (call_id, seq, event) VALUES (?,?,?)",
                (call_id, seq, json.dumps(event)),
            )
            self.db.execute(
                "UPDATE bridge_calls SET last_seq = MAX(last_seq, ?) WHERE call_id = ?",
                (seq, call_id),
            )
            if event.get("type") == "call.started":
                self.db.execute(
                    "UPDATE bridge_calls SET started_at = ? WHERE call_id = ?",
                    (event.get("at"), call_id),
                )
            if event.get("type") == "call.ended":
                self.db.execute(
                    "UPDATE bridge_calls SET status = 'ended', ended_at = ?, end_reason = ?, "
                    "ended_by = ? WHERE call_id = ?",
                    (event.get("at"), event.get("reason"), event.get("ended_by"), call_id),
                )
        return True

    def set_call_details(
        self, call_id: str, *, thread_id: str | None, telegram_user_id: int | None
    ) -> None:
        """Remember the thread and user a prepared call belongs to."""
        with self.db.transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO bridge_calls (call_id, status, created_at) "
                "VALUES (?, 'preparing', ?)",
                (call_id, iso(utc_now())),
            )
            self.db.execute(
                "UPDATE bridge_calls SET thread_id = ?, telegram_user_id = ? WHERE call_id = ?",
                (thread_id, telegram_user_id, call_id),
            )

    def call_events(self, call_id: str) -> list[dict[str, Any]]:
        """A call's events in sequence order."""
        rows = self.db.query(
            "SELECT event FROM bridge_call_events WHERE call_id = ? ORDER BY seq", (call_id,)
        )
        return [json.loads(row["event"]) for row in rows]

    def call(self, call_id: str) -> dict[str, Any] | None:
        """One call's row."""
        row = self.db.query_one("SELECT * FROM bridge_calls WHERE call_id = ?", (call_id,))
        return dict(row) if row else None

    def live_call(self) -> dict[str, Any] | None:
        """The call that has not ended yet, if any."""
        row = self.db.query_one(
            "SELECT * FROM bridge_calls WHERE status != 'ended' ORDER BY created_at DESC LIMIT 1"
        )
        return dict(row) if row else None

    def recent_calls(self, limit: int = 10) -> list[dict[str, Any]]:
        """The newest calls."""
        rows = self.db.query(
            "SELECT * FROM bridge_calls ORDER BY created_at DESC LIMIT ?", (limit,)
        )
        return [dict(row) for row in rows]

    # -- Telegram ------------------------------------------------------------------------------

    def first_time_update(self, update_id: int) -> bool:
        """True once per Telegram update id: side effects run once even after a restart."""
        with self.db.transaction():
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO processed_updates (update_id, processed_at) VALUES (?, ?)",
                (update_id, iso(utc_now())),
            )
        return cursor.rowcount == 1

    def add_note(self, text: str, call_id: str | None) -> None:
        """Something the user sent to the chat (during a call: it goes into the handoff)."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO call_notes (call_id, text, created_at) VALUES (?, ?, ?)",
                (call_id, text[:4000], iso(utc_now())),
            )

    def notes(self, call_id: str) -> list[str]:
        """Notes sent during a call."""
        rows = self.db.query(
            "SELECT text FROM call_notes WHERE call_id = ? ORDER BY id", (call_id,)
        )
        return [row["text"] for row in rows]

    # -- bridge-telegram: handoff hand-over, queued notes, update bookkeeping -------------------

    def set_handoff_state(self, call_id: str, state: HandoffState) -> None:
        """Record where an ended call stands: ``pending`` (to hand over), ``handed`` (the
        pipeline took it) or ``discarded`` (it never started: no recap)."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE bridge_calls SET handoff_state = ? WHERE call_id = ?", (state, call_id)
            )

    def calls_awaiting_handoff(self) -> list[dict[str, Any]]:
        """Ended calls not yet handed to the pipeline nor discarded (a crash came between)."""
        rows = self.db.query(
            "SELECT * FROM bridge_calls WHERE status = 'ended' "
            "AND (handoff_state IS NULL OR handoff_state = 'pending') ORDER BY created_at"
        )
        return [dict(row) for row in rows]

    def claim_queued_notes(self, call_id: str, *, since: str, limit: int = 20) -> list[str]:
        """Give the newest notes sent outside a call (not older than ``since``) to ``call_id``;
        return their texts, oldest first."""
        with self.db.transaction():
            rows = self.db.query(
                "SELECT id, text FROM call_notes WHERE call_id IS NULL AND created_at >= ? "
                "ORDER BY id DESC LIMIT ?",
                (since, limit),
            )
            ids = [row["id"] for row in rows]
            if ids:
                marks = ", ".join("?" * len(ids))
                self.db.execute(
                    f"UPDATE call_notes SET call_id = ? WHERE id IN ({marks})", (call_id, *ids)
                )
        return [row["text"] for row in reversed(rows)]

    def release_notes(self, call_id: str) -> int:
        """Put a discarded call's notes back in the queue for the next call."""
        with self.db.transaction():
            cursor = self.db.execute(
                "UPDATE call_notes SET call_id = NULL WHERE call_id = ?", (call_id,)
            )
        return cursor.rowcount

    def prune_processed_updates(self, before: str) -> int:
        """Forget update ids processed before ``before`` (ISO time); Telegram never resends
        an update that old."""
        with self.db.transaction():
            cursor = self.db.execute(
                "DELETE FROM processed_updates WHERE processed_at < ?", (before,)
            )
        return cursor.rowcount
