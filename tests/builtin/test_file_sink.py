"""The ``file`` sink reports the bundle the pipeline wrote; it writes only what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridgehost.handoff import Pipeline, deliveries
from bridgehost.state.bridge_store import BridgeStore
from handoff.handoff_helpers import make_config, no_secrets, plugin_host, seed_call

pytestmark = pytest.mark.timeout(30)


async def _handed_off(tmp_path: Path, call_id: str) -> tuple[Pipeline, BridgeStore]:
    store = BridgeStore.open(tmp_path)
    seed_call(store, call_id)
    pipe = Pipeline(
        make_config(tmp_path, sinks=["file"]), no_secrets(), store, plugins=plugin_host()
    )
    await pipe.start()
    await pipe.call_ended(call_id)
    assert await pipe.wait_idle(10)
    return pipe, store


async def test_the_sink_reports_the_pipelines_bundle_without_rewriting_it(
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "calls" / "call-f"
    pipe, store = await _handed_off(tmp_path, "call-f")
    try:
        written = {
            name: (bundle / name).stat().st_mtime_ns for name in ("handoff.json", "handoff.md")
        }
        payload = json.loads((bundle / "handoff.json").read_text())
        sink = pipe.worker.sinks["file"]
        assert await sink.deliver(payload) == str(bundle / "handoff.md")
        assert {n: (bundle / n).stat().st_mtime_ns for n in written} == written
        (row,) = deliveries(store, "call-f")
        assert row["status"] == "delivered" and row["receipt"] == str(bundle / "handoff.md")
    finally:
        await pipe.stop()
        store.close()


async def test_the_sink_writes_the_handoff_files_only_when_they_are_missing(
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "calls" / "call-m"
    pipe, store = await _handed_off(tmp_path, "call-m")
    try:
        payload = json.loads((bundle / "handoff.json").read_text())
        transcript = (bundle / "transcript.md").read_text()
        (bundle / "handoff.md").unlink()
        sink = pipe.worker.sinks["file"]
        assert await sink.deliver(payload) == str(bundle / "handoff.md")
        assert (bundle / "handoff.md").read_text() == payload["markdown"]
        assert json.loads((bundle / "handoff.json").read_text()) == payload
        assert (bundle / "transcript.md").read_text() == transcript
        with pytest.raises(ValueError, match="no valid call_id"):
            await sink.deliver({**payload, "call_id": "../escape"})
        with pytest.raises(ValueError, match="has no 'markdown'"):
            await sink.deliver({k: v for k, v in payload.items() if k != "markdown"})
    finally:
        await pipe.stop()
        store.close()
