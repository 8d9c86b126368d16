"""Chat messages on their way to the bound Codex thread (table ``chat_inbox`` of ``bridge.db``).

A message from the authorized chat is written here before anything else happens to it, keyed by
its Telegram update id, and marked ``done`` only once its answer is in the chat. A message that
could not reach Codex stays ``pending`` and is tried again (also after a restart), in update id
order. ``placeholder_id`` is the chat message the answer streams into, so a retry edits that
message instead of sending a second one. The Telegram update offset is kept here too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bridgehost.basics import iso, utc_now
from bridgehost.state.bridge_store import BridgeStore

OFFSET_KEY = "telegram_update_offset"


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """One pending message: ``payload`` is what the conversation needs to run its turn."""

    update_id: int
    payload: dict[str, Any]
    placeholder_id: int | None
    attempts: int


class ChatInbox:
    """Typed access to ``chat_inbox`` on the daemon's store."""

    def __init__(self, store: BridgeStore) -> None:
        self.db = store.db

    def add(self, update_id: int, payload: dict[str, Any]) -> bool:
        """Keep a new message; False when this update id was kept before."""
        now = iso(utc_now())
        with self.db.transaction():
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO chat_inbox (update_id, payload, status, created_at, "
                "updated_at) VALUES (?, ?, 'pending', ?, ?)",
                (update_id, json.dumps(payload), now, now),
            )
        return cursor.rowcount == 1

    def pending(self) -> list[InboxEntry]:
        """Messages not answered yet, oldest first."""
        rows = self.db.query(
            "SELECT update_id, payload, placeholder_id, attempts FROM chat_inbox "
            "WHERE status = 'pending' ORDER BY update_id"
        )
        return [
            InboxEntry(int(r[0]), json.loads(r[1]), r[2] if r[2] is None else int(r[2]), int(r[3]))
            for r in rows
        ]

    def set_placeholder(self, update_id: int, message_id: int) -> None:
        """Remember the chat message the answer streams into."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE chat_inbox SET placeholder_id = ?, updated_at = ? WHERE update_id = ?",
                (message_id, iso(utc_now()), update_id),
            )

    def failed(self, update_id: int, error: str) -> int:
        """Count a failed attempt; returns the attempts so far."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE chat_inbox SET attempts = attempts + 1, last_error = ?, updated_at = ? "
                "WHERE update_id = ?",
                (error[:2000], iso(utc_now()), update_id),
            )
            row = self.db.query_one(
                "SELECT attempts FROM chat_inbox WHERE update_id = ?", (update_id,)
            )
        return int(row[0]) if row else 0

    def done(self, update_id: int) -> None:
        """The answer is in the chat."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE chat_inbox SET status = 'done', updated_at = ? WHERE update_id = ?",
                (iso(utc_now()), update_id),
            )

    def offset(self) -> int | None:
        """The next Telegram update id to ask for (all below it were handled)."""
        value = self.db.get_setting(OFFSET_KEY)
        return int(value) if isinstance(value, int) else None

    def advance_offset(self, update_id: int) -> None:
        """Every update up to ``update_id`` was handled."""
        with self.db.transaction():
            current = self.db.get_setting(OFFSET_KEY)
            if not isinstance(current, int) or update_id + 1 > current:
                self.db.set_setting(OFFSET_KEY, update_id + 1)
