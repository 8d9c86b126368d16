"""Retention removes whole old call bundles, never the active call or undelivered handoffs."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from handoff_helpers import seed_call

from bridgehost.handoff import Outbox, apply_retention, deliveries
from bridgehost.handoff.retention import sweep_partial_writes
from bridgehost.state.bridge_store import BridgeStore

NOW = datetime(2026, 6, 1, tzinfo=UTC)
OLD = NOW - timedelta(days=30)


@pytest.fixture
def store(tmp_path: Path):
    opened = BridgeStore.open(tmp_path)
    yield opened
    opened.close()


def bundle(root: Path, call_id: str, *, age: datetime = OLD) -> Path:
    directory = root / "calls" / call_id
    directory.mkdir(parents=True)
    for name in ("events.jsonl", "transcript.md", "handoff.json", "handoff.md"):
        (directory / name).write_text(name)
        os.utime(directory / name, (age.timestamp(), age.timestamp()))
    os.utime(directory, (age.timestamp(), age.timestamp()))
    return directory


def delivered(store: BridgeStore, call_id: str) -> None:
    outbox = Outbox(store)
    outbox.enqueue(call_id, {"call_id": call_id}, ["file"], summarized=False)
    assert outbox.claim(call_id, "file") is not None
    outbox.mark_delivered(call_id, "file", "somewhere")


def test_old_bundles_go_whole_and_protected_ones_stay(store: BridgeStore, tmp_path: Path) -> None:
    for call_id in ("old-done", "old-pending", "old-failed", "old-no-artifact", "new-done"):
        seed_call(store, call_id, start=OLD if call_id.startswith("old") else NOW)
        bundle(tmp_path, call_id, age=OLD if call_id.startswith("old") else NOW)
    seed_call(store, "live", start=OLD, end=False)  # never ended: the active call
    bundle(tmp_path, "live")
    bundle(tmp_path, "gateway-only")  # a directory the bridge has no rows for
    bundle(tmp_path, "gateway-active")  # ... still being written by the gateway
    os.utime(tmp_path / "calls" / "gateway-active" / "events.jsonl")
    delivered(store, "old-done")
    delivered(store, "new-done")
    outbox = Outbox(store)
    outbox.enqueue("old-pending", {"call_id": "old-pending"}, ["codex"], summarized=False)
    outbox.enqueue("old-failed", {"call_id": "old-failed"}, ["codex"], summarized=False)
    outbox.claim("old-failed", "codex")
    outbox.mark_attempt_failed("old-failed", "codex", "down", None)

    removed = apply_retention(store, tmp_path, 14, active_call_id="live", now=NOW)

    assert sorted(removed) == ["gateway-only", "old-done"]
    left = sorted(p.name for p in (tmp_path / "calls").iterdir())
    assert left == [
        "gateway-active",
        "live",
        "new-done",
        "old-failed",
        "old-no-artifact",
        "old-pending",
    ]
    assert store.call("old-done") is None and store.call_events("old-done") == []
    assert deliveries(store, "old-done") == [] and not outbox.has_artifact("old-done")
    for kept in ("old-pending", "old-failed", "old-no-artifact", "live", "new-done"):
        assert store.call(kept) is not None, kept
    assert sorted(p.name for p in (tmp_path / "calls" / "old-failed").iterdir()) == [
        "events.jsonl",
        "handoff.json",
        "handoff.md",
        "transcript.md",
    ]


def test_zero_keeps_everything_and_trash_is_emptied(store: BridgeStore, tmp_path: Path) -> None:
    seed_call(store, "old", start=OLD)
    bundle(tmp_path, "old")
    delivered(store, "old")
    (tmp_path / "calls" / ".trash-crashed").mkdir()  # a removal a crash interrupted
    (tmp_path / "calls" / ".trash-crashed" / "handoff.md").write_text("x")
    assert apply_retention(store, tmp_path, 0, now=NOW) == []
    assert sorted(p.name for p in (tmp_path / "calls").iterdir()) == ["old"]
    assert apply_retention(store, tmp_path, 14, now=NOW) == ["old"]
    assert list((tmp_path / "calls").iterdir()) == []


def test_half_written_files_from_a_crash_are_swept(tmp_path: Path) -> None:
    directory = bundle(tmp_path, "c1")
    for leftover in (".handoff.md.k2j3", ".handoff.json.x9", ".transcript.md.q"):
        (directory / leftover).write_text("partial")
    (directory / ".keep-me").write_text("not ours")
    assert sweep_partial_writes(tmp_path) == 3
    assert sorted(p.name for p in directory.iterdir()) == [
        ".keep-me",
        "events.jsonl",
        "handoff.json",
        "handoff.md",
        "transcript.md",
    ]
    assert sweep_partial_writes(tmp_path / "nowhere") == 0
