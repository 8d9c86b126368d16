"""The bridge's invites and their audit log (``{storage.root}/invites.db``, owner ``bridge``).

Every invite, message and question the bridge sends on behalf of the agent or the operator is an
event here with its origin: ``invite.sent``, ``invite.refused``, ``invite.declined``,
``invite.expired``, ``invite.replaced``, ``invite.accepted``, ``message.sent``,
``message.refused``, ``ask.sent``, ``ask.answered``, ``ask.unanswered``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from bridgehost.basics import parse_iso, utc_iso
from bridgehost.state._db import Store
from bridgehost.state._migrations import Migration

INVITE_MIGRATIONS = (
    Migration(
        1,
        "invites and the audit log of what was sent to the chat on whose behalf",
        sql="""
        CREATE TABLE invites (
            invite_id  TEXT PRIMARY KEY,
            origin     TEXT NOT NULL,
            reason     TEXT NOT NULL,
            urgency    TEXT NOT NULL,
            status     TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            launch_url TEXT,
            message_id INTEGER,
            call_id    TEXT,
            closed_at  TEXT
        );
        CREATE INDEX invites_by_time ON invites (created_at);
        CREATE TABLE invite_events (
            seq        INTEGER PRIMARY KEY AUTOINCREMENT,
            at         TEXT NOT NULL,
            kind       TEXT NOT NULL,
            origin     TEXT NOT NULL,
            invite_id  TEXT,
            detail     TEXT NOT NULL
        );
        CREATE INDEX invite_events_by_kind ON invite_events (kind, at);
        """,
    ),
)

OPEN = "open"
"""The status of an invite whose button still works."""


class InviteStore:
    """Invites and the audit log; synchronous and short, like every store."""

    def __init__(self, db: Store) -> None:
        self.db = db

    @classmethod
    def open(cls, storage_root: Path) -> InviteStore:
        """Open (and migrate) ``invites.db`` under ``storage_root``."""
        return cls(Store.open(Path(storage_root) / "invites.db", "bridge", INVITE_MIGRATIONS))

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # -- audit ---------------------------------------------------------------------------

    def log_event(
        self, kind: str, origin: str, detail: dict[str, Any], invite_id: str | None = None
    ) -> None:
        """Append one audit event."""
        self.db.execute(
            "INSERT INTO invite_events (at, kind, origin, invite_id, detail) VALUES (?,?,?,?,?)",
            (utc_iso(), kind, origin, invite_id, json.dumps(detail, ensure_ascii=False)),
        )

    def events(self, kind_prefix: str = "") -> list[dict[str, Any]]:
        """Audit events, oldest first, optionally only kinds starting with ``kind_prefix``."""
        rows = self.db.query(
            "SELECT * FROM invite_events WHERE kind LIKE ? ORDER BY seq", (kind_prefix + "%",)
        )
        return [{**dict(row), "detail": json.loads(row["detail"])} for row in rows]

    def sent_since(self, kinds: tuple[str, ...], since: datetime) -> list[datetime]:
        """When events of ``kinds`` happened at or after ``since``."""
        marks = ",".join("?" for _ in kinds)
        rows = self.db.query(
            f"SELECT at FROM invite_events WHERE kind IN ({marks}) AND at >= ?",
            (*kinds, utc_iso(since)),
        )
        return [moment for row in rows if (moment := parse_iso(row["at"])) is not None]

    # -- invites -------------------------------------------------------------------------

    def add_invite(self, invite: dict[str, Any]) -> None:
        """Record a sent invite (status ``open``)."""
        self.db.execute(
            "INSERT INTO invites (invite_id, origin, reason, urgency, status, created_at, "
            "expires_at, launch_url, message_id) VALUES (:invite_id, :origin, :reason, "
            ":urgency, 'open', :created_at, :expires_at, :launch_url, :message_id)",
            invite,
        )

    def invite(self, invite_id: str) -> dict[str, Any] | None:
        """One invite."""
        row = self.db.query_one("SELECT * FROM invites WHERE invite_id = ?", (invite_id,))
        return dict(row) if row else None

    def open_invites(self) -> list[dict[str, Any]]:
        """Invites whose button still works, oldest first."""
        rows = self.db.query("SELECT * FROM invites WHERE status = 'open' ORDER BY created_at")
        return [dict(row) for row in rows]

    def close_invite(self, invite_id: str, status: str, call_id: str | None = None) -> bool:
        """Move an open invite to ``status``; False when it was not open any more."""
        cursor = self.db.execute(
            "UPDATE invites SET status = ?, call_id = COALESCE(?, call_id), closed_at = ? "
            "WHERE invite_id = ? AND status = 'open'",
            (status, call_id, utc_iso(), invite_id),
        )
        return cursor.rowcount == 1

    def recent_invites(self, limit: int = 5) -> list[dict[str, Any]]:
        """The newest invites, newest first."""
        rows = self.db.query(
            "SELECT * FROM invites ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)
        )
        return [dict(row) for row in rows]


__all__ = ["INVITE_MIGRATIONS", "OPEN", "InviteStore"]
