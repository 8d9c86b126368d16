"""The handoff pipeline: from a stored ``call.ended`` to every sink, exactly once, across crashes.

The telegram daemon calls :meth:`Pipeline.call_ended` once a call's ``call.ended`` is stored
(it implements the daemon's ``HandoffPipeline`` seam). For that call the pipeline

1. builds the artifact from the stored events (:func:`~bridgehost.handoff.build_artifact`),
2. summarizes it (a failed summary still gives a handoff, marked unsummarized),
3. writes the call bundle ``{storage.root}/calls/{call_id}/`` — ``transcript.md``,
   ``handoff.json``, ``handoff.md`` — atomically, once (:mod:`.bundle`; the ``file`` sink
   reports its path),
4. stores the artifact and one outbox row per sink of ``handoff.sinks`` in one transaction,
5. kicks the delivery worker, which delivers each row with retries (:mod:`.worker`).

Crash safety: a crash before step 4 leaves an ended call without an artifact, which
:meth:`Pipeline.recover` (run by :meth:`Pipeline.start`) finalizes again; a crash during a
delivery leaves its row ``delivering``, which start-up puts back to ``pending``; a delivered row
is never delivered again; sinks are idempotent by call id for the retried rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from bridgehost.basics import validate_call_id
from bridgehost.handoff.artifact import HandoffArtifact, build_artifact
from bridgehost.handoff.bundle import write_bundle
from bridgehost.handoff.outbox import Outbox
from bridgehost.handoff.retention import apply_retention, sweep_partial_writes
from bridgehost.handoff.summary import Summarizer
from bridgehost.handoff.worker import DEFAULT_ATTEMPT_TIMEOUT_S, DeliveryWorker, RetryPolicy
from bridgehost.state import default_paths

if TYPE_CHECKING:
    from bridgehost.config import BridgeConfig, Secrets
    from bridgehost.plugins import PluginHost
    from bridgehost.providers import Sink
    from bridgehost.state.bridge_store import BridgeStore

log = structlog.get_logger("bridgehost.handoff")

RETENTION_EVERY_S = 6 * 3600.0
"""How often retention runs while the pipeline is up (it also runs at start)."""


class Pipeline:
    """Implements the telegram daemon's ``HandoffPipeline`` seam; see the module docstring.

    :param plugins: builds the sinks of ``handoff.sinks`` (raises ``PluginError`` naming the
        problem when one is missing or broken); not needed when ``sinks`` is given.
    :param sinks: name → sink, instead of building them (tests, embedding).
    :param summarizer: defaults to :meth:`Summarizer.from_config`.
    """

    def __init__(
        self,
        config: BridgeConfig,
        secrets: Secrets,
        store: BridgeStore,
        *,
        plugins: PluginHost | None = None,
        sinks: Mapping[str, Sink] | None = None,
        summarizer: Summarizer | None = None,
        attempt_timeout_s: float = DEFAULT_ATTEMPT_TIMEOUT_S,
    ) -> None:
        self.config = config
        self.store = store
        self.outbox = Outbox(store)
        self.summarizer = summarizer or Summarizer.from_config(config, secrets)
        if sinks is None:
            if plugins is None:
                raise ValueError("Pipeline needs a PluginHost or explicit sinks")
            sinks = {
                provided.record.name: plugins.build(provided, config, secrets)
                for provided in plugins.select_sinks(config.handoff.sinks)
            }
        self.sink_names = list(sinks)
        self.worker = DeliveryWorker(
            self.outbox,
            sinks,
            RetryPolicy.from_config(config.handoff),
            attempt_timeout_s=attempt_timeout_s,
        )
        self._finalizing: dict[str, asyncio.Task[HandoffArtifact | None]] = {}
        self._housekeeping: asyncio.Task[None] | None = None

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Put interrupted deliveries back, remove half-written files, start the worker, then
        recover and apply retention in the background."""
        reset = self.outbox.recover_interrupted()
        if reset:
            log.warning("handoff deliveries interrupted by a restart will be retried", count=reset)
        swept = await asyncio.to_thread(sweep_partial_writes, Path(self.config.storage.root))
        if swept:
            log.warning("removed files a crash left half-written", count=swept)
        self.worker.start()
        self._housekeeping = asyncio.create_task(self._housekeep(), name="handoff-housekeeping")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop housekeeping, give running finalizations and deliveries ``timeout_s``, stop sinks.

        Whatever is cut short is finished by :meth:`recover` at the next start.
        """
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
            self._housekeeping = None
        running = [t for t in self._finalizing.values() if not t.done()]
        if running:
            _, pending = await asyncio.wait(running, timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.worker.stop(timeout_s)

    async def _housekeep(self) -> None:
        await self.recover()
        while True:
            try:
                await asyncio.to_thread(self.apply_retention)
            except Exception:
                log.exception("retention failed")
            await asyncio.sleep(RETENTION_EVERY_S)

    # -- the seam ------------------------------------------------------------------------------

    async def call_ended(self, call_id: str) -> None:
        """A call's ``call.ended`` is stored: hand it off (the daemon's ``HandoffPipeline``).

        Returns once the handoff is durable — artifact, bundle and outbox rows written — which
        takes up to the summary's timeout; deliveries then run in the worker. Idempotent by
        ``call_id``; raising leaves nothing half-queued (the daemon or :meth:`recover` offers
        the call again).
        """
        await self.finalize(call_id)

    async def finalize(self, call_id: str) -> HandoffArtifact | None:
        """Build, summarize, write and queue the handoff of an ended call; idempotent.

        Returns the artifact, or ``None`` when the call is unknown or has not ended. A call
        whose handoff was queued before keeps its stored artifact; only outbox rows of sinks
        added to ``handoff.sinks`` since are queued.
        """
        return await asyncio.shield(self._task_for(call_id))

    def _task_for(self, call_id: str) -> asyncio.Task[HandoffArtifact | None]:
        task = self._finalizing.get(call_id)
        if task is None or task.done():
            task = asyncio.create_task(self._finalize(call_id), name=f"handoff-{call_id}")
            self._finalizing[call_id] = task
            task.add_done_callback(lambda t: self._finished(call_id, t))
        return task

    def _finished(self, call_id: str, task: asyncio.Task[HandoffArtifact | None]) -> None:
        if self._finalizing.get(call_id) is task:
            del self._finalizing[call_id]
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "handoff finalization failed; it is retried at the next start",
                call_id=call_id,
                error=repr(task.exception()),
            )

    async def _finalize(self, call_id: str) -> HandoffArtifact | None:
        validate_call_id(call_id)
        stored = self.outbox.payload(call_id)
        if stored is not None:
            self.outbox.enqueue(
                call_id, stored, self.sink_names, summarized=bool(stored.get("summarized"))
            )
            self.worker.kick()
            return HandoffArtifact.model_validate(
                {k: v for k, v in stored.items() if k != "markdown"}
            )
        row = self.store.call(call_id)
        if row is None or row["status"] != "ended":
            log.warning(
                "handoff skipped: the call has not ended",
                call_id=call_id,
                status=row and row["status"],
            )
            return None
        artifact = build_artifact(self.store, call_id, self.config)
        artifact = await self.summarizer.summarize(artifact)
        payload = artifact.payload()
        call_dir = default_paths(self.config.storage.root).call_dir(call_id)
        await asyncio.to_thread(write_bundle, call_dir, artifact, payload)
        self.outbox.enqueue(call_id, payload, self.sink_names, summarized=artifact.summarized)
        self.worker.kick()
        log.info(
            "handoff queued", call_id=call_id, sinks=self.sink_names, summarized=artifact.summarized
        )
        return artifact

    # -- recovery, status, retention -------------------------------------------------------

    async def recover(self) -> list[str]:
        """Finalize every ended (and started) call that has no artifact yet; return their ids."""
        call_ids = self.outbox.calls_needing_artifact()
        for call_id in call_ids:
            log.warning("finalizing a call a restart interrupted", call_id=call_id)
            try:
                await self.finalize(call_id)
            except Exception:
                log.exception("recovering a call's handoff failed", call_id=call_id)
        return call_ids

    def deliveries(self, call_id: str) -> list[dict[str, Any]]:
        """Per-sink delivery rows of a call (see :func:`bridgehost.handoff.deliveries`)."""
        return self.outbox.deliveries(call_id)

    def apply_retention(self) -> list[str]:
        """Remove bundles older than ``storage.retention_days`` (see :mod:`.retention`)."""
        live = self.store.live_call()
        return apply_retention(
            self.store,
            Path(self.config.storage.root),
            self.config.storage.retention_days,
            active_call_id=live["call_id"] if live else None,
        )

    async def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Wait until no finalization runs and nothing is due; False on timeout (tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._finalizing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.wait(list(self._finalizing.values()), timeout=remaining)
        return await self.worker.drain(max(0.0, deadline - loop.time()))
