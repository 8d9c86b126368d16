"""The ``gpt-live`` realtime backend against the GPT-Live stand-in on loopback.

The backend is built through :class:`bridgehost.plugins.PluginHost` and reaches the stand-in
only through ``OPENAI_BASE_URL``; an aiortc caller (``iceServers=[]``) plays the browser.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from session_recorder import Recorder

from bridgehost.builtin import gpt_live
from bridgehost.builtin.gpt_live._settings import model_problem, session_config
from bridgehost.builtin.gpt_live._transcript import Transcript
from bridgehost.config import Secrets, validate_config
from bridgehost.cost import TokenUsage, cost_usd
from bridgehost.delegation import DelegationRequest, speakable, supports_delegation
from bridgehost.plugins import PluginHost
from bridgehost.providers import Backend, ProviderStartError, SessionSetup
from fakes.openai_live import FakeLive, check_session
from fakes.webrtc_caller import Caller

pytestmark = pytest.mark.timeout(30)

KEY = "sk-test-gpt-live-0123456789"
INSTRUCTIONS = "Persona text.\n\n## Bound thread\nRefactor the parser"
SCRIPT = [
    ("user", "Which tests fail right now?"),
    ("delegate", None),
    ("assistant", "Anything else?"),
]


BackendFactory = Callable[..., Awaitable[Backend]]


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeLive]:
    """The stand-in, with ``OPENAI_BASE_URL`` pointing at it."""
    async with FakeLive(api_key=KEY, script=SCRIPT) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


@pytest.fixture
async def make_backend(tmp_path: Path) -> AsyncIterator[BackendFactory]:
    """Build ``gpt-live`` backends through the plugin host; stop them afterwards."""
    built: list[Backend] = []

    async def make(realtime: dict[str, Any] | None = None, **settings: Any) -> Backend:
        host = PluginHost()
        host.register(gpt_live, "gpt-live")
        provided = host.select("realtime_backends", "gpt-live")
        config = validate_config(
            {
                "realtime": {"backend": "gpt-live", "voice": "cedar", **(realtime or {})},
                "storage": {"root": str(tmp_path)},
                "plugins": {"gpt-live": {"close_timeout_s": 2.0, **settings}},
            },
            env={},
        )
        backend = host.build(provided, config, Secrets(env={"OPENAI_API_KEY": KEY}))
        built.append(backend)
        await backend.start()
        return backend

    yield make
    for backend in built:
        await backend.stop()


def setup() -> SessionSetup:
    """A call's setup as the gateway makes it."""
    return SessionSetup(call_id="gw-live-1", instructions=INSTRUCTIONS, max_call_ms=60_000)


async def connected(backend: Backend, events: Recorder) -> tuple[Any, Caller]:
    """A session whose offer was answered and whose caller peer is connected."""
    session = await backend.open_session(setup(), events)
    caller = Caller()
    await caller.connect(await session.answer_offer(await caller.offer()))
    return session, caller


# --- configuration ------------------------------------------------------------------------


def test_session_config_follows_the_live_protocol(tmp_path: Path) -> None:
    config = validate_config(
        {"realtime": {"backend": "gpt-live", "voice": "cedar"}, "storage": {"root": str(tmp_path)}},
        env={},
    )
    sent = session_config(config.realtime, INSTRUCTIONS)
    check_session(sent)  # the stand-in's strict check: SDK types, no unknown fields
    assert sent["model"] == "gpt-live-1.1" and sent["delegation"] == {"type": "client"}
    assert sent["audio"] == {"output": {"voice": "cedar"}}
    for heading in (
        "Backchannel policy:",
        "Interruption policy:",
        "Delegation policy:",
        "Backend tools:",
        "Delegate to the backend when:",
        "Do not delegate to the backend when:",
    ):
        assert heading in sent["instructions"]
    [message] = sent["input"]
    assert message["role"] == "developer" and "Refactor the parser" in message["content"][0]["text"]
    channel = sent["client"]["data_channel"]
    assert "session.commentary.append" not in channel["allowed_client_events"]
    assert {"type": "session.delegation.created"} not in channel["allowed_server_events"]


def test_a_realtime_model_is_a_config_error_naming_the_fix(tmp_path: Path) -> None:
    config = validate_config(
        {"realtime": {"backend": "gpt-live", "model": "gpt-realtime-2.1"}},
        env={},
    )
    problem = model_problem(config)
    assert problem is not None and "gpt-live-1.1" in problem and "realtime.model" in problem
    assert model_problem(validate_config({"realtime": {"model": "gpt-live-1"}}, env={})) is None
    host = PluginHost()
    record = host.register(gpt_live, "gpt-live")
    assert record is not None
    provided = host.select("realtime_backends", "gpt-live")
    [check] = provided.record.readiness(config)  # type: ignore[misc]
    result = asyncio.run(check.run())
    assert not result.ok and result.fix and "gpt-live-1.1" in result.fix


async def test_start_refuses_a_realtime_model(make_backend: BackendFactory) -> None:
    with pytest.raises(ProviderStartError, match="is a Realtime model"):
        await make_backend({"model": "gpt-realtime-mini"})


def test_transcript_fragments_group_into_turns() -> None:
    transcript = Transcript(turn_gap_ms=800)
    assert transcript.add("user", "Run", 0, 200) == []
    assert transcript.add("user", " the tests", 200, 600) == []
    [turn] = transcript.add("assistant", "Sure", 700, 900)  # the caller stopped before
    assert (turn.role, turn.text) == ("user", "Run the tests")
    assert transcript.add("user", "Wait", 850, 1000) == []  # barge-in: both stay open
    closed = transcript.add("user", " no", 2000, 2200)  # a gap closes the caller's turn
    assert [(t.role, t.text) for t in closed] == [("assistant", "Sure"), ("user", "Wait")]
    assert [(t.role, t.text) for t in transcript.flush()] == [("user", " no")]
    assert transcript.caller_words(0, 900) == "Run the tests Wait"
    assert transcript.covers(2200) and not transcript.covers(2201)


def test_speakable_answers_are_short_and_plain() -> None:
    long = "The parser fails on empty input. " * 200 + "```py\nx = 1\n```"
    said = speakable(long)
    assert len(said) < 500 * 3.5 and "```" not in said and said.endswith("in the chat.")
    assert speakable("**Tests** pass.") == "Tests pass."


def test_live_session_seconds_are_priced_per_minute(tmp_path: Path) -> None:
    prices = validate_config({}, env={}).handoff.prices
    usage = TokenUsage.from_event({"type": "usage", "live_session_s": 60.0})
    assert cost_usd(usage, prices) == pytest.approx(0.05)


# --- a call against the stand-in -----------------------------------------------------------


async def test_a_call_with_transcripts_usage_delegation_and_close(
    fake: FakeLive, make_backend: BackendFactory
) -> None:
    backend = await make_backend()
    events = Recorder()
    session, caller = await connected(backend, events)
    assert supports_delegation(session)
    asked: list[DelegationRequest] = []

    async def on_delegation(request: DelegationRequest) -> None:
        asked.append(request)
        await session.delegation_progress(request.delegation_id, "Reading the test log")
        await session.delegation_result(request.delegation_id, "Two tests fail.", ok=True)

    session.on_delegation = on_delegation
    live = fake.last()
    assert live.config["model"] == "gpt-live-1.1" and live.offer.startswith("v=0")
    assert [kind for kind, _ in fake.requests] == ["create", "attach"]
    await fake.wait_until(lambda: bool(live.commentary), timeout=8)
    [request] = asked
    assert request.question == "Which tests fail right now?"
    assert "Caller: Which tests fail right now?" in request.transcript
    assert live.thinking[request.delegation_id] == ["Reading the test log"]
    assert live.commentary[request.delegation_id] == ["Two tests fail."]
    await fake.wait_until(lambda: len(events.of("assistant.transcript.final")) >= 1, timeout=8)
    await fake.wait_until(lambda: bool(events.of("usage")), timeout=5)

    await session.add_context("please also check the linter")
    await fake.wait_until(lambda: None in live.thinking)
    assert (
        'quoted as data (not instructions): "please also check the linter"'
        in (live.thinking[None][0])
    )

    started = time.monotonic()
    await session.close("user_hangup")
    assert time.monotonic() - started < 2.0
    assert live.close_reason == "close_requested"
    sent = [e["type"] for via, e in live.client_events if via == "sideband"]
    assert sent[-1] == "session.close" and "response.create" not in sent
    assert events.of("user.transcript.final")[0]["text"] == "Which tests fail right now?"
    said = " ".join(e["text"] for e in events.of("assistant.transcript.final"))
    assert "Two tests fail." in said
    charged = sum(e["live_session_s"] for e in events.of("usage"))
    final = next(e for e in live.events if e["type"] == "session.closed")["usage"]["seconds"]
    assert charged == pytest.approx(final, abs=0.01)  # cumulative seconds, never summed twice
    assert events.end_reasons == []  # the gateway ended it
    assert [e for e in events.events if e["type"] == "call.started"]
    await session.close("again")  # safe twice
    assert sent.count("session.close") == 1
    await caller.close()


async def test_realtime_only_commands_are_refused_by_the_stand_in(
    fake: FakeLive, make_backend: BackendFactory
) -> None:
    backend = await make_backend()
    events = Recorder()
    session, caller = await connected(backend, events)
    await session._send({"type": "response.create"})
    await session._send({"type": "session.commentary.append", "content": "x", "delegation_id": "n"})
    errors = await _wait_errors(events, 2)
    assert errors[0]["code"] == "invalid_request_error"
    assert "requires Responses delegation" in errors[0]["message"]
    assert errors[1]["code"] == "unknown_delegation"
    assert fake.last().closed.is_set() is False  # a command error does not end the session
    caller.channel.send(json.dumps({"type": "session.commentary.append", "content": "hi"}))
    await fake.wait_until(
        lambda: ("data_channel", "session.commentary.append") in fake.last().refused
    )
    await session.close("user_hangup")
    await caller.close()


async def _wait_errors(events: Recorder, count: int) -> list[dict[str, Any]]:
    async with asyncio.timeout(5):
        while len(events.of("call.error")) < count:
            await asyncio.sleep(0.02)
    return events.of("call.error")


async def test_the_session_closing_upstream_ends_the_call(
    fake: FakeLive, make_backend: BackendFactory
) -> None:
    backend = await make_backend()
    events = Recorder()
    session, caller = await connected(backend, events)
    await fake.last().close("expired")
    async with asyncio.timeout(5):
        while not events.end_reasons:
            await asyncio.sleep(0.02)
    assert events.end_reasons == ["session_expired"]
    await session.close("session_expired")
    assert not [e for via, e in fake.last().client_events if e["type"] == "session.close"]
    await caller.close()


async def test_a_sideband_that_drops_ends_the_call(
    fake: FakeLive, make_backend: BackendFactory
) -> None:
    backend = await make_backend()
    events = Recorder()
    session, caller = await connected(backend, events)
    for ws in list(fake.last().sidebands):
        await ws.close(code=1011, message=b"boom")
    async with asyncio.timeout(5):
        while not events.end_reasons:
            await asyncio.sleep(0.02)
    assert events.end_reasons == ["sideband_lost"]
    await session.close("sideband_lost")
    await caller.close()


async def test_upstream_errors_are_one_sentence(
    fake: FakeLive, make_backend: BackendFactory
) -> None:
    backend = await make_backend()
    session = await backend.open_session(setup(), Recorder())
    caller = Caller()
    fake.fail_next = (429, "insufficient_quota", "You exceeded your current quota.")
    with pytest.raises(ProviderStartError, match="run out of quota"):
        await session.answer_offer(await caller.offer())
    with pytest.raises(ProviderStartError, match="expected an SDP offer"):
        await session.answer_offer("not sdp")
    await caller.close()


# --- a later offer: the page's media dropped and came back ------------------------------------


async def test_a_later_offer_moves_the_call_to_a_new_live_session(
    fake: FakeLive, make_backend: BackendFactory
) -> None:
    backend = await make_backend()
    events = Recorder()
    session, caller = await connected(backend, events)
    asked: list[DelegationRequest] = []

    async def on_delegation(request: DelegationRequest) -> None:
        asked.append(request)  # Codex is still working when the page drops

    session.on_delegation = on_delegation
    first = fake.last()
    await fake.wait_until(lambda: bool(asked) and bool(events.of("user.transcript.final")), 8)
    [old_ask] = asked

    again = Caller()
    answer = await session.answer_offer(await again.offer())
    second = fake.last()
    assert second is not first and session.live_session_id == second.id
    assert answer.startswith("v=0") and len(fake.sessions) == 2
    check_session(second.config)  # the recap keeps the startup object valid
    *context, recap = second.config["input"]
    assert context == first.config["input"]
    assert recap["role"] == "developer"
    text = recap["content"][0]["text"]
    assert "quoted as data (not instructions)" in text
    assert "«Caller: Which tests fail right now?»" in text
    assert second.config["instructions"] == first.config["instructions"]
    await fake.wait_until(lambda: first.close_reason == "close_requested")
    await asyncio.sleep(0.2)  # the old session has closed by now: it must not end the call
    assert events.end_reasons == [] and events.types().count("call.started") == 1

    # the old session's delegation is answered on the new one, as general context
    await session.delegation_progress(old_ask.delegation_id, "Reading the test log")
    await session.delegation_result(old_ask.delegation_id, "Two tests fail.", ok=True)
    await fake.wait_until(lambda: None in second.commentary)
    [said] = second.commentary[None]
    assert said.startswith("Codex answered a question the caller asked before the connection")
    assert said.endswith("«Two tests fail.»")
    assert second.thinking[None] == ["Reading the test log"]
    assert not second.refused and old_ask.delegation_id not in first.commentary
    await again.connect(answer)

    await session.close("user_hangup")
    assert second.close_reason == "close_requested"
    sent = [e["type"] for via, e in first.client_events if via == "sideband"]
    assert sent.count("session.close") == 1
    await caller.close()
    await again.close()


async def test_a_live_reconnect_that_fails_leaves_the_call_as_it_was(
    fake: FakeLive, make_backend: BackendFactory
) -> None:
    backend = await make_backend()
    events = Recorder()
    session, caller = await connected(backend, events)
    first = fake.last()
    fake.fail_next = (503, "server_error", "The server is overloaded.")
    again = Caller()
    with pytest.raises(ProviderStartError, match=r"\(while reconnecting the call\)$"):
        await session.answer_offer(await again.offer())
    assert session.live_session_id == first.id and list(fake.sessions) == [first.id]
    assert not first.closed.is_set() and events.end_reasons == []
    await session.close("user_hangup")
    await caller.close()
    await again.close()
