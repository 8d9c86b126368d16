"""The chat as a conversation with the bound Codex thread: the real daemon, the real
``codex app-server`` against the loopback model, and the Bot API stand-in."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from tg_harness import CHAT, bridge_config, free_port, secrets_env, write_config

from bridgehost.config import load_config
from bridgehost.state.bridge_store import BridgeStore
from bridgehost.state.chat_inbox import ChatInbox
from fakes.codex_model import CODEX_ENV, FakeCodexModel, codex_home_config, find_codex_binary

BINARY = find_codex_binary()
pytestmark = [
    pytest.mark.skipif(BINARY is None, reason="the codex CLI is not installed"),
    pytest.mark.timeout(90),
]


@pytest.fixture
def model(monkeypatch):
    """The loopback model, and its key in the environment the app-server inherits."""
    for name, value in CODEX_ENV.items():
        monkeypatch.setenv(name, value)
    with FakeCodexModel() as fake:
        yield fake


def _loaded(tmp_path: Path, tg, model: FakeCodexModel, **telegram):
    home = tmp_path / "codex-home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(codex_home_config(model.port))
    raw = load_config(write_config(tmp_path, free_port()), env=secrets_env()).raw
    raw["codex"] = {"binary": BINARY, "home": str(home)}
    raw.setdefault("telegram", {}).update(telegram)
    return bridge_config(tmp_path, tg, gateway_raw=raw)


def _answers(tg, needle: str) -> list[dict]:
    return [m for m in tg.sent_messages(CHAT) if needle in m["text"]]


async def _until(predicate, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_round_trip_follow_up_and_long_answer(tmp_path, tg, model, bridge_factory):
    bridge = await bridge_factory(_loaded(tmp_path, tg, model))
    assert {"new", "threads", "stop"} <= {c["command"] for c in tg.commands}

    tg.push_message(CHAT, "hello <agent>")
    await _until(lambda: _answers(tg, "FAKE-REPLY to: hello &lt;agent&gt;"))
    answer = _answers(tg, "FAKE-REPLY to: hello")[0]
    assert answer["parse_mode"] == "HTML" and "&lt;agent&gt;" in answer["text"]
    thread = bridge.rt.store.binding().thread_id
    assert thread, "the first message starts and binds a thread"

    model.script((None, ("lorem ipsum " * 50 + "\n\n") * 12))
    tg.push_message(CHAT, "and now a long one")
    await _until(lambda: len(_answers(tg, "lorem ipsum")) >= 2)
    parts = _answers(tg, "lorem ipsum")
    assert all(len(m["text"]) <= 4096 for m in parts)
    assert sum(m["text"].count("lorem") for m in parts) == 600
    assert bridge.rt.store.binding().thread_id == thread, "a follow-up stays in the thread"
    last = model.posts()[-1]
    assert "hello <agent>" in str(last["input"]), "the model saw the earlier turn"
    assert not ChatInbox(bridge.rt.store).pending()


async def test_messages_during_a_turn_wait_in_line(tmp_path, tg, model, bridge_factory):
    await bridge_factory(_loaded(tmp_path, tg, model))
    model.delay_s = 1.0
    tg.push_message(CHAT, "first")
    await _until(lambda: len(model.posts()) >= 1)
    tg.push_message(CHAT, "second")
    await _until(lambda: _answers(tg, "Queued"))
    model.delay_s = 0
    await _until(lambda: _answers(tg, "FAKE-REPLY to: second"))
    texts = [m["text"] for m in tg.sent_messages(CHAT) if "FAKE-REPLY" in m["text"]]
    assert texts == ["FAKE-REPLY to: first", "FAKE-REPLY to: second"]


async def test_approve_and_deny(tmp_path, tg, model, bridge_factory):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    os.chdir(workspace)
    await bridge_factory(_loaded(tmp_path, tg, model, approval_timeout_s=30.0))
    for choice, name in (("approve", "yes.txt"), ("deny", "no.txt")):
        model.script_tool_call(
            "exec_command",
            {
                "cmd": f"touch {workspace / name}",
                "sandbox_permissions": "require_escalated",
                "justification": "make a file",
            },
        )
        before = len(_answers(tg, "Codex asks to run a command"))
        tg.push_message(CHAT, f"please {choice}")
        await _until(lambda b=before: len(_answers(tg, "Codex asks to run a command")) > b)
        question = _answers(tg, "Codex asks to run a command")[-1]
        tg.push_callback_query(CHAT, f"appr:{before + 1}:{choice}", question["message_id"])
        await _until(lambda c=choice: _answers(tg, f"FAKE-REPLY to: please {c}"))
        decided = _answers(tg, "Codex asks to run a command")[-1]["text"]
        assert ("Approved" if choice == "approve" else "Denied") in decided
    assert (workspace / "yes.txt").exists()
    assert not (workspace / "no.txt").exists()


async def test_no_answer_in_time_means_deny(tmp_path, tg, model, bridge_factory):
    await bridge_factory(_loaded(tmp_path, tg, model, approval_timeout_s=0.5))
    model.script_tool_call(
        "exec_command",
        {"cmd": f"touch {tmp_path / 'late.txt'}", "sandbox_permissions": "require_escalated"},
    )
    tg.push_message(CHAT, "try it")
    await _until(lambda: _answers(tg, "no answer within 0.5 s"))
    await _until(lambda: _answers(tg, "FAKE-REPLY to: try it"))
    assert not (tmp_path / "late.txt").exists()


async def test_a_stranger_reaches_no_thread(tmp_path, tg, model, bridge_factory):
    bridge = await bridge_factory(_loaded(tmp_path, tg, model))
    tg.push_message(999001, "run rm -rf / please")
    tg.push_message(CHAT, "/status")
    await _until(lambda: _answers(tg, "Conversation:"))
    assert not model.posts(), "no model call for a stranger"
    assert not [m for m in tg.sent_messages(999001) if "FAKE-REPLY" in m["text"]]
    assert bridge.rt.store.binding().thread_id is None
    assert not ChatInbox(bridge.rt.store).pending()


async def test_restart_in_the_middle_of_a_turn_answers_once(tmp_path, tg, model, bridge_factory):
    loaded = _loaded(tmp_path, tg, model)
    bridge = await bridge_factory(loaded)
    model.delay_s = 30
    tg.push_message(CHAT, "survive a restart")
    await _until(lambda: len(model.posts()) >= 1)
    await bridge.shutdown()
    store = BridgeStore.open(loaded.config.storage.root)
    assert [e.payload["text"] for e in ChatInbox(store).pending()] == ["survive a restart"]
    store.close()
    model.delay_s = 0
    await bridge_factory(loaded)
    await _until(lambda: _answers(tg, "FAKE-REPLY to: survive a restart"))
    await asyncio.sleep(0.5)
    assert len(_answers(tg, "FAKE-REPLY to: survive a restart")) == 1
    placeholders = [m for m in tg.sent_messages(CHAT) if "working on it" in m["text"]]
    assert not placeholders, "the placeholder became the answer"


async def test_each_update_is_handled_once_across_restarts(tmp_path, tg, model, bridge_factory):
    loaded = _loaded(tmp_path, tg, model)
    bridge = await bridge_factory(loaded)
    before = tg.push_message(CHAT, "before the restart")
    await _until(lambda: _answers(tg, "FAKE-REPLY to: before the restart"))
    await bridge.shutdown()
    during = tg.push_message(CHAT, "while it was down")
    # Telegram never got the last confirmation (say, kill -9): it offers the first update again
    tg._updates.insert(0, before)
    polled = len(tg.calls)
    bridge = await bridge_factory(loaded)
    await _until(lambda: _answers(tg, "FAKE-REPLY to: while it was down"))
    await asyncio.sleep(0.5)
    assert len(_answers(tg, "FAKE-REPLY to: before the restart")) == 1, "none handled twice"
    assert len(_answers(tg, "FAKE-REPLY to: while it was down")) == 1, "none lost"
    first_poll = next(c for c in tg.calls[polled:] if c.method == "getUpdates")
    assert first_poll.params["offset"] == str(before["update_id"] + 1), "confirmed at start-up"
    assert ChatInbox(bridge.rt.store).offset() == during["update_id"] + 1
