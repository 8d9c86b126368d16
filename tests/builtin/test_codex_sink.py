"""The ``codex`` handoff sink against the real ``codex`` binary and a loopback model provider.

The binary comes from ``$BRIDGEHOST_CODEX_BIN`` (``scripts/test.sh`` points it at the npm
install in ``.codex-npm``), else ``.codex-npm`` itself, else ``codex`` on PATH; the npm wrapper
is replaced by the native binary it wraps, which stops cleanly. The model is the fake OpenAI
Responses API on 127.0.0.1; the ``--disable`` flags keep Codex off the network.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridgehost.builtin.codex_sink import CodexSink
from bridgehost.codex import AppServerClient, CodexError
from bridgehost.codex.threads import item_text, iter_turns
from bridgehost.handoff import Outbox, Pipeline, Summarizer, build_artifact, deliveries
from bridgehost.providers import ProviderStartError
from bridgehost.state.bridge_store import BridgeStore
from fakes.codex_model import codex_args
from fakes.openai_api import FakeOpenAI
from handoff.handoff_helpers import make_config, no_secrets, plugin_host, seed_call

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
NATIVE = "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
KEY = "sk-fake-codex-sink"


def find_codex() -> str | None:
    """The native codex binary, if one can be found."""
    candidates = [
        os.environ.get("BRIDGEHOST_CODEX_BIN"),
        str(REPO / ".codex-npm" / NATIVE),
        shutil.which("codex"),
    ]
    for candidate in filter(None, candidates):
        path = Path(candidate).resolve()
        for parent in path.parents:  # an npm wrapper: .../node_modules/.bin/codex
            native = parent / NATIVE
            if parent.name != "node_modules" and native.is_file():
                return str(native)
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


CODEX = find_codex()
requires_codex = pytest.mark.skipif(
    CODEX is None,
    reason="codex binary not found: run scripts/setup.sh (npm @openai/codex into "
    ".codex-npm) or set BRIDGEHOST_CODEX_BIN",
)


def app_server_args(fake: FakeOpenAI) -> list[str]:
    """``app-server`` flags pointing Codex at the fake OpenAI, loopback only."""
    return codex_args(base_url=fake.base_url, key_env="FAKE_CODEX_KEY")


class Codex:
    """A fresh CODEX_HOME with one materialized thread, and the fake model behind it."""

    def __init__(self, fake: FakeOpenAI, home: Path, work: Path) -> None:
        self.fake, self.home, self.work = fake, home, work
        self.args = app_server_args(fake)
        self.thread_id = ""

    async def client(self) -> AppServerClient:
        assert CODEX is not None
        return await AppServerClient.spawn(
            CODEX, self.home, args=self.args, cwd=self.work, timeout=20
        )

    async def create_thread(self) -> str:
        async with await self.client() as client:
            started = await client.request("thread/start", {"cwd": str(self.work)})
            self.thread_id = started["thread"]["id"]
            with client.subscribe({"turn/completed"}) as sub:
                await client.request(
                    "turn/start",
                    {
                        "threadId": self.thread_id,
                        "input": [
                            {"type": "text", "text": "Let's fix the build.", "text_elements": []}
                        ],
                    },
                )
                done = await sub.get(timeout=20)
            assert done["params"]["turn"]["status"] == "completed"
        return self.thread_id

    async def user_messages(self) -> list[str]:
        async with await self.client() as client:
            turns = [t async for t in iter_turns(client, self.thread_id)]
        return [
            item_text(item)
            for turn in reversed(turns)
            for item in turn["items"]
            if item.get("type") == "userMessage"
        ]

    async def rollout(self) -> list[dict[str, Any]]:
        async with await self.client() as client:
            path = (await client.request("thread/read", {"threadId": self.thread_id}))["thread"][
                "path"
            ]
        return [json.loads(line) for line in Path(path).read_text().splitlines() if line]


@pytest.fixture
async def codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Codex]:
    monkeypatch.setenv("FAKE_CODEX_KEY", KEY)
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    async with FakeOpenAI(api_key=KEY) as fake:
        env = Codex(fake, home, work)
        await env.create_thread()
        yield env


def sink_config(codex: Codex, root: Path, mode: str):
    return make_config(
        root,
        sinks=["codex"],
        codex_mode=mode,
        plugins={"codex": {"app_server_args": codex.args, "turn_wait_s": 20}},
    )


def build_sink(config) -> CodexSink:
    host = plugin_host()
    sink = host.build(host.select("handoff_sinks", "codex"), config, no_secrets())
    assert isinstance(sink, CodexSink)
    return sink


def with_codex(config, codex: Codex):
    return config.model_copy(
        update={"codex": config.codex.model_copy(update={"binary": CODEX, "home": codex.home})}
    )


@requires_codex
async def test_turn_handoff_lands_once_after_a_retried_delivery(
    codex: Codex, tmp_path: Path
) -> None:
    root = tmp_path / "state"
    store = BridgeStore.open(root)
    seed_call(store, "call-cx", thread_id=codex.thread_id)
    config = with_codex(sink_config(codex, root, "turn"), codex)
    pipe = Pipeline(
        config,
        no_secrets(),
        store,
        sinks={"codex": build_sink(config)},
        summarizer=Summarizer(model="m", api_key=None),
    )
    await pipe.start()
    try:
        await pipe.call_ended("call-cx")
        assert await pipe.wait_idle(40)
    finally:
        await pipe.stop()
    first = deliveries(store, "call-cx")[0]
    assert first["status"] == "delivered", first
    assert first["receipt"].startswith(f"codex:{codex.thread_id}:turn:completed:")
    model_calls = len(codex.fake.responses_requests)

    # The process died after Codex took the handoff but before the outbox recorded it.
    store.db.execute("UPDATE handoff_outbox SET status = 'delivering'")
    assert Outbox(store).recover_interrupted() == 1
    again = Pipeline(
        config,
        no_secrets(),
        store,
        sinks={"codex": build_sink(config)},
        summarizer=Summarizer(model="m", api_key=None),
    )
    await again.start()
    try:
        assert await again.wait_idle(40)
    finally:
        await again.stop()
    row = deliveries(store, "call-cx")[0]
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert row["receipt"].endswith("(already there)")
    assert len(codex.fake.responses_requests) == model_calls  # no second turn

    messages = await codex.user_messages()
    handoffs = [m for m in messages if m.startswith("bridgehost-handoff: call-cx\n")]
    assert len(handoffs) == 1 and len(messages) == 2
    assert "# Voice call handoff" in handoffs[0]
    assert "pin libfoo to 1.4 and open a pull request" in handoffs[0]
    store.close()


@requires_codex
async def test_inject_mode_appends_context_once_without_a_model_call(
    codex: Codex, tmp_path: Path
) -> None:
    store = BridgeStore.open(tmp_path / "state")
    seed_call(store, "call-inj", thread_id=codex.thread_id)
    config = with_codex(sink_config(codex, tmp_path / "state", "inject"), codex)
    payload = build_artifact(store, "call-inj", config).payload()
    store.close()
    sink = build_sink(config)
    before = len(codex.fake.responses_requests)
    first = await sink.deliver(payload)
    second = await sink.deliver(payload)
    assert first == f"codex:{codex.thread_id}:inject:injected"
    assert second == first + " (already there)"
    assert len(codex.fake.responses_requests) == before
    marked = [
        r
        for r in await codex.rollout()
        if r.get("type") == "response_item"
        and "bridgehost-handoff: call-inj" in json.dumps(r.get("payload"))
    ]
    assert len(marked) == 1
    assert await codex.user_messages() == ["Let's fix the build."]  # invisible in the UI


@requires_codex
async def test_unbound_call_fails_with_the_fix(codex: Codex, tmp_path: Path) -> None:
    config = with_codex(sink_config(codex, tmp_path, "turn"), codex)
    with pytest.raises(CodexError, match="bridgectl bind"):
        await build_sink(config).deliver({"call_id": "c-none", "thread_id": None, "markdown": "x"})


async def test_missing_binary_is_reported(tmp_path: Path) -> None:
    config = make_config(tmp_path, sinks=["codex"])
    config = config.model_copy(
        update={
            "codex": config.codex.model_copy(
                update={"binary": str(tmp_path / "no-codex"), "home": tmp_path}
            )
        }
    )
    sink = build_sink(config)
    health = await sink.health()
    assert not health.ok and "not found" in health.detail
    with pytest.raises(ProviderStartError, match="not found"):
        await sink.start()
