"""The outbox and its worker: backoff with a cap, independent sinks, never twice."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest
from handoff_helpers import RecordingSink, make_config, no_secrets, seed_call

from bridgehost.handoff import Outbox, Pipeline, RetryPolicy, Summarizer, deliveries
from bridgehost.state.bridge_store import BridgeStore

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[BridgeStore]:
    opened = BridgeStore.open(tmp_path)
    yield opened
    opened.close()


def pipeline(store: BridgeStore, root: Path, sinks: dict[str, RecordingSink], **kwargs) -> Pipeline:
    config = make_config(root, sinks=list(sinks))
    return Pipeline(
        config,
        no_secrets(),
        store,
        sinks=sinks,
        summarizer=Summarizer(model="m", api_key=None),
        **kwargs,
    )


async def wait_for(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def by_sink(store: BridgeStore, call_id: str) -> dict[str, dict]:
    return {row["sink"]: row for row in deliveries(store, call_id)}


def test_retry_policy_doubles_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=8, base_s=2.0, max_s=30.0)
    assert [policy.delay(n, rng=lambda: 0.5) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]
    assert policy.delay(1, rng=lambda: 0.0) == pytest.approx(1.6)
    assert policy.delay(1, rng=lambda: 1.0) == pytest.approx(2.4)
    assert policy.delay(10, rng=lambda: 1.0) == 30.0


async def test_failing_sink_retries_with_backoff_and_cap_while_another_is_delivered(
    store: BridgeStore, tmp_path: Path
) -> None:
    seed_call(store, "c1")
    good, bad = RecordingSink("good"), RecordingSink("bad", fail_forever=True)
    pipe = pipeline(store, tmp_path, {"bad": bad, "good": good})
    await pipe.start()
    try:
        await pipe.call_ended("c1")
        await wait_for(lambda: by_sink(store, "c1")["bad"]["status"] == "failed")
        rows = by_sink(store, "c1")
    finally:
        await pipe.stop()
    assert good.delivered == ["c1"] and len(good.attempts) == 1
    assert rows["good"]["status"] == "delivered" and rows["good"]["receipt"] == "good:c1"
    assert rows["good"]["delivered_at"] and rows["good"]["last_error"] is None
    # the good sink did not wait for the bad one's retries
    assert good.attempts[0][1] <= bad.attempts[1][1]
    assert rows["bad"]["attempts"] == 4 == len(bad.attempts)
    assert rows["bad"]["last_error"] == "RuntimeError: bad is down"
    assert rows["bad"]["next_attempt_at"] is None
    gaps = [b[1] - a[1] for a, b in zip(bad.attempts, bad.attempts[1:], strict=False)]
    # base 0.05 s doubling, capped at 0.2 s, jitter ±20 %
    for gap, expected in zip(gaps, [0.05, 0.1, 0.2], strict=True):
        assert expected * 0.8 - 0.01 <= gap <= expected * 1.2 + 0.15, gaps
    assert good.started == 1 and good.stopped == 1


async def test_transient_failure_then_delivered(store: BridgeStore, tmp_path: Path) -> None:
    seed_call(store, "c2")
    flaky = RecordingSink("flaky", fail_times=2)
    pipe = pipeline(store, tmp_path, {"flaky": flaky})
    await pipe.start()
    try:
        await pipe.call_ended("c2")
        await wait_for(lambda: by_sink(store, "c2")["flaky"]["status"] == "delivered")
    finally:
        await pipe.stop()
    row = by_sink(store, "c2")["flaky"]
    assert row["attempts"] == 3 and row["receipt"] == "flaky:c2" and row["last_error"] is None


async def test_hanging_sink_is_bounded_and_blocks_nobody(
    store: BridgeStore, tmp_path: Path
) -> None:
    seed_call(store, "c3")
    good, stuck = RecordingSink("good"), RecordingSink("stuck", hang=True)
    pipe = pipeline(store, tmp_path, {"stuck": stuck, "good": good}, attempt_timeout_s=0.3)
    await pipe.start()
    try:
        await pipe.call_ended("c3")
        await wait_for(lambda: good.delivered == ["c3"], timeout=2)
        await wait_for(lambda: by_sink(store, "c3")["stuck"]["status"] == "failed")
    finally:
        await pipe.stop()
    row = by_sink(store, "c3")["stuck"]
    assert row["attempts"] == 4 and "did not finish within 0.3 s" in row["last_error"]


async def test_delivered_rows_are_never_delivered_again(store: BridgeStore, tmp_path: Path) -> None:
    seed_call(store, "c4")
    sink = RecordingSink("once")
    pipe = pipeline(store, tmp_path, {"once": sink})
    await pipe.start()
    try:
        first = await pipe.finalize("c4")
        assert await pipe.wait_idle(5)
        again = await pipe.finalize("c4")  # the daemon offering the call again
        await pipe.call_ended("c4")
        assert await pipe.wait_idle(5)
    finally:
        await pipe.stop()
    assert first is not None and again is not None and again.call_id == "c4"
    assert again.to_markdown() == first.to_markdown()
    outbox = Outbox(store)
    assert outbox.claim("c4", "once") is None
    assert outbox.recover_interrupted() == 0
    # a new process on the same database
    restarted = pipeline(store, tmp_path, {"once": sink})
    await restarted.start()
    try:
        assert await restarted.recover() == []
        assert await restarted.wait_idle(5)
    finally:
        await restarted.stop()
    assert len(sink.attempts) == 1
    assert by_sink(store, "c4")["once"]["status"] == "delivered"


async def test_interrupted_delivery_goes_back_to_pending_with_its_receipt(
    store: BridgeStore, tmp_path: Path
) -> None:
    seed_call(store, "c5")
    outbox = Outbox(store)
    outbox.enqueue("c5", {"call_id": "c5"}, ["a", "b"], summarized=False)
    context = outbox.claim("c5", "a")
    assert context is not None and context.attempt == 1 and context.receipt is None
    context.save_receipt("early-receipt")
    assert outbox.claim("c5", "a") is None  # already delivering
    assert by_sink(store, "c5")["a"]["status"] == "delivering"
    assert outbox.recover_interrupted() == 1  # what start-up does after a crash
    row = by_sink(store, "c5")["a"]
    assert (row["status"], row["attempts"], row["receipt"]) == ("pending", 1, "early-receipt")
    again = outbox.claim("c5", "a")
    assert again is not None and again.attempt == 2 and again.receipt == "early-receipt"
    assert [d["sink"] for d in again.other_deliveries()] == ["b"]


async def test_enqueue_is_one_transaction_and_idempotent(store: BridgeStore) -> None:
    seed_call(store, "c6")
    outbox = Outbox(store)
    assert outbox.enqueue("c6", {"call_id": "c6", "v": 1}, ["a"], summarized=True)
    assert not outbox.enqueue("c6", {"call_id": "c6", "v": 2}, ["a", "b"], summarized=True)
    assert outbox.payload("c6") == {"call_id": "c6", "v": 1}
    assert [d["sink"] for d in outbox.deliveries("c6")] == ["a", "b"]
    with closing(sqlite3.connect(store.db.path)) as conn:
        conn.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON handoff_outbox "
            "WHEN NEW.sink = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
        conn.commit()
    seed_call(store, "c7")
    with pytest.raises(sqlite3.IntegrityError):
        outbox.enqueue("c7", {"call_id": "c7"}, ["a", "boom"], summarized=False)
    assert not outbox.has_artifact("c7") and outbox.deliveries("c7") == []
    assert outbox.calls_needing_artifact() == ["c7"]


async def test_failed_rows_can_be_retried_by_an_operator(store: BridgeStore) -> None:
    seed_call(store, "c8")
    outbox = Outbox(store)
    outbox.enqueue("c8", {"call_id": "c8"}, ["a"], summarized=False)
    assert outbox.claim("c8", "a") is not None
    outbox.mark_attempt_failed("c8", "a", "down", None)
    assert by_sink(store, "c8")["a"]["status"] == "failed"
    assert outbox.undelivered_calls() == {"c8"}
    assert outbox.retry_failed("c8") == 1
    row = by_sink(store, "c8")["a"]
    assert (row["status"], row["attempts"]) == ("pending", 0)
