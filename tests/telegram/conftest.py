"""Fixtures: the real bridge daemon, in-process, against the fake Bot API and a real gateway.

``gateway_factory`` (a real gateway, echo backend, static loopback origin) comes from
``tests/gateway/conftest.py``; ``bridge_factory`` starts :func:`serve_bridge` on a config that
shares the gateway's storage root and points ``[telegram] api_base_url`` at the fake.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from tg_harness import BOT_TOKEN, RecordingHandoff, RunningBridge, StaticCodex

from bridgehost.config import LoadedConfig
from bridgehost.telegram.daemon import serve_bridge
from bridgehost.telegram.runtime import BridgeRuntime
from fakes.telegram_api import FakeBotApi
from gateway.conftest import gateway_factory

__all__ = ["bridge_factory", "gateway_factory", "tg"]


@pytest.fixture
async def tg() -> AsyncIterator[FakeBotApi]:
    """The fake Bot API, using the gateway harness's bot token."""
    async with FakeBotApi(token=BOT_TOKEN, max_poll_wait=5.0) as api:
        yield api


BridgeFactory = Callable[..., Any]


@pytest.fixture
async def bridge_factory(tmp_path: Path) -> AsyncIterator[BridgeFactory]:
    """Start daemons on a loaded config; all are stopped after the test."""
    running: list[RunningBridge] = []

    async def start(
        loaded: LoadedConfig, *, codex: StaticCodex | None = None, handoff: Any = None
    ) -> RunningBridge:
        stop, ready = asyncio.Event(), asyncio.Event()
        holder: list[BridgeRuntime] = []
        handoff = handoff or RecordingHandoff()
        codex = codex or StaticCodex()

        def on_ready(rt: BridgeRuntime) -> None:
            holder.append(rt)
            ready.set()

        task = asyncio.create_task(
            serve_bridge(loaded, stop=stop, on_ready=on_ready, handoff=handoff, codex=codex)
        )
        waiter = asyncio.create_task(ready.wait())
        async with asyncio.timeout(10):
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()
        bridge = RunningBridge(holder[0], stop, task, handoff, codex)
        running.append(bridge)
        return bridge

    yield start
    for bridge in running:
        await bridge.shutdown()
