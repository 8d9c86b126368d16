"""Questions asked of Codex during a call appear in the handoff, with answers and turn ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from handoff_helpers import make_config, seed_call

from bridgehost.handoff import build_artifact
from bridgehost.state.bridge_store import BridgeStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[BridgeStore]:
    opened = BridgeStore.open(tmp_path)
    yield opened
    opened.close()


def test_each_delegation_is_listed_with_its_answer_and_turn(
    store: BridgeStore, tmp_path: Path
) -> None:
    seed_call(store, "call-d", end=False)
    events = [
        {"type": "delegation.started", "delegation_id": "d1", "question": "Which tests fail?"},
        {"type": "delegation.progress", "delegation_id": "d1", "text": "Reading"},
        {
            "type": "delegation.finished",
            "delegation_id": "d1",
            "ok": True,
            "answer": "Two parser tests fail.",
            "turn_id": "turn-42",
        },
        {"type": "delegation.started", "delegation_id": "d2", "question": "And the linter?"},
        {"type": "delegation.finished", "delegation_id": "d2", "ok": False, "answer": "Timed out."},
        {"type": "delegation.started", "delegation_id": "d3", "question": "Deploy status?"},
        {"type": "call.ended", "reason": "user_hangup", "ended_by": "browser"},
    ]
    for offset, event in enumerate(events, start=100):
        store.record_event("call-d", {"seq": offset, "at": "2026-01-01T00:10:00Z", **event})
    artifact = build_artifact(store, "call-d", make_config(tmp_path))
    listed = [(d.question, d.answer, d.ok, d.turn_id) for d in artifact.delegations]
    assert listed == [
        ("Which tests fail?", "Two parser tests fail.", True, "turn-42"),
        ("And the linter?", "Timed out.", False, None),
        ("Deploy status?", "(no answer before the end)", False, None),
    ]
    markdown = artifact.to_markdown()
    assert "Asked Codex during the call (already answered in this thread" in markdown
    assert "- Q: Which tests fail?\n  A: Two parser tests fail. (Codex turn turn-42)" in markdown
    assert "A: Timed out. [did not complete]" in markdown
    assert artifact.to_json()["delegations"][0]["turn_id"] == "turn-42"
