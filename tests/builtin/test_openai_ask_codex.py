"""The ``openai`` Realtime backend's ask-Codex function tool, against the fake OpenAI.

A function call the voice model makes (``response.function_call_arguments.done``, injected
into the fake call as OpenAI would send it) becomes a delegation request; the answer goes back
as a ``function_call_output`` with the same ``call_id``, then ``response.create``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bridgehost.builtin import openai as openai_realtime
from bridgehost.builtin.openai._ask_codex import (
    ASK_CODEX,
    ASK_CODEX_TOOL,
    BARGED_IN,
    delegation_from,
)
from bridgehost.config import Secrets, validate_config
from bridgehost.delegation import CancellingSession, DelegationRequest, supports_delegation
from bridgehost.plugins import PluginHost
from bridgehost.providers import SessionSetup
from fakes.openai_api import FakeOpenAI
from fakes.webrtc_caller import Caller

pytestmark = pytest.mark.timeout(30)

KEY = "sk-test-openai-ask-codex-0123456789"


class Events:
    """A ``SessionEvents`` that keeps nothing."""

    async def event(self, event: Mapping[str, Any]) -> None:
        """Ignored."""

    async def audio(self, chunk: bytes) -> None:
        """Never called for WebRTC."""

    async def ended(self, reason: str) -> None:
        """Ignored."""


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeOpenAI]:
    """The fake OpenAI, with ``OPENAI_BASE_URL`` pointing at it."""
    async with FakeOpenAI(api_key=KEY) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


def test_the_tool_says_it_asks_codex_and_parses_its_arguments() -> None:
    assert "Codex" in ASK_CODEX_TOOL["description"] and ASK_CODEX_TOOL["name"] == ASK_CODEX
    event = {
        "type": "response.function_call_arguments.done",
        "name": ASK_CODEX,
        "call_id": "call_1",
        "arguments": json.dumps({"question": "  Why   does it fail? "}),
    }
    assert delegation_from(event) == DelegationRequest("call_1", "Why does it fail?")
    assert delegation_from({**event, "name": "other_tool"}) is None
    assert delegation_from({**event, "arguments": "not json"}) == DelegationRequest(
        "call_1", "(no question given)"
    )


async def started_backend(tmp_path: Path) -> Any:
    """The ``openai`` backend built by the plugin host against the fake, started."""
    host = PluginHost()
    host.register(openai_realtime, "openai")
    config = validate_config(
        {"storage": {"root": str(tmp_path)}, "plugins": {"openai": {"max_retries": 0}}}, env={}
    )
    backend = host.build(
        host.select("realtime_backends", "openai"), config, Secrets(env={"OPENAI_API_KEY": KEY})
    )
    await backend.start()
    return backend


async def recording_session(backend: Any, call_id: str) -> tuple[Any, list[str], list[str]]:
    """A session whose ask-Codex calls and cancels are recorded (by delegation id), unanswered."""
    session = await backend.open_session(
        SessionSetup(call_id=call_id, instructions="Persona", max_call_ms=60_000), Events()
    )
    assert isinstance(session, CancellingSession)
    asked: list[str] = []
    cancelled: list[str] = []

    async def on_delegation(request: DelegationRequest) -> None:
        asked.append(request.delegation_id)

    async def on_cancel(delegation_id: str) -> None:
        cancelled.append(delegation_id)

    session.on_delegation = on_delegation
    session.on_delegation_cancel = on_cancel
    return session, asked, cancelled


async def test_a_function_call_is_delegated_and_answered_with_the_same_call_id(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    backend = await started_backend(tmp_path)
    session = await backend.open_session(
        SessionSetup(call_id="gw-1", instructions="Persona", max_call_ms=60_000), Events()
    )
    assert supports_delegation(session)
    asked: list[DelegationRequest] = []

    async def on_delegation(request: DelegationRequest) -> None:
        asked.append(request)
        await session.delegation_result(request.delegation_id, "Two tests fail.", ok=True)

    session.on_delegation = on_delegation
    caller = Caller()
    try:
        await caller.connect(await session.answer_offer(await caller.offer()))
        call = fake.calls[session.openai_call_id]
        assert (
            call.session["tools"] == [ASK_CODEX_TOOL]
            and "ask_codex" in (call.session["instructions"])
        )
        await call.emit(
            {
                "type": "response.function_call_arguments.done",
                "response_id": "resp_1",
                "item_id": "item_1",
                "output_index": 0,
                "call_id": "call_abc",
                "name": ASK_CODEX,
                "arguments": json.dumps({"question": "Which tests fail?"}),
            }
        )
        await fake.wait_until(
            lambda: any(e.get("type") == "response.create" for e in call.client_events[1:])
        )
        assert asked == [DelegationRequest("call_abc", "Which tests fail?")]
        kinds = [e.get("type") for e in call.client_events]
        created = [e for e in call.client_events if e.get("type") == "conversation.item.create"]
        [output] = [e["item"] for e in created if e["item"]["type"] == "function_call_output"]
        assert output["call_id"] == "call_abc"
        assert json.loads(output["output"]) == {"ok": True, "answer": "Two tests fail."}
        assert kinds.index("response.create") > kinds.index("conversation.item.create")
        await asyncio.sleep(0.1)
        assert not [e for e in call.events if e.get("type") == "error"]
    finally:
        await session.close("user_hangup")
        await caller.close()
        await backend.stop()


async def test_the_caller_speaking_again_cancels_an_open_ask_codex_call(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    backend = await started_backend(tmp_path)
    session, asked, cancelled = await recording_session(backend, "gw-2")
    caller = Caller()
    try:
        await caller.connect(await session.answer_offer(await caller.offer()))
        call = fake.calls[session.openai_call_id]
        await call.emit({"type": "input_audio_buffer.speech_started", "audio_start_ms": 5})
        assert cancelled == [], "speech with no open ask-Codex call cancels nothing"
        await call.emit(
            {
                "type": "response.function_call_arguments.done",
                "call_id": "call_slow",
                "name": ASK_CODEX,
                "arguments": json.dumps({"question": "Run every test"}),
            }
        )
        await fake.wait_until(lambda: asked == ["call_slow"])
        await call.emit({"type": "input_audio_buffer.speech_started", "audio_start_ms": 900})
        await fake.wait_until(lambda: cancelled == ["call_slow"])
        created = [e for e in call.client_events if e.get("type") == "conversation.item.create"]
        [output] = [e["item"] for e in created if e["item"]["type"] == "function_call_output"]
        assert output["call_id"] == "call_slow"
        assert json.loads(output["output"]) == {"ok": False, "error": BARGED_IN}
        assert not [e for e in call.client_events if e.get("type") == "response.create"]
        # a late answer for the cancelled call is not sent
        await session.delegation_result("call_slow", "All green.", ok=True)
        await asyncio.sleep(0.1)
        outputs = [e for e in call.client_events if e.get("type") == "conversation.item.create"]
        assert len(outputs) == len(created)
    finally:
        await session.close("user_hangup")
        await caller.close()
        await backend.stop()


async def test_an_ask_open_when_the_call_moved_is_answered_on_the_new_upstream_call(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    """The page reconnected (a new upstream call) while Codex worked: the new call never saw
    the function call, so the answer goes in as a quoted message, then ``response.create``."""
    backend = await started_backend(tmp_path)
    session, asked, cancelled = await recording_session(backend, "gw-3")
    caller, again = Caller(), Caller()
    try:
        await caller.connect(await session.answer_offer(await caller.offer()))
        first = fake.calls[session.openai_call_id]
        await first.emit(
            {
                "type": "response.function_call_arguments.done",
                "call_id": "call_old",
                "name": ASK_CODEX,
                "arguments": json.dumps({"question": "Which tests fail?"}),
            }
        )
        await fake.wait_until(lambda: asked == ["call_old"])
        await again.connect(await session.answer_offer(await again.offer()))
        second = fake.calls[session.openai_call_id]
        assert second is not first
        await second.emit({"type": "input_audio_buffer.speech_started", "audio_start_ms": 5})
        await asyncio.sleep(0.1)
        assert cancelled == [], "the caller may not know of an ask made before the drop"

        await session.delegation_result("call_old", "Two «tests» fail.", ok=True)
        await fake.wait_until(
            lambda: any(e.get("type") == "response.create" for e in second.client_events)
        )
        created = [e for e in second.client_events if e.get("type") == "conversation.item.create"]
        assert all(e["item"]["type"] == "message" for e in created)
        relayed = created[-1]["item"]["content"][0]["text"]
        assert relayed.startswith("Codex answered a question the caller asked before")
        assert relayed.endswith("«Two ‹tests› fail.»")
        kinds = [e.get("type") for e in second.client_events]
        assert kinds.index("response.create") > kinds.index("conversation.item.create")
        assert not [e for e in first.client_events if e["type"] == "conversation.item.create"]
        await session.delegation_result("call_old", "Again.", ok=True)  # answered once only
        await asyncio.sleep(0.1)
        assert len([e for e in second.client_events if e["type"] == "response.create"]) == 1
    finally:
        await session.close("user_hangup")
        await caller.close()
        await again.close()
        await backend.stop()
