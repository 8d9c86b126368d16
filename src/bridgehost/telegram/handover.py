"""Calls as the bridge receives them: each event stored once, each ended call handed over once.

The gateway delivers events at least once (it replays unacknowledged ones after any reconnect),
so :meth:`CallTracker.record` de-duplicates by ``(call_id, seq)``. When ``call.ended`` is stored
for the first time the call goes to the :class:`HandoffPipeline` (artifact, summary, outbox,
sinks: another component), in the background so the control channel keeps flowing. A call that
ended without ever starting (refused, launch timeout, bootstrap failure) is discarded silently:
no recap, and the notes it had claimed go back to the queue for the next call. The hand-over is
recorded in ``bridge_calls.handoff_state``, so a crash between "ended" and "handed" is repaired
by :meth:`CallTracker.recover` at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol, runtime_checkable

import structlog

from bridgehost.logging import bind_call
from bridgehost.state.bridge_store import BridgeStore

log = structlog.get_logger("bridgehost.telegram.handover")


@runtime_checkable
class HandoffPipeline(Protocol):
    """Where an ended call goes: builds the handoff artifact and delivers it to the sinks.

    A pipeline may also have ``async start()`` and ``async stop()``: the daemon calls them
    before the control channel connects and after it has closed (see
    :func:`bridgehost.telegram.daemon.run_bridge`).
    """

    async def call_ended(self, call_id: str) -> None:
        """A call that really started has ended; its events are in ``BridgeStore``.

        Called once per call in normal operation, and again after a crash that came between
        the end and the hand-over: implementations must be idempotent by ``call_id``. Raising
        leaves the call pending; it is offered again at the next start.
        """


class LogOnlyHandoff:
    """The default pipeline when none is plugged in: it only logs."""

    async def call_ended(self, call_id: str) -> None:
        """Log that the call ended."""
        log.info("call ended; no handoff pipeline is configured", call_id=call_id)


class CallTracker:
    """Stores forwarded events exactly once and hands ended calls to the pipeline."""

    def __init__(self, store: BridgeStore, handoff: HandoffPipeline) -> None:
        self.store = store
        self.handoff = handoff
        self._tasks: set[asyncio.Task[None]] = set()

    def record(self, call_id: str, event: dict[str, Any]) -> bool:
        """Store one event; True the first time its ``(call_id, seq)`` is seen.

        The first ``call.ended`` of a call starts its hand-over.
        """
        new = self.store.record_event(call_id, event)
        if new and event.get("type") == "call.ended":
            self.ended(call_id)
        return new

    def ended(self, call_id: str) -> None:
        """Hand an ended call over (or discard it) in the background."""
        task = asyncio.create_task(self._hand_over(call_id), name=f"handover-{call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hand_over(self, call_id: str) -> None:
        with bind_call(call_id):
            row = self.store.call(call_id) or {}
            if not row.get("started_at"):
                released = self.store.release_notes(call_id)
                self.store.set_handoff_state(call_id, "discarded")
                log.info(
                    "call ended before it started; discarded without a recap",
                    call_id=call_id,
                    reason=row.get("end_reason"),
                    notes_requeued=released,
                )
                return
            self.store.set_handoff_state(call_id, "pending")
            try:
                await self.handoff.call_ended(call_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the pipeline's failure must not touch the channel
                log.error(
                    "handoff pipeline failed; the call stays pending until restart",
                    call_id=call_id,
                    error=f"{type(exc).__name__}: {exc}",
                )
                return
            self.store.set_handoff_state(call_id, "handed")
            log.info(
                "call handed to the handoff pipeline", call_id=call_id, reason=row.get("end_reason")
            )

    def recover(self) -> list[str]:
        """Offer again every ended call a crash left between "ended" and "handed"."""
        ids = [row["call_id"] for row in self.store.calls_awaiting_handoff()]
        for call_id in ids:
            self.ended(call_id)
        if ids:
            log.info("resuming hand-over of ended calls", calls=ids)
        return ids

    async def drain(self, timeout_s: float) -> None:
        """Let hand-overs in flight finish for up to ``timeout_s``, then cancel the rest."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    @property
    def busy(self) -> bool:
        """A hand-over is running."""
        return bool(self._tasks)
