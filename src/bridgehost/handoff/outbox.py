"""The durable handoff outbox in ``bridge.db``: one row per (call, sink).

A call's artifact and its delivery rows are written in **one transaction**, so after a crash
either the whole handoff is queued or none of it is (and recovery builds it again). Each row
moves ``pending`` → ``delivering`` → ``delivered``, or back to ``pending`` with a later
``next_attempt_at`` after a failed attempt, or to ``failed`` once the attempts are used up. A
``delivered`` row is never claimed again. Rows a crash left ``delivering`` go back to
``pending`` at start (:meth:`Outbox.recover_interrupted`); the sink's own idempotency by call id
makes that second delivery harmless.

While a sink delivers, :func:`current_delivery` tells it which row it works on, the receipt a
previous attempt saved, and lets it save one early (the ``telegram`` sink stores the message id
the moment Telegram answers, so a crash right after sending never sends twice).

``deliveries(store, call_id)`` is the per-sink view for ``bridgectl call status`` and
``/call status``.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bridgehost.basics import utc_iso, utc_now

if TYPE_CHECKING:
    from bridgehost.state.bridge_store import BridgeStore

STATUSES = ("pending", "delivering", "delivered", "failed")
"""The states of one delivery row."""


@dataclass
class DeliveryContext:
    """The delivery a sink is performing right now (see :func:`current_delivery`).

    :param call_id: the call being delivered.
    :param sink: the sink's name.
    :param attempt: 1 for the first attempt.
    :param receipt: what an earlier attempt saved with :meth:`save_receipt`, if anything.
    """

    call_id: str
    sink: str
    attempt: int
    receipt: str | None
    _outbox: Outbox = field(repr=False)

    def save_receipt(self, receipt: str) -> None:
        """Durably remember ``receipt`` on the row now, before the delivery returns."""
        self._outbox.save_receipt(self.call_id, self.sink, receipt)
        self.receipt = receipt

    def other_deliveries(self) -> list[dict[str, Any]]:
        """The same call's rows for the other sinks (see :meth:`Outbox.deliveries`)."""
        return [d for d in self._outbox.deliveries(self.call_id) if d["sink"] != self.sink]


_CURRENT: contextvars.ContextVar[DeliveryContext | None] = contextvars.ContextVar(
    "bridgehost_handoff_delivery", default=None
)


def current_delivery() -> DeliveryContext | None:
    """The outbox row the running ``Sink.deliver`` works on; ``None`` outside the outbox."""
    return _CURRENT.get()


def set_current_delivery(context: DeliveryContext | None) -> contextvars.Token[Any]:
    """Set the delivery context for the current task (the worker does this)."""
    return _CURRENT.set(context)


class Outbox:
    """Typed access to the handoff tables of a :class:`BridgeStore`."""

    def __init__(self, store: BridgeStore) -> None:
        self.store = store
        self.db = store.db

    # -- artifacts and enqueueing ------------------------------------------------------------

    def enqueue(
        self, call_id: str, payload: Mapping[str, Any], sinks: Iterable[str], *, summarized: bool
    ) -> bool:
        """Store the artifact and one pending row per sink, in one transaction.

        Idempotent: an artifact already stored is kept (False is returned), and only the rows
        of sinks not yet queued for this call are added.
        """
        now = utc_iso()
        with self.db.transaction():
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO handoff_artifacts (call_id, payload, summarized, "
                "created_at) VALUES (?, ?, ?, ?)",
                (call_id, json.dumps(dict(payload), ensure_ascii=False), int(summarized), now),
            )
            for sink in sinks:
                self.db.execute(
                    "INSERT OR IGNORE INTO handoff_outbox (call_id, sink, status, "
                    "next_attempt_at, created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?)",
                    (call_id, sink, now, now, now),
                )
        return cursor.rowcount == 1

    def has_artifact(self, call_id: str) -> bool:
        """Whether the call's artifact was stored."""
        return (
            self.db.query_one("SELECT 1 FROM handoff_artifacts WHERE call_id = ?", (call_id,))
            is not None
        )

    def payload(self, call_id: str) -> dict[str, Any] | None:
        """The stored payload (artifact JSON plus ``markdown``) that sinks receive."""
        row = self.db.query_one(
            "SELECT payload FROM handoff_artifacts WHERE call_id = ?", (call_id,)
        )
        return json.loads(row["payload"]) if row else None

    # -- the worker's side ---------------------------------------------------------------------

    def due(
        self, sinks: Collection[str], now: datetime | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Pending rows of ``sinks`` whose time has come, oldest first."""
        if not sinks:
            return []
        marks = ",".join("?" * len(sinks))
        rows = self.db.query(
            f"SELECT * FROM handoff_outbox WHERE status = 'pending' AND sink IN ({marks}) "
            "AND next_attempt_at <= ? ORDER BY next_attempt_at, call_id, sink LIMIT ?",
            (*sinks, utc_iso(now), limit),
        )
        return [dict(row) for row in rows]

    def next_due_at(self, sinks: Collection[str]) -> datetime | None:
        """When the earliest pending row of ``sinks`` is due."""
        if not sinks:
            return None
        marks = ",".join("?" * len(sinks))
        row = self.db.query_one(
            f"SELECT MIN(next_attempt_at) AS at FROM handoff_outbox WHERE status = 'pending' "
            f"AND sink IN ({marks})",
            tuple(sinks),
        )
        return datetime.fromisoformat(row["at"]) if row and row["at"] else None

    def claim(self, call_id: str, sink: str) -> DeliveryContext | None:
        """Move a pending row to ``delivering`` and count the attempt; None if not pending."""
        with self.db.transaction():
            cursor = self.db.execute(
                "UPDATE handoff_outbox SET status = 'delivering', attempts = attempts + 1, "
                "updated_at = ? WHERE call_id = ? AND sink = ? AND status = 'pending'",
                (utc_iso(), call_id, sink),
            )
            if cursor.rowcount != 1:
                return None
            row = self.db.query_one(
                "SELECT attempts, receipt FROM handoff_outbox WHERE call_id = ? AND sink = ?",
                (call_id, sink),
            )
        assert row is not None
        return DeliveryContext(call_id, sink, int(row["attempts"]), row["receipt"], self)

    def mark_delivered(self, call_id: str, sink: str, receipt: str) -> None:
        """The sink took it: record where it went."""
        now = utc_iso()
        self.db.execute(
            "UPDATE handoff_outbox SET status = 'delivered', receipt = ?, last_error = NULL, "
            "updated_at = ?, delivered_at = ? WHERE call_id = ? AND sink = ?",
            (receipt, now, now, call_id, sink),
        )

    def mark_attempt_failed(
        self, call_id: str, sink: str, error: str, retry_in_s: float | None
    ) -> None:
        """Record a failed attempt: retry after ``retry_in_s``, or ``failed`` for good (None)."""
        now = utc_now()
        if retry_in_s is None:
            self.db.execute(
                "UPDATE handoff_outbox SET status = 'failed', last_error = ?, updated_at = ? "
                "WHERE call_id = ? AND sink = ?",
                (error[:1000], utc_iso(now), call_id, sink),
            )
            return
        self.db.execute(
            "UPDATE handoff_outbox SET status = 'pending', last_error = ?, updated_at = ?, "
            "next_attempt_at = ? WHERE call_id = ? AND sink = ?",
            (
                error[:1000],
                utc_iso(now),
                utc_iso(now + timedelta(seconds=retry_in_s)),
                call_id,
                sink,
            ),
        )

    def release(self, call_id: str, sink: str) -> None:
        """Put an interrupted ``delivering`` row back to pending, due now (stop, cancel)."""
        now = utc_iso()
        self.db.execute(
            "UPDATE handoff_outbox SET status = 'pending', next_attempt_at = ?, updated_at = ? "
            "WHERE call_id = ? AND sink = ? AND status = 'delivering'",
            (now, now, call_id, sink),
        )

    def save_receipt(self, call_id: str, sink: str, receipt: str) -> None:
        """Remember a receipt on a row that is still being delivered."""
        self.db.execute(
            "UPDATE handoff_outbox SET receipt = ?, updated_at = ? WHERE call_id = ? AND sink = ?",
            (receipt, utc_iso(), call_id, sink),
        )

    # -- start-up and operators ----------------------------------------------------------------

    def recover_interrupted(self) -> int:
        """Rows a crash left ``delivering`` go back to ``pending``, due now; returns how many."""
        now = utc_iso()
        cursor = self.db.execute(
            "UPDATE handoff_outbox SET status = 'pending', next_attempt_at = ?, updated_at = ?, "
            "last_error = COALESCE(last_error, 'interrupted by a restart') "
            "WHERE status = 'delivering'",
            (now, now),
        )
        return cursor.rowcount

    def calls_needing_artifact(self) -> list[str]:
        """Ended calls that started but have no stored artifact yet, oldest first."""
        rows = self.db.query(
            "SELECT c.call_id FROM bridge_calls c LEFT JOIN handoff_artifacts a "
            "ON a.call_id = c.call_id WHERE c.status = 'ended' AND c.started_at IS NOT NULL "
            "AND COALESCE(c.handoff_state, '') != 'discarded' "
            "AND a.call_id IS NULL ORDER BY c.ended_at, c.call_id"
        )
        return [row["call_id"] for row in rows]

    def retry_failed(self, call_id: str | None = None) -> int:
        """Give ``failed`` rows (of one call, or all) a fresh set of attempts, due now."""
        now = utc_iso()
        where, params = ("AND call_id = ?", (call_id,)) if call_id else ("", ())
        cursor = self.db.execute(
            "UPDATE handoff_outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, "
            f"updated_at = ? WHERE status = 'failed' {where}",
            (now, now, *params),
        )
        return cursor.rowcount

    def undelivered_calls(self) -> set[str]:
        """Calls with at least one row not delivered yet (pending, delivering or failed)."""
        rows = self.db.query(
            "SELECT DISTINCT call_id FROM handoff_outbox WHERE status != 'delivered'"
        )
        return {row["call_id"] for row in rows}

    def deliveries(self, call_id: str) -> list[dict[str, Any]]:
        """One dict per sink: ``sink, status, attempts, next_attempt_at, last_error, receipt,
        created_at, updated_at, delivered_at`` (``next_attempt_at`` only while pending)."""
        rows = self.db.query(
            "SELECT * FROM handoff_outbox WHERE call_id = ? ORDER BY created_at, rowid", (call_id,)
        )
        result = []
        for row in rows:
            item = {key: row[key] for key in row.keys() if key != "call_id"}  # noqa: SIM118
            if item["status"] != "pending":
                item["next_attempt_at"] = None
            result.append(item)
        return result

    def forget(self, call_ids: Iterable[str]) -> None:
        """Delete everything the bridge stored about these calls (retention)."""
        with self.db.transaction():
            for call_id in call_ids:
                for table in (
                    "handoff_outbox",
                    "handoff_artifacts",
                    "call_notes",
                    "bridge_call_events",
                    "bridge_calls",
                ):
                    self.db.execute(f"DELETE FROM {table} WHERE call_id = ?", (call_id,))


def deliveries(store: BridgeStore, call_id: str) -> list[dict[str, Any]]:
    """Per-sink handoff deliveries of a call, for ``bridgectl call status`` and ``/call status``.

    Each item: ``sink``, ``status`` (pending, delivering, delivered, failed), ``attempts``,
    ``next_attempt_at`` (while pending), ``last_error``, ``receipt`` (where it went),
    ``created_at``, ``updated_at``, ``delivered_at``. Empty when the call has no handoff yet.
    """
    return Outbox(store).deliveries(call_id)
