"""The delivery worker: takes due outbox rows and hands each to its sink, independently.

Every row is its own task, bounded by ``attempt_timeout_s``, so a sink that hangs or keeps
failing never holds up another sink or another call. A failed attempt is retried after an
exponential delay (``retry_base_s`` doubling up to ``retry_max_s``, with jitter) until
``retry_max_attempts`` attempts were made; then the row is ``failed`` and shows so in
``deliveries()``. Sinks are started lazily before their first delivery and stopped with the
worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from bridgehost.handoff.outbox import DeliveryContext, Outbox, set_current_delivery

if TYPE_CHECKING:
    from bridgehost.config import HandoffConfig
    from bridgehost.providers import Sink

log = structlog.get_logger("bridgehost.handoff.worker")

DEFAULT_ATTEMPT_TIMEOUT_S = 90.0
"""Longest time one delivery attempt (one ``Sink.deliver`` call) may take."""
IDLE_POLL_S = 30.0
"""Longest sleep between looks at the outbox when nothing is due sooner."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how late a failed delivery is retried."""

    max_attempts: int = 8
    base_s: float = 2.0
    max_s: float = 300.0
    jitter: float = 0.2

    @classmethod
    def from_config(cls, handoff: HandoffConfig) -> RetryPolicy:
        """From ``handoff.retry_max_attempts``, ``retry_base_s`` and ``retry_max_s``."""
        return cls(
            max_attempts=handoff.retry_max_attempts,
            base_s=handoff.retry_base_s,
            max_s=handoff.retry_max_s,
        )

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), jittered ±20 %."""
        raw = min(self.max_s, self.base_s * 2 ** max(0, attempt - 1))
        return float(min(self.max_s, raw * (1 - self.jitter + 2 * self.jitter * rng())))


class DeliveryWorker:
    """Delivers the outbox's due rows to ``sinks`` (name → started-on-demand sink)."""

    def __init__(
        self,
        outbox: Outbox,
        sinks: Mapping[str, Sink],
        policy: RetryPolicy,
        *,
        attempt_timeout_s: float = DEFAULT_ATTEMPT_TIMEOUT_S,
    ) -> None:
        self.outbox = outbox
        self.sinks = dict(sinks)
        self.policy = policy
        self.attempt_timeout_s = attempt_timeout_s
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._started: set[str] = set()
        self._start_locks: dict[str, asyncio.Lock] = {}

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="handoff-delivery-worker")

    def kick(self) -> None:
        """Look at the outbox now (new rows were queued)."""
        self._kick.set()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the loop, give running deliveries ``timeout_s``, then cancel; stop sinks."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        running = list(self._inflight.values())
        if running:
            _, pending = await asyncio.wait(running, timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for name in list(self._started):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(timeout_s):
                    await self.sinks[name].stop()
        self._started.clear()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until nothing is running and nothing is due now; False on timeout (tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if not self._inflight and not self.outbox.due(self.sinks):
                return True
            self.kick()
            await asyncio.sleep(0.02)
        return False

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._kick.clear()
            try:
                self._dispatch()
                wait = self._next_wait()
            except Exception:  # a database hiccup must not end deliveries for good
                log.exception("handoff outbox scan failed")
                wait = 1.0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._kick.wait()

    def _dispatch(self) -> None:
        for row in self.outbox.due(self.sinks):
            key = (row["call_id"], row["sink"])
            if key in self._inflight:
                continue
            context = self.outbox.claim(*key)
            if context is None:
                continue
            task = asyncio.create_task(self._deliver(context), name=f"handoff-{key[1]}-{key[0]}")
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._task_done, key))

    def _task_done(self, key: tuple[str, str], _task: asyncio.Task[None]) -> None:
        self._done(key)

    def _done(self, key: tuple[str, str]) -> None:
        self._inflight.pop(key, None)
        self._kick.set()

    def _next_wait(self) -> float:
        due = self.outbox.next_due_at(self.sinks)
        if due is None:
            return IDLE_POLL_S
        return min(IDLE_POLL_S, max(0.01, (due - datetime.now(UTC)).total_seconds()))

    # -- one attempt ---------------------------------------------------------------------------

    async def _ensure_started(self, name: str) -> None:
        async with self._start_locks.setdefault(name, asyncio.Lock()):
            if name not in self._started:
                await self.sinks[name].start()
                self._started.add(name)

    async def _deliver(self, context: DeliveryContext) -> None:
        call_id, name = context.call_id, context.sink
        bound = log.bind(call_id=call_id, sink=name, attempt=context.attempt)
        set_current_delivery(context)  # this task's own context: nothing to reset
        deadline = asyncio.timeout(self.attempt_timeout_s)
        try:
            payload = self.outbox.payload(call_id)
            if payload is None:
                raise RuntimeError("the call's artifact is missing from the outbox")
            async with deadline:
                await self._ensure_started(name)
                receipt = await self.sinks[name].deliver(payload)
        except asyncio.CancelledError:
            self.outbox.release(call_id, name)
            raise
        except Exception as exc:
            error = (
                f"the sink did not finish within {self.attempt_timeout_s:g} s"
                if deadline.expired()
                else f"{type(exc).__name__}: {exc}"
            )
            self._failed(context, error[:1000], bound)
        else:
            self.outbox.mark_delivered(call_id, name, str(receipt))
            bound.info("handoff delivered", receipt=str(receipt))

    def _failed(self, context: DeliveryContext, error: str, bound: Any) -> None:
        if context.attempt >= self.policy.max_attempts:
            self.outbox.mark_attempt_failed(context.call_id, context.sink, error, None)
            bound.error("handoff delivery failed for good", error=error)
            return
        delay = self.policy.delay(context.attempt)
        self.outbox.mark_attempt_failed(context.call_id, context.sink, error, delay)
        bound.warning(
            "handoff delivery failed; will retry", error=error, retry_in_s=round(delay, 2)
        )
