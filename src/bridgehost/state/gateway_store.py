"""The gateway's own state: the call surface, call records and the daily budget ledger.

One SQLite file (``{storage.root}/gateway.db``) owned by the gateway alone. Call records are
written as a call moves through its life, so after a crash start-up knows which calls were left
unfinished; charged time and estimated spend are written while a call runs, so a crash loses
seconds, not the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridgehost.basics import iso, utc_now
from bridgehost.state import Migration, Store

GATEWAY_MIGRATIONS = (
    Migration(
        1,
        "call records and usage ledger",
        sql="""
        CREATE TABLE calls (
            call_id TEXT PRIMARY KEY,
            bridge_id TEXT NOT NULL,
            telegram_user_id INTEGER,
            status TEXT NOT NULL,
            transport TEXT NOT NULL,
            created_at TEXT NOT NULL,
            connected_at TEXT,
            started_at TEXT,
            ended_at TEXT,
            end_reason TEXT,
            ended_by TEXT,
            max_call_ms INTEGER NOT NULL,
            last_seq INTEGER NOT NULL DEFAULT 0,
            bridge_acked_seq INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX calls_status ON calls(status);
        CREATE TABLE usage (
            call_id TEXT PRIMARY KEY,
            day TEXT NOT NULL,
            charged_ms INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX usage_day ON usage(day);
        """,
    ),
    Migration(
        2,
        "estimated spend per call",
        sql="ALTER TABLE usage ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;",
    ),
)

UNFINISHED = ("preparing", "launching", "connected", "active", "ending")


@dataclass
class CallRecord:
    """One row of ``calls``: what survives a restart about a call."""

    call_id: str
    bridge_id: str
    telegram_user_id: int | None
    status: str
    transport: str
    created_at: str
    max_call_ms: int
    connected_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    end_reason: str | None = None
    ended_by: str | None = None
    last_seq: int = 0
    bridge_acked_seq: int = 0
    cost_usd: float | None = None
    """Estimated spend so far (from the usage ledger, not a column of ``calls``)."""

    def to_json(self) -> dict[str, Any]:
        """The record as plain data for status output."""
        return dict(self.__dict__)

    def columns(self) -> dict[str, Any]:
        """The values of the ``calls`` columns."""
        return {name: value for name, value in self.__dict__.items() if name != "cost_usd"}


class GatewayStore:
    """Typed access to the gateway's database."""

    def __init__(self, store: Store) -> None:
        self.db = store

    @classmethod
    def open(cls, path: Path) -> GatewayStore:
        """Open (and migrate) ``gateway.db``."""
        return cls(Store.open(path, "gateway", GATEWAY_MIGRATIONS))

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # -- settings ----------------------------------------------------------------------

    def load_surface(self) -> dict[str, Any] | None:
        """The persisted call surface, if any."""
        surface = self.db.get_setting("surface")
        return surface if isinstance(surface, dict) else None

    def save_surface(self, data: dict[str, Any]) -> None:
        """Persist the call surface."""
        self.db.set_setting("surface", data)

    # -- calls -------------------------------------------------------------------------

    def insert_call(self, record: CallRecord) -> None:
        """Record a new call."""
        values = record.columns()
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self.db.transaction():
            self.db.execute(
                f"INSERT INTO calls ({columns}) VALUES ({marks})", tuple(values.values())
            )

    def update_call(self, call_id: str, **fields: Any) -> None:
        """Update some columns of a call."""
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.db.transaction():
            self.db.execute(
                f"UPDATE calls SET {assignments} WHERE call_id = ?", (*fields.values(), call_id)
            )

    def get_call(self, call_id: str) -> CallRecord | None:
        """One call by id."""
        row = self.db.query_one("SELECT * FROM calls WHERE call_id = ?", (call_id,))
        return CallRecord(**dict(row)) if row else None

    def unfinished_calls(self) -> list[CallRecord]:
        """Calls a crash left without an end."""
        marks = ", ".join("?" for _ in UNFINISHED)
        rows = self.db.query(
            f"SELECT * FROM calls WHERE status IN ({marks}) ORDER BY created_at", UNFINISHED
        )
        return [CallRecord(**dict(row)) for row in rows]

    def calls_awaiting_bridge(self, bridge_id: str) -> list[CallRecord]:
        """Calls with events the bridge has not acknowledged yet, oldest first."""
        rows = self.db.query(
            "SELECT * FROM calls WHERE bridge_id = ? AND bridge_acked_seq < last_seq "
            "ORDER BY created_at",
            (bridge_id,),
        )
        return [CallRecord(**dict(row)) for row in rows]

    def recent_calls(self, limit: int = 10) -> list[CallRecord]:
        """The newest calls."""
        rows = self.db.query(
            "SELECT calls.*, usage.cost_usd AS cost_usd FROM calls "
            "LEFT JOIN usage ON usage.call_id = calls.call_id "
            "ORDER BY calls.created_at DESC LIMIT ?",
            (limit,),
        )
        return [CallRecord(**dict(row)) for row in rows]

    def ack_bridge(self, call_id: str, seq: int) -> None:
        """Remember that the bridge holds a call's events up to ``seq``."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE calls SET bridge_acked_seq = MAX(bridge_acked_seq, ?) "
                "WHERE call_id = ? AND ? <= last_seq",
                (seq, call_id, seq),
            )

    # -- usage -------------------------------------------------------------------------

    def charge(self, call_id: str, day: str, charged_ms: int) -> None:
        """Set a call's charged time (monotonic: never lowers what was charged)."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO usage (call_id, day, charged_ms, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(call_id) DO UPDATE SET "
                "charged_ms = MAX(usage.charged_ms, excluded.charged_ms), "
                "updated_at = excluded.updated_at",
                (call_id, day, charged_ms, iso(utc_now())),
            )

    def charge_cost(self, call_id: str, day: str, cost_usd: float) -> None:
        """Set a call's estimated spend (monotonic, like :meth:`charge`)."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO usage (call_id, day, charged_ms, updated_at, cost_usd) "
                "VALUES (?, ?, 0, ?, ?) "
                "ON CONFLICT(call_id) DO UPDATE SET "
                "cost_usd = MAX(usage.cost_usd, excluded.cost_usd), "
                "updated_at = excluded.updated_at",
                (call_id, day, iso(utc_now()), cost_usd),
            )

    def spent_usd(self, day: str) -> float:
        """Estimated spend of one local day."""
        row = self.db.query_one(
            "SELECT COALESCE(SUM(cost_usd), 0) AS spent FROM usage WHERE day = ?", (day,)
        )
        return float(row["spent"]) if row else 0.0

    def charged_ms(self, call_id: str) -> int:
        """What was charged for one call so far (0 if nothing)."""
        row = self.db.query_one("SELECT charged_ms FROM usage WHERE call_id = ?", (call_id,))
        return int(row["charged_ms"]) if row else 0

    def used_ms(self, day: str) -> tuple[int, int]:
        """``(calls, charged ms)`` for one local day."""
        row = self.db.query_one(
            "SELECT COUNT(*) AS calls, COALESCE(SUM(charged_ms), 0) AS used FROM usage "
            "WHERE day = ?",
            (day,),
        )
        return (int(row["calls"]), int(row["used"])) if row else (0, 0)
