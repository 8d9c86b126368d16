"""One real call, end to end: ``/call`` in Telegram → the Mini App in Chromium → a WebRTC call →
``/hangup`` → the handoff in the bound Codex thread.

Everything runs for real except the internet services: the gateway (in-process ``serve``, via
the gateway harness's ``gateway_factory``), the bridge daemon (``serve_bridge`` with its
default handoff pipeline and its default Codex reader), Debian's Chromium driven by Playwright
(``chromium`` fixture of ``tests/e2e/conftest.py``: fake microphone, loopback-only routing),
the ``codex`` binary from npm with an isolated ``CODEX_HOME``, and ``bridgectl`` (``bind``,
``call status``). The stand-ins: :class:`~fakes.telegram_api.FakeBotApi` (Telegram),
:class:`~fakes.openai_api.FakeOpenAI` (the realtime voice model over WebRTC with aiortc, the
sideband, the Responses API that writes the summary) and
:class:`~fakes.codex_model.FakeCodexModel` (Codex's model provider, set in
``$CODEX_HOME/config.toml`` so every ``codex app-server`` — the bridge's context reader, the
codex sink, bridgectl, this test's reader — stays on 127.0.0.1).

Both services read one ``bridge.config.toml``, as in production: the harness's ``write_config``
is wrapped so the file it writes also carries ``[telegram] api_base_url``, ``[codex]`` and
``[handoff]``.

``handoff.codex_mode = "turn"``: the loopback model answers every turn at once with a fixed
reply, so a visible turn is as reliable as ``inject`` here, and it shows more — the handoff is
an ordinary user message in the thread (read back with ``thread/turns/list``) and the agent
model really receives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import gateway.conftest as gateway_harness
from bridgehost.codex import AppServerClient, open_app_server
from bridgehost.codex.threads import item_text, iter_turns
from bridgehost.config import CodexConfig, LoadedConfig, load_config
from bridgehost.handoff import marker_line
from bridgehost.handoff._markdown import format_duration
from bridgehost.telegram.daemon import serve_bridge
from bridgehost.telegram.runtime import BridgeRuntime
from fakes.codex_model import (
    KEY_ENV,
    FakeCodexModel,
    codex_home_config,
    find_codex_binary,
    seed_thread,
)
from fakes.openai_api import FakeOpenAI
from fakes.telegram_api import FakeBotApi
from gateway.conftest import BOT_TOKEN, OPENAI_KEY, USER_ID, secrets_env

CODEX_BIN = find_codex_binary()

pytestmark = [
    pytest.mark.skipif(
        CODEX_BIN is None,
        reason="codex binary not found: run `npm install --prefix .codex-npm "
        "@openai/codex@0.169.0` or set BRIDGEHOST_CODEX_BIN",
    ),
    pytest.mark.timeout(120),
]

CHAT = USER_ID  # a private chat's id is the user's id
EARLIER_WORK = "We are refactoring the billing module"
EARLIER_REPLY = "Understood: the billing module refactor comes first."
SAID = "Let's split the invoice parser into two functions"
ANSWERED = "Agreed, I'll note that as an action item"
SUMMARY_MODEL = "gpt-summary-e2e"
SINKS = ["file", "codex", "telegram"]
WAIT_S = 30.0


# -- the parts ---------------------------------------------------------------------------------


@dataclass
class CodexWorld:
    """An isolated ``CODEX_HOME`` with one thread of earlier work, and its model."""

    config: CodexConfig
    model: FakeCodexModel
    thread_id: str

    async def messages(self) -> list[tuple[str, str]]:
        """The thread's user and agent messages, oldest first, read back through a fresh
        ``codex app-server``."""
        client = await open_app_server(self.config, thread_id=self.thread_id)
        try:
            turns = [turn async for turn in iter_turns(client, self.thread_id)]
        finally:
            await client.close()
        return [
            (str(item["type"]), item_text(item))
            for turn in reversed(turns)
            for item in turn.get("items") or []
            if item.get("type") in ("userMessage", "agentMessage")
        ]

    async def handoffs(self, call_id: str) -> list[str]:
        """The thread's user messages that carry this call's handoff."""
        return [
            text
            for kind, text in await self.messages()
            if kind == "userMessage" and text.startswith(marker_line(call_id))
        ]


@pytest.fixture
async def codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CodexWorld]:
    """A thread with one user/assistant turn in a fresh ``CODEX_HOME``."""
    assert CODEX_BIN is not None
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv(KEY_ENV, "sk-fake-codex-model")  # inherited by every codex app-server
    monkeypatch.setenv("RUST_LOG", "warn")
    with FakeCodexModel() as model:
        (home / "config.toml").write_text(codex_home_config(model.port))
        client = await AppServerClient.spawn(CODEX_BIN, home, cwd=work, timeout=20)
        try:
            model.script(("final_answer", EARLIER_REPLY))
            thread_id = await seed_thread(client, work, [EARLIER_WORK], name="Billing refactor")
        finally:
            await client.close()
        yield CodexWorld(CodexConfig(binary=CODEX_BIN, home=home), model, thread_id)


@pytest.fixture
async def openai(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeOpenAI]:
    """The fake OpenAI with the scripted exchange; ``OPENAI_BASE_URL`` points both services
    (gateway: calls and sideband; bridge: the summary) at it."""
    async with FakeOpenAI(api_key=OPENAI_KEY, script=[(SAID, ANSWERED)]) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        yield fake


@pytest.fixture
async def tg() -> AsyncIterator[FakeBotApi]:
    """The fake Bot API, with the harness's bot token (the gateway checks init data with it)."""
    async with FakeBotApi(token=BOT_TOKEN, max_poll_wait=5.0) as api:
        yield api


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
def shared_config(
    monkeypatch: pytest.MonkeyPatch, codex: CodexWorld, tg: FakeBotApi, tmp_path: Path
) -> Path:
    """Make ``gateway_factory`` write the one ``bridge.config.toml`` both services read: the
    harness's file plus the bridge's tables. Returns its path."""
    original = gateway_harness.write_config
    extra = {
        "telegram": {"api_base_url": tg.root, "poll_timeout_s": 5},
        "codex": {"binary": codex.config.binary, "home": str(codex.config.home)},
        "handoff": {"sinks": SINKS, "codex_mode": "turn", "retry_base_s": 0.5, "retry_max_s": 2},
        "plugins": {"codex": {"turn_wait_s": 20}},
    }

    def write_shared(root: Path, port: int, **realtime: Any) -> Path:
        path = original(root, port, **realtime)
        data = tomllib.loads(path.read_text())
        for table, values in extra.items():
            data.setdefault(table, {}).update(values)
        path.write_text(toml_text(data))
        return path

    monkeypatch.setattr(gateway_harness, "write_config", write_shared)
    return tmp_path / "bridge.config.toml"


@dataclass
class Daemon:
    """``bridgehost telegram`` running in this test's event loop."""

    rt: BridgeRuntime
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def shutdown(self) -> None:
        """SIGTERM, in effect: stop and wait (bounded)."""
        self.stop.set()
        async with asyncio.timeout(30):
            await self.task


@pytest.fixture
async def bridge(
    codex: CodexWorld, openai: FakeOpenAI, tg: FakeBotApi
) -> AsyncIterator[Callable[[LoadedConfig], Any]]:
    """Start the real bridge daemon (default handoff pipeline and Codex reader) until it is
    connected to the gateway; every daemon is stopped after the test, before the stand-ins it
    talks to."""
    started: list[Daemon] = []

    async def start(loaded: LoadedConfig) -> Daemon:
        stop, ready = asyncio.Event(), asyncio.Event()
        holder: list[BridgeRuntime] = []

        def on_ready(rt: BridgeRuntime) -> None:
            holder.append(rt)
            ready.set()

        task = asyncio.create_task(serve_bridge(loaded, stop=stop, on_ready=on_ready))
        waiter = asyncio.create_task(ready.wait())
        async with asyncio.timeout(15):
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()  # a start-up error, with its reason
        daemon = Daemon(holder[0], stop, task)
        started.append(daemon)
        async with asyncio.timeout(10):
            while not daemon.rt.connected:
                await asyncio.sleep(0.02)
        return daemon

    yield start
    for daemon in started:
        if not daemon.task.done():
            with contextlib.suppress(Exception):
                await daemon.shutdown()


# -- small waits and views ----------------------------------------------------------------------


def web_app_url(message: dict[str, Any]) -> str | None:
    """The URL of a message's inline ``web_app`` button, if it has one."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return next((b["web_app"]["url"] for row in rows for b in row if "web_app" in b), None)


async def until(predicate: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Poll ``predicate`` until it returns something truthy (bounded)."""
    try:
        async with asyncio.timeout(timeout):
            while not (result := predicate()):
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None
    return result


def event_types(rt: BridgeRuntime, call_id: str) -> list[str]:
    """The types of the events the bridge stored for a call, in order."""
    return [event["type"] for event in rt.store.call_events(call_id)]


def outbox(rt: BridgeRuntime, call_id: str) -> dict[str, tuple[str, int]]:
    """``{sink: (status, attempts)}`` of a call's handoff deliveries."""
    return {d["sink"]: (d["status"], d["attempts"]) for d in rt.handoff.deliveries(call_id)}


def recaps(tg: FakeBotApi) -> list[dict[str, Any]]:
    """The call recaps the bot posted in the chat."""
    return [m for m in tg.sent_messages(CHAT) if m["text"].startswith("📞 Call ended after")]


@contextlib.contextmanager
def step(name: str, timings: dict[str, float]) -> Iterator[None]:
    """Record how long a phase of the test took (printed at the end, for the runtime budget)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        yield
    finally:
        timings[name] = round(loop.time() - start, 2)


# -- the test ------------------------------------------------------------------------------------


async def test_a_call_from_telegram_hands_off_to_the_codex_thread(
    codex: CodexWorld,
    openai: FakeOpenAI,
    tg: FakeBotApi,
    shared_config: Path,
    gateway_factory: Callable[..., Any],
    bridge: Callable[[LoadedConfig], Any],
    chromium: Callable[..., Any],
    cli: Callable[..., Any],
) -> None:
    # (Fixture order matters: the services stop before the stand-ins they talk to.)
    timings: dict[str, float] = {}

    # 1-3. Both services on one config; the thread bound with bridgectl, as an operator does.
    with step("services", timings):
        gw = await gateway_factory(
            connect_bridge=False,
            backend="openai",
            summary_model=SUMMARY_MODEL,
            startup_timeout_ms=15_000,  # room for reading the Codex thread on a busy machine
        )
        assert gw.loaded.path == shared_config
        assert gw.loaded.config.handoff.sinks == SINKS
        bound = await asyncio.to_thread(
            cli,
            ["bridgectl", "--config", str(shared_config), "bind", codex.thread_id, "--json"],
            env=dict(os.environ),
        )
        assert bound.returncode == 0, bound.stderr
        binding = json.loads(bound.stdout)
        assert binding["thread_id"] == codex.thread_id and binding["verified"] is True
        loaded = load_config(shared_config, env=secrets_env())
        daemon = await bridge(loaded)

    # 4. /call → the Mini App button → the Telegram launch URL, opened in Chromium.
    with step("invite", timings):
        tg.push_message(CHAT, "/call")
        invite = await tg.wait_for_message(lambda m: web_app_url(m) is not None, timeout=WAIT_S)
        button_url = web_app_url(invite)
        assert button_url is not None and button_url.startswith(f"{gw.base}/miniapp?launch=")
        launch = tg.launch_url(button_url, USER_ID, platform="android")
        page_url, _, fragment = launch.partition("#")
        params = {k: v[0] for k, v in parse_qs(fragment).items()}
        app = await chromium(page_url, params["tgWebAppData"], platform=params["tgWebAppPlatform"])
        opened = {k: v[0] for k, v in parse_qs(urlsplit(app.page.url).fragment).items()}
        assert opened == params  # the page got exactly what Telegram would hand it
        assert await app.text("#status") == "Ready when you are."

    with step("call", timings):
        await app.page.click("#start")
        await app.wait("s.state === 'in_call'", timeout_ms=int(WAIT_S * 1000))
        assert (await app.stats())["transport"] == "webrtc"
        session = gw.gateway.calls.current
        assert session is not None
        call_id = session.call_id
        upstream = openai.last_call()
        assert EARLIER_WORK in upstream.session["instructions"]  # the bridge read the thread
        await app.page.wait_for_selector("#transcript li.assistant", timeout=WAIT_S * 1000)
        shown = await app.text("#transcript")
        assert SAID in shown and ANSWERED in shown
        await until(
            lambda: "assistant.transcript.final" in event_types(daemon.rt, call_id),
            "the bridge to store the assistant's transcript",
        )
        await app.screenshot("call-to-codex-in-call.png")

    # 5. /hangup in the chat ends the call; the handoff goes to every sink.
    with step("hangup+handoff", timings):
        tg.push_message(CHAT, "/hangup")
        ack = await tg.wait_for_message(
            lambda m: m["text"].startswith("Hanging up…"), timeout=WAIT_S
        )
        await app.wait("s.state === 'ended'", timeout_ms=int(WAIT_S * 1000))
        assert await app.text("#status") == "The call was hung up from Telegram (/hangup)."
        await until(lambda: upstream.hung_up, "the gateway to hang up upstream")
        await until(
            lambda: (
                sorted(s for s, _ in outbox(daemon.rt, call_id).values())
                == ["delivered"] * len(SINKS)
            ),
            "every sink to deliver the handoff",
        )
    assert outbox(daemon.rt, call_id) == {sink: ("delivered", 1) for sink in SINKS}
    ended = daemon.rt.store.call_events(call_id)[-1]
    assert (ended["type"], ended["reason"], ended["ended_by"]) == (
        "call.ended",
        "telegram_hangup",
        "telegram",
    )

    # The summary came from the fake Responses API, once, with the configured model.
    assert [r["model"] for r in openai.responses_requests] == [SUMMARY_MODEL]
    assert SAID in json.dumps(openai.responses_requests[0])

    # file: the call bundle.
    bundle = Path(loaded.config.storage.root) / "calls" / call_id
    handoff = json.loads((bundle / "handoff.json").read_text())
    markdown = (bundle / "handoff.md").read_text()
    assert (handoff["call_id"], handoff["thread_id"]) == (call_id, codex.thread_id)
    assert handoff["summarized"] is True and handoff["end_reason"] == "telegram_hangup"
    assert handoff["summary"].startswith("Summary: ")
    assert markdown.startswith(marker_line(call_id) + "\n") and SAID in markdown

    # telegram: one recap, after the acknowledgement, with the duration, the reason and where
    # the handoff went.
    [recap] = recaps(tg)
    assert recap["message_id"] > ack["message_id"]
    assert f"📞 Call ended after {format_duration(handoff['duration_s'])}" in recap["text"]
    assert "Reason: hung up with /hangup in Telegram (telegram_hangup)" in recap["text"]
    assert handoff["summary"] in recap["text"]
    assert f"• codex: codex:{codex.thread_id}:turn:completed" in recap["text"]

    # codex: the handoff is a turn of the bound thread — exactly once — and the agent got it.
    with step("read thread", timings):
        messages = await codex.messages()
    [landed] = [t for k, t in messages if k == "userMessage" and t.startswith(marker_line(call_id))]
    assert messages[:2] == [("userMessage", EARLIER_WORK), ("agentMessage", EARLIER_REPLY)]
    assert messages[2:] == [("userMessage", landed), ("agentMessage", f"FAKE-REPLY to: {landed}")]
    assert landed == markdown.strip()
    assert SAID in landed and ANSWERED in landed and handoff["summary"] in landed
    model_calls = len(codex.model.posts())

    # 6. A restart of the bridge delivers nothing twice.
    with step("restart", timings):
        await daemon.shutdown()
        again = await bridge(load_config(shared_config, env=secrets_env()))
        assert await again.rt.handoff.wait_idle(WAIT_S)
        await asyncio.sleep(1.0)  # room for anything the restart would (wrongly) redo
        assert await again.rt.handoff.wait_idle(WAIT_S)
        assert await again.rt.handoff.recover() == []  # nothing left to finalize
        assert again.rt.store.call(call_id)["handoff_state"] == "handed"
        status = await asyncio.to_thread(
            cli,
            ["bridgectl", "--config", str(shared_config), "call", "status", "--json"],
            env={**os.environ, **secrets_env()},
        )
        assert status.returncode == 0, status.stderr
        [listed] = [c for c in json.loads(status.stdout)["recent_calls"] if c["call_id"] == call_id]
        assert {d["sink"]: (d["status"], d["attempts"]) for d in listed["deliveries"]} == {
            sink: ("delivered", 1) for sink in SINKS
        }
        assert outbox(again.rt, call_id) == {sink: ("delivered", 1) for sink in SINKS}
        assert await codex.handoffs(call_id) == [landed]
        assert len(recaps(tg)) == 1
        assert len(codex.model.posts()) == model_calls  # no second turn
        assert len(openai.responses_requests) == 1  # no second summary

    assert app.blocked == [] and await app.csp_violations() == []
    print(f"\nphases (s): {timings}")
