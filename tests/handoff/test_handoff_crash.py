"""Crash safety with real processes: SIGKILL the bridge at several points, restart, and every
sink's effect has happened exactly once.

Sinks: ``file`` (one bundle), ``webhook`` (the third-party plugin, against a loopback receiver
that counts ``Idempotency-Key`` values) and ``counting`` (a test plugin that records its effect
in a ledger file and can block before or after it).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from handoff_counting_sink import effects
from handoff_helpers import config_data, seed_call

from bridgehost.config import render_toml
from bridgehost.state.bridge_store import BridgeStore

pytestmark = pytest.mark.timeout(90)

DRIVER = Path(__file__).with_name("handoff_crash_driver.py")
CALL = "crash-call-1"


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[str]]]:
    """A webhook receiver on 127.0.0.1 recording each request's Idempotency-Key."""
    keys: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        assert body["call_id"] == request.headers["Idempotency-Key"]
        keys.append(request.headers["Idempotency-Key"])
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/hook")), keys
    await server.close()


def write_config(root: Path, url: str, block: str) -> Path:
    data = config_data(root, sinks=["file", "webhook", "counting"])
    data["plugins"] = {
        "webhook": {"url": url, "timeout_s": 5},
        "counting": {"ledger": str(root / "ledger.txt"), "block": block},
    }
    path = root / f"bridge-{block}.toml"
    path.write_text(render_toml(data))
    return path


class Driver:
    """One run of the driver process; every wait is bounded."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, config: Path, *args: str) -> Driver:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "BRIDGE"))}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(DRIVER),
            str(config),
            CALL,
            *args,
            cwd=DRIVER.parent,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def wait_line(self, prefix: str, timeout: float = 30.0) -> str:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    err = (await self.proc.stderr.read()).decode()[-3000:]  # type: ignore[union-attr]
                    raise AssertionError(f"driver exited before {prefix!r}:\n{err}")
                line = raw.decode().strip()
                self.lines.append(line)
                if line.startswith(prefix):
                    return line

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        async with asyncio.timeout(10):
            assert await self.proc.wait() == -signal.SIGKILL

    async def finish(self) -> list[dict]:
        line = await self.wait_line("DONE ")
        async with asyncio.timeout(10):
            assert await self.proc.wait() == 0
        return json.loads(line.removeprefix("DONE "))


def seed(root: Path) -> None:
    store = BridgeStore.open(root)
    seed_call(store, CALL)
    store.close()


SCENARIOS = {
    # the daemon stored call.ended and died before offering the call: recovery alone finds it
    "before-offer": (None, "none", ["--no-offer"]),
    # artifact built, bundle written, nothing queued yet
    "before-enqueue": ("PAUSED before-enqueue", "none", ["--pause", "before-enqueue"]),
    # queued (one transaction), nothing delivered
    "after-enqueue": ("PAUSED after-enqueue", "none", ["--pause", "after-enqueue"]),
    # the counting sink is mid-delivery, before its effect
    "mid-delivery": ("PAUSED delivering-before-effect", "before", []),
    # the counting sink had its effect; the outbox did not record it yet
    "after-effect": ("PAUSED delivering-after-effect", "after", []),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_sigkill_then_restart_delivers_each_sink_exactly_once(
    scenario: str, tmp_path: Path, receiver: tuple[str, list[str]]
) -> None:
    url, keys = receiver
    marker, block, args = SCENARIOS[scenario]
    root = tmp_path / "state"
    root.mkdir()
    seed(root)
    ledger = root / "ledger.txt"
    if marker is not None:
        first = await Driver.start(write_config(root, url, block), *args)
        await first.wait_line(marker)
        await first.kill()
        store = BridgeStore.open(root)
        rows = {r["sink"]: r for r in store.db.query("SELECT * FROM handoff_outbox")}
        store.close()
        if scenario in ("before-enqueue",):
            assert rows == {}
        if scenario in ("mid-delivery", "after-effect"):
            assert rows["counting"]["status"] == "delivering"
        assert effects(ledger, CALL) == (1 if scenario == "after-effect" else 0)

    second = await Driver.start(
        write_config(root, url, "none"), *args[:1] if scenario == "before-offer" else ()
    )
    rows = {r["sink"]: r for r in await second.finish()}

    assert {sink: row["status"] for sink, row in rows.items()} == {
        "file": "delivered",
        "webhook": "delivered",
        "counting": "delivered",
    }
    # counting: the effect happened exactly once, whatever was retried
    assert effects(ledger, CALL) == 1
    attempts = [line for line in ledger.read_text().splitlines() if line.startswith("attempt")]
    assert len(attempts) == rows["counting"]["attempts"]
    assert len(attempts) == (2 if scenario in ("mid-delivery", "after-effect") else 1)
    # webhook: one idempotency key; a second POST only when a kill could have cut it short
    assert set(keys) == {CALL}
    if scenario in ("before-offer", "before-enqueue", "after-enqueue"):
        assert keys == [CALL]
    # file: one complete bundle, no half-written leftovers
    calls = [p.name for p in (root / "calls").iterdir()]
    assert calls == [CALL]
    bundle = root / "calls" / CALL
    listing = sorted(p.name for p in bundle.iterdir())
    assert listing == ["handoff.json", "handoff.md", "transcript.md"], listing
    handoff = json.loads((bundle / "handoff.json").read_text())
    assert handoff["call_id"] == CALL and handoff["schema_version"] == 1
    assert (bundle / "handoff.md").read_text().startswith(f"bridgehost-handoff: {CALL}\n")
    assert rows["file"]["receipt"] == str(bundle / "handoff.md")
