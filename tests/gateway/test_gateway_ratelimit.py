"""Tests for bridgehost.gateway.ratelimit: sliding windows, refunds, multi-limiter, bounds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bridgehost.gateway.ratelimit import (
    MultiLimiter,
    MultiReservation,
    RateLimited,
    SlidingWindowLimiter,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_limit_within_window_then_slides(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(timedelta(seconds=10), 2, clock=clock)
    assert limiter.reserve("a") is not None
    clock.advance(4)
    assert limiter.reserve("a") is not None
    assert limiter.reserve("a") is None
    assert limiter.reserve("b") is not None  # keys are independent
    clock.advance(5.999)
    assert limiter.reserve("a") is None
    clock.advance(0.001)  # the first entry is exactly `window` old: no longer counts
    assert limiter.reserve("a") is not None
    assert limiter.reserve("a") is None


def test_retry_after_counts_down_to_the_slot_that_frees(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(10.0, 2, clock=clock)
    assert limiter.retry_after("a") == 0.0
    limiter.reserve("a")
    clock.advance(3)
    limiter.reserve("a")
    assert limiter.retry_after("a") == pytest.approx(7.0)
    clock.advance(2)
    assert limiter.retry_after("a") == pytest.approx(5.0)
    clock.advance(5)
    assert limiter.retry_after("a") == 0.0


def test_refund_removes_exactly_its_own_entry(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(10.0, 2, clock=clock)
    first = limiter.reserve("a")
    clock.advance(5)
    second = limiter.reserve("a")
    assert first is not None and second is not None
    limiter.refund(second)
    limiter.refund(second)  # idempotent: must not remove `first`
    assert limiter.reserve("a") is not None
    assert limiter.reserve("a") is None
    # `first` is still counted: it frees at t=10, and the retry time says so
    assert limiter.retry_after("a") == pytest.approx(5.0)
    clock.advance(5)
    assert limiter.reserve("a") is not None


def test_refund_of_an_expired_or_foreign_reservation_is_a_noop(clock: FakeClock) -> None:
    one = SlidingWindowLimiter(10.0, 1, clock=clock)
    other = SlidingWindowLimiter(10.0, 1, clock=clock)
    mine = one.reserve("a")
    theirs = other.reserve("a")
    assert mine is not None and theirs is not None
    one.refund(theirs)
    assert one.reserve("a") is None
    clock.advance(11)
    one.refund(mine)
    assert one.reserve("a") is not None


def test_multi_limiter_releases_the_others_when_one_is_full(clock: FakeClock) -> None:
    ip = SlidingWindowLimiter(60.0, 10, clock=clock)
    user = SlidingWindowLimiter(60.0, 1, clock=clock)
    token = SlidingWindowLimiter(60.0, 10, clock=clock)
    multi = MultiLimiter({"ip": ip, "user": user, "token": token})
    first = multi.reserve({"ip": "1.2.3.4", "user": "u1", "token": "t"})
    assert isinstance(first, MultiReservation)
    clock.advance(20)
    refused = multi.reserve({"ip": "1.2.3.4", "user": "u1", "token": "t"})
    assert refused == RateLimited(which="user", retry_after=pytest.approx(40.0))
    # the ip slot taken before "user" was found full was released again; "token" was never taken
    assert ip.retry_after("1.2.3.4") == 0.0
    for _ in range(9):
        assert ip.reserve("1.2.3.4") is not None
    assert ip.reserve("1.2.3.4") is None
    for _ in range(9):
        assert token.reserve("t") is not None
    assert token.reserve("t") is None


def test_multi_refund_and_skipped_keys(clock: FakeClock) -> None:
    a = SlidingWindowLimiter(60.0, 1, clock=clock)
    b = SlidingWindowLimiter(60.0, 1, clock=clock)
    multi = MultiLimiter({"a": a, "b": b})
    taken = multi.reserve({"a": "k", "b": None})
    assert isinstance(taken, MultiReservation)
    assert [name for name, _ in taken.parts] == ["a"]
    assert len(b) == 0
    assert isinstance(multi.reserve({"a": "k"}), RateLimited)
    multi.refund(taken)
    multi.refund(taken)
    assert isinstance(multi.reserve({"a": "k", "b": "k"}), MultiReservation)
    with pytest.raises(KeyError):
        multi.reserve({"nope": "k"})


def test_key_cap_evicts_the_least_recently_reserved(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(60.0, 1, clock=clock, max_keys=3)
    for key in ("k1", "k2", "k3"):
        assert limiter.reserve(key) is not None
        clock.advance(1)
    assert limiter.reserve("k4") is not None
    assert len(limiter) == 3
    assert limiter.reserve("k1") is not None  # forgotten: it was the oldest
    assert limiter.reserve("k3") is None  # still tracked
    assert limiter.reserve("k4") is None


def test_expired_keys_are_pruned(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(10.0, 5, clock=clock)
    for index in range(100):
        limiter.reserve(f"k{index}")
    assert len(limiter) == 100
    clock.advance(10)
    limiter.reserve("fresh")
    assert len(limiter) == 1


@pytest.mark.parametrize(("window", "limit", "max_keys"), [(0, 1, 1), (1, 0, 1), (1, 1, 0)])
def test_invalid_parameters(window: float, limit: int, max_keys: int) -> None:
    with pytest.raises(ValueError):
        SlidingWindowLimiter(window, limit, max_keys=max_keys)
