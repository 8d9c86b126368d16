"""Delegation during a GPT-Live call, end to end through real parts.

The voice side is the ``gpt-live`` backend against the GPT-Live stand-in with an aiortc caller;
the gateway side is :class:`bridgehost.gateway.delegations.Delegations`; the bridge side is
:class:`bridgehost.telegram.call_delegations.CallDelegator` on a real
:class:`~bridgehost.codex.turns.TurnRunner` holding a real ``codex app-server`` against the
loopback model. Frames between gateway and bridge go through the ``/ws/bridge`` protocol
module as JSON (serialized and parsed on each hop), as on the real channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bridgehost.builtin import gpt_live
from bridgehost.codex import AppServerClient
from bridgehost.codex.turns import TurnInput, TurnResult, TurnRunner
from bridgehost.config import Secrets, validate_config
from bridgehost.gateway.delegations import Delegations
from bridgehost.gateway.events import validate_event
from bridgehost.plugins import PluginHost
from bridgehost.protocol.bridge import Frame, parse_from_bridge, parse_from_gateway
from bridgehost.providers import SessionSetup
from bridgehost.telegram.call_delegations import CallDelegator
from fakes.codex_model import CODEX_ENV, FakeCodexModel, codex_args, find_codex_binary
from fakes.openai_live import FakeLive
from fakes.webrtc_caller import Caller

BINARY = find_codex_binary()
pytestmark = [
    pytest.mark.skipif(BINARY is None, reason="the codex CLI is not installed"),
    pytest.mark.timeout(60),
]
KEY = "sk-test-gpt-live-delegation"
QUESTION = "What does the parser module do?"


@dataclass
class Record:
    """The parts of a gateway call record the delegations read."""

    bridge_id: str = "bridge-1"


@dataclass
class Call:
    """A stand-in for the gateway's ``CallSession``: id, record, backend, ended."""

    call_id: str
    backend: Any
    record: Record = field(default_factory=Record)
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class CallLog:
    """A stand-in for ``CallManager.gateway_event``: gateway events, validated as logged."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def gateway_event(self, session: Any, event: dict[str, Any]) -> None:
        self.events.append(validate_event(event, "gateway"))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


class Channel:
    """``/ws/bridge`` in one process: each frame is serialized and parsed on the way."""

    def __init__(self) -> None:
        self.to_bridge: list[Frame] = []
        self.delegations: Delegations | None = None
        self.delegator: CallDelegator | None = None
        self.connected = True

    async def send_to(self, bridge_id: str, frame: Frame) -> bool:
        """Gateway → bridge."""
        if not self.connected:
            return False
        parsed = parse_from_gateway(frame.to_json())
        self.to_bridge.append(parsed)
        assert self.delegator is not None
        await self.delegator.on_frame(parsed)
        return True

    async def send(self, frame: Frame) -> bool:
        """Bridge → gateway."""
        if not self.connected:
            return False
        assert self.delegations is not None
        await self.delegations.on_frame(parse_from_bridge(frame.to_json()))
        return True


@dataclass
class Rig:
    fake: FakeLive
    model: FakeCodexModel
    session: Any
    caller: Caller
    log: CallLog
    channel: Channel
    delegations: Delegations
    posted: list[str]
    thread_id: str
    runner: TurnRunner
    ahead: asyncio.Task[TurnResult] | None


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in CODEX_ENV.items():
        monkeypatch.setenv(name, value)
    with FakeCodexModel() as fake:
        yield fake


@contextlib.asynccontextmanager
async def _rig(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model: FakeCodexModel,
    timeout_s: float,
    chat_ahead: str | None = None,
) -> AsyncIterator[Rig]:
    home = tmp_path / "codex-home"
    home.mkdir()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    assert BINARY is not None

    async def connect(cls: type[AppServerClient]) -> AppServerClient:
        return await cls.spawn(
            BINARY, home, args=codex_args(model.port), env=CODEX_ENV, cwd=workspace, timeout=20
        )

    runner = TurnRunner(connect)
    thread_id = await runner.start_thread(str(workspace))
    ahead = None
    if chat_ahead is not None:  # a chat message whose turn runs when the call delegates
        ahead = asyncio.get_running_loop().create_task(
            runner.run(thread_id, [TurnInput.of_text(chat_ahead)])
        )
        await _until(lambda: bool(model.posts()))
    script = [("user", QUESTION), ("delegate", None), ("assistant", "Anything else?")]
    async with FakeLive(api_key=KEY, script=script, delegation_wait_s=20) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        host = PluginHost()
        host.register(gpt_live, "gpt-live")
        config = validate_config(
            {"realtime": {"backend": "gpt-live"}, "storage": {"root": str(tmp_path)}}, env={}
        )
        provided = host.select("realtime_backends", "gpt-live")
        backend = host.build(provided, config, Secrets(env={"OPENAI_API_KEY": KEY}))
        await backend.start()
        log, channel, posted = CallLog(), Channel(), []

        async def post(text: str) -> None:
            posted.append(text)

        channel.delegations = Delegations(log, channel, timeout_s=timeout_s)  # type: ignore[arg-type]
        channel.delegator = CallDelegator(
            runner,
            thread_of=lambda: thread_id,
            send=channel.send,
            post=post,
            sandbox=config.codex.call_sandbox,
        )

        class Events:
            async def event(self, event: Any) -> None:
                pass

            async def audio(self, chunk: bytes) -> None:
                pass

            async def ended(self, reason: str) -> None:
                pass

        setup = SessionSetup(call_id="call-1", instructions="Persona", max_call_ms=60_000)
        session = await backend.open_session(setup, Events())
        call = Call("call-1", session)
        channel.delegations.attach(call)  # type: ignore[arg-type]
        assert session.on_delegation is not None
        caller = Caller()
        await caller.connect(await session.answer_offer(await caller.offer()))
        try:
            yield Rig(
                fake,
                model,
                session,
                caller,
                log,
                channel,
                channel.delegations,
                posted,
                thread_id,
                runner,
                ahead,
            )
        finally:
            call.ended.set()
            await session.close("test_end")
            await caller.close()
            await backend.stop()
            await channel.delegator.close()
            await runner.close()


async def _until(predicate: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_the_question_reaches_the_thread_and_the_answer_returns_to_the_voice_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: FakeCodexModel
) -> None:
    started = time.monotonic()
    async with _rig(tmp_path, monkeypatch, model, timeout_s=30) as rig:
        live = rig.fake.last()
        await _until(lambda: bool(live.commentary))
        [delegation_id] = live.delegations
        assert QUESTION in str(model.posts()[-1]["input"])  # reached the bound thread
        [said] = live.commentary[delegation_id]
        assert said.startswith("FAKE-REPLY to:") and QUESTION in said
        assert live.thinking.get(delegation_id), "progress went in as thinking"
        [begun] = rig.log.of("delegation.started")
        assert begun["question"] == QUESTION and begun["delegation_id"] == delegation_id
        [done] = rig.log.of("delegation.finished")
        assert done["ok"] is True and done["turn_id"] and done["answer"] == said
        assert rig.log.of("delegation.progress")
        assert rig.posted and QUESTION in rig.posted[0]  # the full answer also in the chat
        [sent] = [f for f in rig.channel.to_bridge if f.type == "call.delegate"]
        assert sent.revision == 1 and "Caller: " + QUESTION in sent.transcript  # type: ignore[attr-defined]
        assert rig.delegations.first_progress_ms and rig.delegations.first_progress_ms[0] < 20_000
        # a lost result is sent again when the gateway re-sends the same delegation by id
        posts = len(model.posts())
        await rig.channel.delegator.on_frame(sent)  # type: ignore[union-attr]
        await asyncio.sleep(0.3)
        assert len(model.posts()) == posts, "the same delegation id runs once"
        assert live.commentary[delegation_id] == [said], "a repeated result is dropped"
    assert time.monotonic() - started < 45


async def test_a_delegation_that_takes_too_long_is_said_to_have_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: FakeCodexModel
) -> None:
    model.delay_s = 4.0
    async with _rig(tmp_path, monkeypatch, model, timeout_s=1.0) as rig:
        live = rig.fake.last()
        await _until(lambda: bool(live.commentary), timeout=15)
        [delegation_id] = live.delegations
        [said] = live.commentary[delegation_id]
        assert said.startswith("That did not work: Codex did not answer within 1 seconds")
        [done] = rig.log.of("delegation.finished")
        assert done["ok"] is False
        cancel = rig.channel.to_bridge[-1]
        assert (cancel.type, cancel.reason) == ("call.delegate.cancel", "timeout")  # type: ignore[attr-defined]
        # the delegation's own Codex turn is interrupted well before the model would answer
        await _until(lambda: rig.runner.running(rig.thread_id) is None, timeout=2.5)
        await asyncio.sleep(0.3)
        assert not rig.posted, "an interrupted turn posts nothing"
        assert live.commentary[delegation_id] == [said], "no late result"


async def test_a_timed_out_delegation_behind_a_chat_turn_leaves_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: FakeCodexModel
) -> None:
    model.delay_s = 3.0
    async with _rig(tmp_path, monkeypatch, model, timeout_s=0.8, chat_ahead="Refactor X") as rig:
        live = rig.fake.last()
        await _until(lambda: bool(live.commentary), timeout=15)
        assert rig.channel.to_bridge[-1].reason == "timeout"  # type: ignore[attr-defined]
        assert rig.ahead is not None
        chat = await asyncio.wait_for(rig.ahead, timeout=15)
        assert chat.status == "completed", "the chat turn ahead was not cut"
        await asyncio.sleep(1.0)
        assert len(model.posts()) == 1, "the delegation never ran"
        assert "Refactor X" in str(model.posts()[0]["input"])
        assert rig.runner.running(rig.thread_id) is None and not rig.posted


async def test_hanging_up_during_a_delegation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: FakeCodexModel
) -> None:
    model.delay_s = 2.0
    async with _rig(tmp_path, monkeypatch, model, timeout_s=30) as rig:
        live = rig.fake.last()
        await _until(lambda: bool(live.delegations) and bool(rig.delegations.pending))
        call = next(iter(rig.delegations.pending.values())).session
        call.ended.set()
        await rig.delegations.call_ended(call)
        await rig.session.close("user_hangup")
        assert live.close_reason == "close_requested"
        assert not rig.delegations.pending
        assert [f.type for f in rig.channel.to_bridge][-1] == "call.delegate.cancel"
        model.delay_s = 0
        await _until(lambda: bool(rig.posted), timeout=15)  # the answer went to the chat
        assert not live.commentary, "nothing was appended to the closed session"
        assert not rig.log.of("delegation.finished")
