"""The daemon's ``HandoffPipeline`` seam with the real ``bridgehost.handoff.Pipeline`` behind it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from tg_harness import (
    CHAT,
    bootstrap_from_button,
    bridge_config,
    browser,
    browser_event,
    stored,
    wait_text,
)

from bridgehost.handoff import Pipeline
from bridgehost.providers import Health
from bridgehost.state.bridge_store import BridgeStore


class MemorySink:
    """A sink that keeps what it is given."""

    def __init__(self) -> None:
        self.artifacts: list[Mapping[str, Any]] = []

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def health(self) -> Health:
        """Always fine."""
        return Health(True, "in memory")

    async def deliver(self, artifact: Mapping[str, Any]) -> str:
        """Keep the artifact."""
        self.artifacts.append(artifact)
        return f"memory:{artifact['call_id']}"


async def test_an_ended_call_reaches_the_sinks_through_the_real_pipeline(
    tmp_path, tg, gateway_factory, bridge_factory
):
    gw = await gateway_factory(connect_bridge=False)
    store = BridgeStore.open(gw.loaded.config.storage.root)
    store.bind("thread-abc")
    store.close()
    loaded = bridge_config(tmp_path, tg, gateway_raw=gw.loaded.raw)
    sink = MemorySink()
    bridge = await bridge_factory(
        loaded,
        handoff=lambda store: Pipeline(
            loaded.config, loaded.secrets, store, sinks={"memory": sink}
        ),
    )
    await bridge.wait_connected()

    tg.push_message(CHAT, "/call")
    body = await bootstrap_from_button(gw, tg)
    ws = await browser(gw, body)
    await browser_event(ws, {"type": "call.started"}, 1)
    await browser_event(ws, {"type": "user.transcript.final", "text": "ship the parser fix"}, 2)
    await stored(bridge.rt.store, body["call_id"], "user.transcript.final")
    tg.push_message(CHAT, "/hangup")
    await wait_text(tg, "Hanging up…")
    async with asyncio.timeout(15):
        while not sink.artifacts:
            await asyncio.sleep(0.05)
    assert sink.artifacts[0]["call_id"] == body["call_id"]
    assert bridge.rt.store.call(body["call_id"])["handoff_state"] == "handed"
    await ws.close()
