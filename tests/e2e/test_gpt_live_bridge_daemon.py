"""A question asked during a GPT-Live call, through every real part to Codex and back.

The gateway (in-process ``serve`` through the gateway harness, ``backend = "gpt-live"``) talks
to the GPT-Live stand-in (:class:`~fakes.openai_live.FakeLive`, an aiortc peer for the media);
the bridge is the real daemon (``serve_bridge``) against the Bot API stand-in, holding the real
``codex app-server`` against the loopback model (:class:`~fakes.codex_model.FakeCodexModel`).
The stand-in's caller asks, GPT-Live delegates; the question goes gateway → ``/ws/bridge`` →
bridge → a turn in the bound thread; the answer comes back as ``session.commentary.append``
with the delegation's id, and the full answer is posted to the chat. Everything stays on
127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridgehost.codex import AppServerClient
from bridgehost.config import LoadedConfig, load_config
from bridgehost.providers import ContextPart
from bridgehost.state.bridge_store import BridgeStore
from bridgehost.telegram.daemon import serve_bridge
from bridgehost.telegram.runtime import BridgeRuntime
from fakes.codex_model import (
    KEY_ENV,
    FakeCodexModel,
    codex_home_config,
    find_codex_binary,
    seed_thread,
)
from fakes.openai_live import FakeLive
from fakes.telegram_api import FakeBotApi
from fakes.webrtc_caller import Caller
from gateway.conftest import BOT_TOKEN, OPENAI_KEY, USER_ID, RunningGateway, secrets_env

CODEX_BIN = find_codex_binary()
pytestmark = [
    pytest.mark.skipif(CODEX_BIN is None, reason="the codex CLI is not installed"),
    pytest.mark.timeout(60),
]

QUESTION = "Which module parses the invoices?"
WITHIN_S = 30.0


class NoHandoff:
    """Ended calls are not handed over here (the handoff has tests of its own)."""

    async def call_ended(self, call_id: str) -> None:
        """Nothing to do."""


class FixedContext:
    """The call context without a second app-server (the delegation is what is tested)."""

    async def context_parts(self, thread_id: str) -> list[ContextPart]:
        """One fixed part."""
        return [ContextPart("Recent turns of the bound Codex thread", "user: invoices", 90)]

    async def close(self) -> None:
        """Nothing held."""


def toml_text(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """Enough TOML for a config: scalars and lists (JSON spelling is valid TOML), and tables."""
    scalars = [f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, dict)]
    text = (f"[{'.'.join(prefix)}]\n" if prefix and scalars else "") + "".join(
        f"{line}\n" for line in scalars
    )
    for key, value in data.items():
        if isinstance(value, dict):
            text += toml_text(value, (*prefix, key))
    return text


@pytest.fixture
async def model(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeCodexModel]:
    """The loopback model; its key is in the environment every ``codex app-server`` inherits."""
    monkeypatch.setenv(KEY_ENV, "sk-fake-codex-model")
    monkeypatch.setenv("RUST_LOG", "warn")
    with FakeCodexModel() as fake:
        yield fake


@pytest.fixture
async def tg() -> AsyncIterator[FakeBotApi]:
    """The Bot API stand-in, with the harness's bot token."""
    async with FakeBotApi(token=BOT_TOKEN, max_poll_wait=5.0) as api:
        yield api


@pytest.fixture
async def live(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeLive]:
    """The GPT-Live stand-in: the caller asks, the model delegates and waits for the answer."""
    script = [("user", QUESTION), ("delegate", None), ("assistant", "Anything else?")]
    async with FakeLive(api_key=OPENAI_KEY, script=script, delegation_wait_s=25) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        yield fake


async def _thread(home: Path, work: Path, model: FakeCodexModel) -> str:
    """A thread with one earlier turn in ``home``."""
    assert CODEX_BIN is not None
    client = await AppServerClient.spawn(CODEX_BIN, home, cwd=work, timeout=20)
    try:
        return await seed_thread(client, work, ["We are refactoring the invoices"])
    finally:
        await client.close()


def _bridge_config(gw: RunningGateway, tmp_path: Path, tg: FakeBotApi, home: Path) -> LoadedConfig:
    """The gateway's config plus the bridge's tables: the Bot API stand-in and Codex."""
    raw = json.loads(json.dumps(gw.loaded.raw))
    raw.setdefault("telegram", {}).update(api_base_url=tg.root, poll_timeout_s=5)
    raw["codex"] = {"binary": CODEX_BIN, "home": str(home)}
    path = tmp_path / "bridge-telegram.toml"
    path.write_text(toml_text(raw))
    return load_config(path, env=secrets_env())


@contextlib.asynccontextmanager
async def _daemon(loaded: LoadedConfig) -> AsyncIterator[BridgeRuntime]:
    """``bridgehost telegram`` in this event loop, connected to the gateway; stopped after."""
    stop, ready = asyncio.Event(), asyncio.Event()
    holder: list[BridgeRuntime] = []

    def on_ready(rt: BridgeRuntime) -> None:
        holder.append(rt)
        ready.set()

    task = asyncio.create_task(
        serve_bridge(
            loaded, stop=stop, on_ready=on_ready, handoff=NoHandoff(), codex=FixedContext()
        )
    )
    try:
        waiter = asyncio.create_task(ready.wait())
        async with asyncio.timeout(15):
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()  # a start-up error, with its reason
        async with asyncio.timeout(10):
            while not holder[0].connected:
                await asyncio.sleep(0.02)
        yield holder[0]
    finally:
        stop.set()
        async with asyncio.timeout(20):
            with contextlib.suppress(Exception):
                await task


async def _until(predicate: Any, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_a_delegation_reaches_the_bound_thread_and_the_answer_returns(
    tmp_path: Path,
    model: FakeCodexModel,
    tg: FakeBotApi,
    live: FakeLive,
    gateway_factory: Any,
) -> None:
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(codex_home_config(model.port))
    thread_id = await _thread(home, work, model)
    gw: RunningGateway = await gateway_factory(connect_bridge=False, backend="gpt-live")
    store = BridgeStore.open(gw.loaded.config.storage.root)
    store.bind(thread_id)
    store.close()
    started = time.monotonic()
    async with _daemon(_bridge_config(gw, tmp_path, tg, home)):
        body = await gw.start_call()
        caller = Caller()
        async with gw.http.post(
            f"{gw.base}/api/call/webrtc",
            json={
                "call_id": body["call_id"],
                "client_token": body["client_token"],
                "sdp": await caller.offer(),
            },
        ) as resp:
            answer = await resp.json()
            assert resp.status == 200, answer
        await caller.connect(answer["sdp"])
        session = live.last()
        try:
            await _until(lambda: bool(session.commentary), timeout=WITHIN_S)
            [delegation_id] = session.delegations
            [said] = session.commentary[delegation_id]
            # the question reached the bound thread, in this very turn of the model
            asked = model.posts()[-1]
            assert QUESTION in str(asked["input"]) and "refactoring the invoices" in str(
                asked["input"]
            )
            assert said.startswith("FAKE-REPLY to:") and QUESTION in said
            assert session.thinking.get(delegation_id), "progress went in as thinking"
            assert not session.refused, "nothing GPT-Live refuses in client mode was sent"
            posted = await tg.wait_for_message(
                lambda m: m["chat"]["id"] == USER_ID and "Asked during the call" in m["text"],
                timeout=10,
            )
            assert QUESTION in posted["text"] and "FAKE-REPLY to:" in posted["text"]
        finally:
            await caller.close()
    assert time.monotonic() - started < WITHIN_S
