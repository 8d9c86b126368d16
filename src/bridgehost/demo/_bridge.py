"""A minimal bridge for the demo: answers prepares, stores events, writes the handoff files.

It is the real bridge client (:class:`~bridgehost.telegram.control_channel.ControlChannel`) and
the real event store and hand-over (:class:`~bridgehost.telegram.handover.CallTracker`) on the
real gateway, but needs no Telegram and no Codex: the call context is a fixed demo note, and the
handoff goes to the ``file`` sink.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bridgehost.config import LoadedConfig
from bridgehost.plugins import PluginHost
from bridgehost.protocol.end_reasons import end_label
from bridgehost.state.bridge_store import BridgeStore
from bridgehost.telegram.control_channel import ControlChannel
from bridgehost.telegram.handover import CallTracker

CONNECT_TIMEOUT_S = 10.0
DEMO_CONTEXT = {"parts": [{"title": "Demo", "text": "This is an offline demo."}]}


class DemoBridge:
    """Connects to the gateway's control channel and hands finished calls to the file sink."""

    def __init__(self, loaded: LoadedConfig, url: str, secret: str) -> None:
        self.loaded = loaded
        self.store = BridgeStore.open(loaded.config.storage.root)
        self.store.bind("demo-thread")
        self.handoffs: dict[str, str] = {}
        self.ended = asyncio.Queue[str]()
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
        """Connect, say hello, and wait (bounded) until the gateway has greeted back."""
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
        """Write the demo handoff of an ended call through the ``file`` sink."""
        events = self.store.call_events(call_id)
        ended = events[-1]
        lines = [
            f"bridgehost-handoff: {call_id}",
            "",
            f"# Demo call {call_id}",
            "",
            f"- ended: {end_label(ended['reason'])} (by {ended['ended_by']})",
            f"- duration: {ended['duration_ms'] / 1000:.1f} s",
            f"- events logged: {len(events)}",
            "",
        ]
        lines += [
            f"- {e['type']}: {e.get('text') or e.get('reason') or ''}".rstrip(": ") for e in events
        ]
        artifact: dict[str, Any] = {
            "call_id": call_id,
            "end_reason": ended["reason"],
            "events": events,
            "markdown": "\n".join(lines) + "\n",
        }
        host = PluginHost.for_config(self.loaded.config)
        sink = host.build(
            host.select("handoff_sinks", "file"), self.loaded.config, self.loaded.secrets
        )
        await sink.start()
        self.handoffs[call_id] = await sink.deliver(artifact)
        await self.ended.put(call_id)

    async def close(self) -> None:
        """Disconnect, let a hand-over in flight finish, and close the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.channel.close()
        await self.tracker.drain(5.0)
        self.store.close()
