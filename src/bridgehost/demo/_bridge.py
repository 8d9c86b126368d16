"""A minimal bridge for the demo: answers prepares, stores events, hands ended calls off.

It is the real bridge client (:class:`~bridgehost.telegram.control_channel.ControlChannel`), the
real event store and hand-over (:class:`~bridgehost.telegram.handover.CallTracker`) and the real
handoff pipeline (:class:`~bridgehost.handoff.Pipeline`) on the real gateway, but needs no
Telegram and no Codex: the call context is a fixed demo note, the summary is the marked
fallback (no API key), and the only sink is ``file``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bridgehost.config import LoadedConfig
from bridgehost.handoff import Pipeline, deliveries
from bridgehost.plugins import PluginHost
from bridgehost.state.bridge_store import BridgeStore
from bridgehost.telegram.control_channel import ControlChannel
from bridgehost.telegram.handover import CallTracker

CONNECT_TIMEOUT_S = 10.0
HANDOFF_TIMEOUT_S = 10.0
DEMO_CONTEXT = {"parts": [{"title": "Demo", "text": "This is an offline demo."}]}


class DemoBridge:
    """Connects to the gateway's control channel and hands finished calls to the pipeline."""

    def __init__(self, loaded: LoadedConfig, url: str, secret: str) -> None:
        self.loaded = loaded
        self.store = BridgeStore.open(loaded.config.storage.root)
        self.store.bind("demo-thread")
        self.handoffs: dict[str, str] = {}
        self.ended = asyncio.Queue[str]()
        self.pipeline = Pipeline(
            loaded.config,
            loaded.secrets,
            self.store,
            plugins=PluginHost.for_config(loaded.config),
        )
        self.tracker = CallTracker(self.store, self)
        self.channel = ControlChannel(
            url,
            secret,
            loaded.config.realtime.bridge_id,
            tracker=self.tracker,
            prepare=self._prepare,
            status=lambda: self.store.binding().to_json(),
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the pipeline, connect, say hello, and wait (bounded) for the gateway's greeting."""
        await self.pipeline.start()
        self._task = asyncio.create_task(self.channel.run(), name="demo-control-channel")
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await self.channel.wait_connected()
        except TimeoutError:
            raise RuntimeError(
                f"the demo bridge could not connect to the gateway: {self.channel.last_error}"
            ) from None

    async def _prepare(self, call: dict[str, Any]) -> dict[str, Any]:
        return {"allowed": True, "context": DEMO_CONTEXT}

    async def call_ended(self, call_id: str) -> None:
        """Hand an ended call to the pipeline and wait (bounded) for the ``file`` delivery."""
        await self.pipeline.call_ended(call_id)
        if not await self.pipeline.wait_idle(HANDOFF_TIMEOUT_S):
            raise RuntimeError(
                f"the handoff of {call_id} was not delivered within {HANDOFF_TIMEOUT_S:.0f} s"
            )
        rows = {row["sink"]: row for row in deliveries(self.store, call_id)}
        self.handoffs[call_id] = str(rows["file"]["receipt"])
        await self.ended.put(call_id)

    async def close(self) -> None:
        """Disconnect, let a hand-over in flight finish, and close the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.channel.close()
        await self.tracker.drain(5.0)
        await self.pipeline.stop(5.0)
        self.store.close()
