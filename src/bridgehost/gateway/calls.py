"""The call state machine: one call at a time, its timers, its end, and the daily budget.

Life of a call: ``preparing`` (bootstrap asked the bridge) → ``launching`` (waiting for the
browser) → ``connected`` (browser socket authenticated; the budget clock runs) → ``active``
(``call.started``) → ``ending`` (a reason was recorded; final events may still arrive for a short
grace) → ``ended`` (``call.ended`` written). Every end has a reason and says who ended it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import structlog

from bridgehost.basics import iso, local_day, today, utc_now
from bridgehost.config import BridgeConfig
from bridgehost.gateway.budget import Budget, SpendMeter
from bridgehost.gateway.domain_errors import CallConflict
from bridgehost.gateway.events import EventError, Source, counts_as_activity, validate_event
from bridgehost.gateway.session import CallSession
from bridgehost.gateway.surface import CallSurface
from bridgehost.protocol.end_reasons import EndReason
from bridgehost.state import CallLog, StatePaths
from bridgehost.state.gateway_store import CallRecord, GatewayStore

log = structlog.get_logger("bridgehost.gateway.calls")

Forward = Callable[[str, str, dict[str, Any]], Awaitable[None]]
CHARGE_EVERY_S = 5.0
BACKEND_CLOSE_TIMEOUT_S = 5.0
BROWSER_EVENT_TYPES = frozenset(
    {
        "user.transcript.final",
        "assistant.transcript.final",
        "call.warning",
        "call.idle_warning",
        "call.error",
        "transcript.unavailable",
        "call.ended",
        "delegation.started",
        "delegation.progress",
        "delegation.finished",
    }
)


class CallManager:
    """Owns the current call and enforces the one-call rule, timers and budget."""

    def __init__(
        self,
        config: BridgeConfig,
        store: GatewayStore,
        paths: StatePaths,
        surface: CallSurface,
        forward: Forward,
    ) -> None:
        self.config = config
        self.rt = config.realtime
        self.store = store
        self.paths = paths
        self.surface = surface
        self.forward = forward
        self.current: CallSession | None = None
        self._preparing = False
        self._charge_tasks: dict[str, asyncio.Task[None]] = {}
        self.on_call_started: Callable[[CallSession], None] | None = None
        #: Called once as a call ends, before its backend session closes.
        self.on_call_ending: Callable[[CallSession], Awaitable[None]] | None = None
        self.spend = SpendMeter(config, store)

    # -- budget and the one-call rule ----------------------------------------------------

    def budget(self) -> Budget:
        """Today's usage against the caps."""
        calls, used = self.store.used_ms(today())
        spent = self.store.spent_usd(today())
        cap = self.rt.max_daily_cost_usd
        return Budget(calls, used, self.rt.max_daily_call_ms, self.rt.max_call_ms, spent, cap)

    @property
    def busy(self) -> bool:
        """A call is active or being prepared."""
        return self._preparing or self.current is not None

    @contextlib.asynccontextmanager
    async def preparing(self) -> AsyncIterator[None]:
        """Hold the one-call rule while a bootstrap prepares a call."""
        self.budget().refuse_if_cost_cap_reached()
        if self.busy:
            raise CallConflict()
        self._preparing = True
        try:
            yield
        finally:
            self._preparing = False

    # -- creation ------------------------------------------------------------------------

    def open_call(
        self, *, bridge_id: str, user_id: int | None, transport: str, max_call_ms: int
    ) -> tuple[CallSession, str]:
        """Create the record, log and session of a new call; returns its client token."""
        call_id = secrets.token_hex(8)
        client_token = secrets.token_urlsafe(24)
        record = CallRecord(
            call_id=call_id,
            bridge_id=bridge_id,
            telegram_user_id=user_id,
            status="preparing",
            transport=transport,
            created_at=iso(utc_now()) or "",
            max_call_ms=max_call_ms,
        )
        self.store.insert_call(record)
        session = CallSession(record, CallLog(self.paths.call_log(call_id)), client_token)
        self.current = session
        return session, client_token

    async def launch(self, session: CallSession) -> None:
        """Bootstrap succeeded: wait (bounded) for the browser to connect."""
        self._set_status(session, "launching")
        session.set_timer("launch", self.rt.launch_window_ms, lambda: self._launch_expired(session))

    async def _launch_expired(self, session: CallSession) -> None:
        if session.connected_at is None:
            await self.finish(session, EndReason.CALL_LAUNCH_TIMEOUT, "gateway")

    # -- events --------------------------------------------------------------------------

    async def ingest(
        self,
        session: CallSession,
        raw: Mapping[str, Any],
        source: Source,
        *,
        client_id: str | int | None = None,
    ) -> dict[str, Any] | None:
        """Validate, log, act on and forward one reported event; None if the call is over.

        ``client_id`` is the browser's id for the event: an event resent after a reconnect (or
        again in finalize) is acknowledged with its first ``seq`` and not logged twice.
        """
        event = validate_event(raw, source)
        if session.ended.is_set() or (session.is_ending and event["type"] == "call.started"):
            return None
        if client_id is not None and (seen := session.seen_client_event(client_id)) is not None:
            return seen
        event["source"] = source
        stamped = await self._append(session, event, echo_to_browser=source != "browser")
        if client_id is not None:
            session.remember_client_event(client_id, stamped)
        if event["type"] == "call.started" and session.record.started_at is None:
            session.record.started_at = stamped["at"]
            session.cancel_timer("start")
            self._set_status(session, "active", started_at=stamped["at"])
            self.surface.consume_token()
            if self.on_call_started is not None:
                self.on_call_started(session)
        if counts_as_activity(event) and not session.is_ending:
            self._restart_idle_timers(session)
        if event["type"] == "usage" and self.spend.record(session, stamped):
            await self.request_end(session, EndReason.DAILY_COST_CAP, "gateway")
        return stamped

    async def gateway_event(self, session: CallSession, event: dict[str, Any]) -> None:
        """Log and forward an event the gateway itself produces."""
        try:
            await self.ingest(session, event, "gateway")
        except EventError:  # pragma: no cover - gateway events are built in code
            log.exception("invalid gateway event", event=event)

    async def _append(
        self, session: CallSession, event: dict[str, Any], *, echo_to_browser: bool = True
    ) -> dict[str, Any]:
        stamped = await session.append(event)
        if stamped["type"] == "call.ended":
            await pause_for_tests("call_ended_logged")
        self.store.update_call(session.call_id, last_seq=stamped["seq"])
        if echo_to_browser and stamped["type"] in BROWSER_EVENT_TYPES:
            await session.send_browser({"type": "call.event", "event": stamped})
        await self.forward(session.record.bridge_id, session.call_id, stamped)
        return stamped

    # -- browser ---------------------------------------------------------------------------

    async def browser_connected(self, session: CallSession) -> None:
        """The browser authenticated its call socket (first time, or again after a drop)."""
        session.cancel_timer("launch")
        session.cancel_timer("disconnect_grace")
        if session.connected_at is not None:
            return
        session.connected_at = utc_now()
        self._set_status(session, "connected", connected_at=iso(session.connected_at))
        session.set_timer("start", self.rt.startup_timeout_ms, lambda: self._start_expired(session))
        self._arm_cap_timers(session)
        self._restart_idle_timers(session)
        self._charge_tasks[session.call_id] = asyncio.create_task(self._charge_loop(session))

    async def _start_expired(self, session: CallSession) -> None:
        if session.record.started_at is None:
            await self.request_end(session, EndReason.CALL_START_TIMEOUT, "gateway")

    def _arm_cap_timers(self, session: CallSession) -> None:
        cap = session.max_call_ms
        reason = (
            EndReason.DAILY_BUDGET_EXHAUSTED
            if cap < self.rt.max_call_ms
            else EndReason.MAX_CALL_DURATION_REACHED
        )
        session.set_timer("max_duration", cap, lambda: self.request_end(session, reason, "gateway"))
        warn_before = min(60_000, max(10_000, cap // 2))
        if cap > warn_before:
            session.set_timer(
                "ending_soon",
                cap - warn_before,
                lambda: self.gateway_event(
                    session,
                    {"type": "call.warning", "kind": "ending_soon", "remaining_ms": warn_before},
                ),
            )

    def _restart_idle_timers(self, session: CallSession) -> None:
        warn, end = self.rt.idle_warning_ms, self.rt.idle_timeout_ms
        session.set_timer(
            "idle_warning",
            warn,
            lambda: self.gateway_event(
                session, {"type": "call.idle_warning", "remaining_ms": end - warn}
            ),
        )
        session.set_timer(
            "idle_timeout",
            end,
            lambda: self.request_end(session, EndReason.IDLE_TIMEOUT, "gateway"),
        )

    async def browser_disconnected(self, session: CallSession) -> None:
        """The browser socket closed: end now if ending, else allow a reconnect grace."""
        if session.ended.is_set():
            return
        if session.is_ending:
            await self.finish(session)
            return
        session.set_timer(
            "disconnect_grace",
            self.rt.reconnect_grace_ms,
            lambda: self.finish(session, EndReason.BROWSER_DISCONNECT, "browser"),
        )

    # -- ending --------------------------------------------------------------------------

    async def request_end(self, session: CallSession, reason: str, ended_by: str) -> None:
        """Record why the call ends, tell the browser, wait a short grace for final events."""
        if session.is_ending:
            return
        session.ending_reason, session.ended_by = reason, ended_by
        # The reason is on disk before the grace starts: a crash inside it keeps the reason.
        self._set_status(session, "ending", end_reason=reason, ended_by=ended_by)
        for name in ("idle_warning", "idle_timeout", "ending_soon", "max_duration", "start"):
            session.cancel_timer(name)
        log.info("call ending", call_id=session.call_id, reason=reason, ended_by=ended_by)
        if await session.send_browser({"type": "call.force_end", "reason": reason}):
            session.set_timer(
                "final_grace", self.rt.finalize_grace_ms, lambda: self.finish(session)
            )
        else:
            await self.finish(session)

    async def finish(
        self, session: CallSession, reason: str | None = None, ended_by: str | None = None
    ) -> None:
        """Close everything and write ``call.ended``, exactly once."""
        if session.ended.is_set():
            return
        session.ending_reason = session.ending_reason or reason or EndReason.UNKNOWN
        session.ended_by = session.ended_by or ended_by or "gateway"
        session.cancel_all_timers()
        if self.on_call_ending is not None:
            await self.on_call_ending(session)
        await self._close_backend(session)
        self._stop_charging(session)
        duration = session.connected_ms()
        stamped = await self._append(
            session,
            {
                "type": "call.ended",
                "reason": session.ending_reason,
                "ended_by": session.ended_by,
                "duration_ms": duration,
            },
        )
        self._set_status(
            session,
            "ended",
            ended_at=stamped["at"],
            end_reason=session.ending_reason,
            ended_by=session.ended_by,
        )
        session.ended.set()
        if self.current is session:
            self.current = None
        if session.browser is not None and not session.browser.closed:
            with contextlib.suppress(Exception):
                await session.browser.close(code=4000, message=session.ending_reason.encode()[:120])
        session.log.close()
        self.surface.touch()
        log.info(
            "call ended",
            call_id=session.call_id,
            reason=session.ending_reason,
            ended_by=session.ended_by,
            duration_ms=duration,
        )

    async def _close_backend(self, session: CallSession) -> None:
        if session.backend is None:
            return
        try:
            async with asyncio.timeout(BACKEND_CLOSE_TIMEOUT_S):
                await session.backend.close(session.ending_reason or "ended")
        except Exception as exc:  # closing must never stop the call from ending
            log.warning("backend close failed", call_id=session.call_id, error=str(exc))

    # -- budget clock ----------------------------------------------------------------------

    async def _charge_loop(self, session: CallSession) -> None:
        while True:
            await asyncio.sleep(CHARGE_EVERY_S)
            self._charge(session)

    def _charge(self, session: CallSession) -> None:
        if session.connected_at is not None:
            self.store.charge(
                session.call_id, local_day(session.connected_at), session.connected_ms()
            )

    def _stop_charging(self, session: CallSession) -> None:
        task = self._charge_tasks.pop(session.call_id, None)
        if task is not None:
            task.cancel()
        self._charge(session)

    def _set_status(self, session: CallSession, status: str, **fields: Any) -> None:
        session.record.status = status
        for name, value in fields.items():
            setattr(session.record, name, value)
        self.store.update_call(session.call_id, status=status, **fields)

    # -- start-up and shut-down ------------------------------------------------------------

    async def recover(self) -> list[str]:
        """End the calls a crash left unfinished, from their logs; returns their ids.

        A call has exactly one ``call.ended``. If its log already holds one (the crash came
        between writing it and marking the call ended), that one stands and only the record is
        completed. Otherwise ``call.ended`` is written with the reason recorded when the call
        began to end (a crash inside the finalize grace keeps the hang-up's reason), or
        ``gateway_restart`` when the crash came while the call was running.
        """
        recovered = []
        for record in self.store.unfinished_calls():
            call_log = CallLog(self.paths.call_log(record.call_id))
            events = call_log.read().events if call_log.path.exists() else []
            record.last_seq = max([record.last_seq, *_seqs(events)])
            ended = next((e for e in reversed(events) if e.get("type") == "call.ended"), None)
            if ended is None:
                session = CallSession(record, call_log, secrets.token_urlsafe(8))
                ended = await session.append(
                    {
                        "type": "call.ended",
                        "reason": record.end_reason or EndReason.GATEWAY_RESTART,
                        "ended_by": record.ended_by or "gateway",
                        "duration_ms": self.store.charged_ms(record.call_id),
                    }
                )
                call_log.close()
            self.store.update_call(
                record.call_id,
                status="ended",
                ended_at=ended.get("at"),
                end_reason=ended.get("reason"),
                ended_by=ended.get("ended_by"),
                last_seq=record.last_seq,
            )
            recovered.append(record.call_id)
            log.warning(
                "recovered unfinished call",
                call_id=record.call_id,
                events=len(events),
                reason=ended.get("reason"),
            )
        return recovered

    async def shutdown(self, reason: str = EndReason.GATEWAY_STOP, timeout_s: float = 10.0) -> None:
        """End the live call (waiting a bounded time for its final events)."""
        session = self.current
        if session is None:
            return
        await self.request_end(session, reason, "gateway")
        try:
            async with asyncio.timeout(timeout_s):
                await session.ended.wait()
        except TimeoutError:
            await self.finish(session)


def _seqs(events: list[dict[str, Any]]) -> list[int]:
    return [seq for e in events if isinstance(seq := e.get("seq"), int)]


TEST_PAUSE_ENV = "BRIDGEHOST_TEST_PAUSE_AT"
"""Test seam, never set in production: ``<point>=<file>`` makes the gateway create ``<file>``
and wait forever when it reaches ``<point>``, so a test can ``kill -9`` it exactly there.
The one point is ``call_ended_logged``: ``call.ended`` is in the log, the record is not yet
marked ended."""


async def pause_for_tests(point: str) -> None:
    """Stop here for good if :data:`TEST_PAUSE_ENV` names ``point`` (see there)."""
    name, _, marker = os.environ.get(TEST_PAUSE_ENV, "").partition("=")
    if name != point or not marker:
        return
    log.warning("paused for a test", point=point)
    await asyncio.to_thread(Path(marker).write_text, point)
    await asyncio.Event().wait()
