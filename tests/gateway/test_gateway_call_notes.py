"""``call.note`` on ``/ws/bridge``: a message typed in the chat during a call reaches the call's
log as a ``chat.note`` event (and so the bridge and the handoff), and the live session."""

from __future__ import annotations

import asyncio
import json

from bridgehost.handoff import build_artifact
from bridgehost.state.bridge_store import BridgeStore

NOTE = "Also look at the flaky login test"


async def _logged(gw, call_id: str) -> list[dict]:
    path = gw.gateway.paths.call_log(call_id)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_a_note_during_a_call_reaches_the_log_the_bridge_and_the_handoff(gw, tmp_path):
    call_id = (await gw.start_call())["call_id"]
    session = gw.gateway.calls.current
    told: list[str] = []

    class Backend:
        async def add_context(self, text: str) -> None:
            told.append(text)

        async def close(self, reason: str) -> None:
            pass

    real, session.backend = session.backend, Backend()
    assert gw.bridge._ws is not None
    await gw.bridge._ws.send_json({"type": "call.note", "call_id": call_id, "text": NOTE})
    forwarded = await gw.bridge.wait_for("chat.note")
    session.backend = real
    assert forwarded["text"] == NOTE and forwarded["seq"] >= 1
    assert told == [NOTE], "the live session got the note through add_context"
    assert [e["text"] for e in await _logged(gw, call_id) if e["type"] == "chat.note"] == [NOTE]

    store = BridgeStore.open(tmp_path / "bridge-side")
    try:
        for item in gw.bridge.events:
            store.record_event(call_id, item["event"])
        artifact = build_artifact(store, call_id, gw.loaded.config)
        assert [n.text for n in artifact.notes] == [NOTE]
        assert NOTE in artifact.to_markdown()
    finally:
        store.close()


async def test_a_note_for_a_call_that_is_not_live_is_dropped(gw):
    call_id = (await gw.start_call())["call_id"]
    assert gw.bridge._ws is not None
    await gw.bridge._ws.send_json({"type": "call.note", "call_id": "other-call", "text": NOTE})
    await gw.bridge._ws.send_json({"type": "call.note", "call_id": call_id, "text": "second"})
    second = await gw.bridge.wait_for("chat.note")
    assert second["text"] == "second", "the channel stays open; only the live call's note logs"
    await asyncio.sleep(0.1)
    assert [e["event"]["text"] for e in gw.bridge.events if e["event"]["type"] == "chat.note"] == [
        "second"
    ]
    assert gw.gateway.hub.connected("bridge")
