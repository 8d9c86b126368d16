"""Before, during and after a call in one chat: the real gateway (echo backend), the real bridge
with its real handoff pipeline (``codex`` sink in ``turn`` mode, ``telegram`` recap), the real
``codex app-server`` against the loopback model, and the Bot API stand-in."""

from __future__ import annotations

import asyncio
import json

import pytest
from tg_harness import (
    CHAT,
    bootstrap_from_button,
    bridge_config,
    browser,
    browser_event,
    stored,
    wait_text,
)

from bridgehost.handoff import Pipeline, marker_line
from bridgehost.plugins import PluginHost
from fakes.codex_model import CODEX_ENV, FakeCodexModel, codex_home_config, find_codex_binary

BINARY = find_codex_binary()
pytestmark = [
    pytest.mark.skipif(BINARY is None, reason="the codex CLI is not installed"),
    pytest.mark.timeout(90),
]
NOTE = "also check the nightly job"


@pytest.fixture
def model(monkeypatch):
    """The loopback model, and its key in the environment the app-server inherits."""
    for name, value in CODEX_ENV.items():
        monkeypatch.setenv(name, value)
    with FakeCodexModel() as fake:
        yield fake


async def _until(predicate, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_the_answer_to_the_handoff_follows_the_recap_and_the_thread_goes_on(
    tmp_path, tg, model, gateway_factory, bridge_factory
):
    gw = await gateway_factory(connect_bridge=False)
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(codex_home_config(model.port))
    raw = json.loads(json.dumps(gw.loaded.raw))
    raw["codex"] = {"binary": BINARY, "home": str(home)}
    raw["handoff"] = {
        "sinks": ["codex", "telegram"],
        "codex_mode": "turn",
        "retry_base_s": 0.2,
        "retry_max_s": 1,
    }
    raw["plugins"] = {"codex": {"turn_wait_s": 20}}
    loaded = bridge_config(tmp_path, tg, gateway_raw=raw)
    bridge = await bridge_factory(
        loaded,
        handoff=lambda store: Pipeline(
            loaded.config, loaded.secrets, store, plugins=PluginHost.for_config(loaded.config)
        ),
    )
    await bridge.wait_connected()

    tg.push_message(CHAT, "we are fixing the parser")
    await wait_text(tg, "FAKE-REPLY to: we are fixing the parser", timeout=20)
    thread = bridge.rt.store.binding().thread_id
    assert thread

    tg.push_message(CHAT, "/call")
    body = await bootstrap_from_button(gw, tg)
    call_id = body["call_id"]
    ws = await browser(gw, body)
    await browser_event(ws, {"type": "call.started"}, 1)
    await browser_event(ws, {"type": "user.transcript.final", "text": "ship the parser fix"}, 2)
    await stored(bridge.rt.store, call_id, "user.transcript.final")
    tg.push_message(CHAT, NOTE)  # typed during the call: to the gateway, into the call log
    await wait_text(tg, "Added to this call's notes")
    await stored(bridge.rt.store, call_id, "chat.note")
    tg.push_message(CHAT, "/hangup")

    recap = await tg.wait_for_message(lambda m: m["text"].startswith("📞 Call ended"), timeout=30)
    await _until(
        lambda: any(
            (m.get("reply_to_message") or {}).get("message_id") == recap["message_id"]
            for m in tg.sent_messages(CHAT)
        )
    )
    [reply] = [
        m
        for m in tg.sent_messages(CHAT)
        if (m.get("reply_to_message") or {}).get("message_id") == recap["message_id"]
    ]
    assert reply["text"].startswith("FAKE-REPLY to: " + marker_line(call_id))
    assert reply["parse_mode"] == "HTML" and reply["message_id"] > recap["message_id"]
    handoff = json.dumps(model.posts()[-1]["input"])
    assert marker_line(call_id) in handoff and NOTE in handoff, "the note reached the handoff"

    tg.push_message(CHAT, "what is next after the call?")
    await wait_text(tg, "FAKE-REPLY to: what is next after the call?", timeout=20)
    assert bridge.rt.store.binding().thread_id == thread, "the same thread goes on"
    follow_up = json.dumps(model.posts()[-1]["input"])
    assert marker_line(call_id) in follow_up, "the thread's history holds the handoff"
    await asyncio.sleep(1.5)
    replies = [m for m in tg.sent_messages(CHAT) if m["text"].startswith("FAKE-REPLY to: bridge")]
    assert len(replies) == 1, "the handoff answer is posted once"
    await ws.close()
