"""Sliding-window rate limits with refundable reservations, in memory, bounded.

A :class:`SlidingWindowLimiter` admits at most ``limit`` reservations per key within any
``window`` (an entry counts while ``now - at < window``). :class:`MultiLimiter` takes one slot in
several limiters at once (per client address, per user, per launch token…) or none at all.

How the bootstrap uses them: reserve after init data verified (so the user key is known);
a **successful bootstrap keeps its slot**; a refusal the user did not cause — the bridge timed out
preparing, the bridge refused, the backend failed, the client went away — is **refunded by the
caller** with :meth:`MultiLimiter.refund`, which removes exactly that request's entries. Size the
limits so that legitimate use (several short calls in a row) fits: the one-call rule, not the
rate limit, is what stops parallel calls.

Memory is bounded: expired entries are pruned as keys are touched, keys whose entries all expired
are dropped, and at most ``max_keys`` keys are tracked (the least recently reserved is evicted,
which forgets its count — the price of a hard bound). All of this is synchronous: on one event
loop, a :meth:`MultiLimiter.reserve` is atomic.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

__all__ = [
    "AUTH_FAILURE_WINDOW_S",
    "AuthFailures",
    "MultiLimiter",
    "MultiReservation",
    "RateLimited",
    "Reservation",
    "SlidingWindowLimiter",
]

DEFAULT_MAX_KEYS = 10_000
_tokens = itertools.count(1)


@dataclass(frozen=True)
class Reservation:
    """One admitted request: ``key`` at clock time ``at``; ``token`` is unique per reservation."""

    key: str
    at: float
    token: int


@dataclass(frozen=True)
class RateLimited:
    """A refusal: the limiter named ``which`` is full; a slot frees in ``retry_after`` seconds."""

    which: str
    retry_after: float


@dataclass(frozen=True)
class MultiReservation:
    """One slot in each of several limiters: ``(limiter name, reservation)`` pairs."""

    parts: tuple[tuple[str, Reservation], ...]


class SlidingWindowLimiter:
    """At most ``limit`` reservations per key in any ``window`` (seconds or a ``timedelta``)."""

    def __init__(
        self,
        window: timedelta | float,
        limit: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        seconds = window.total_seconds() if isinstance(window, timedelta) else float(window)
        if seconds <= 0:
            raise ValueError("the rate-limit window must be positive")
        if limit < 1:
            raise ValueError("the rate limit must be at least 1")
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.window = seconds
        self.limit = limit
        self.max_keys = max_keys
        self._clock = clock
        # key -> entries (at, token) in clock order; keys ordered by their latest reservation.
        self._entries: OrderedDict[str, deque[tuple[float, int]]] = OrderedDict()

    def __len__(self) -> int:
        """The number of keys currently tracked."""
        return len(self._entries)

    def _live(self, key: str, now: float) -> deque[tuple[float, int]] | None:
        """The key's unexpired entries (pruned in place); drops the key if none are left."""
        entries = self._entries.get(key)
        if entries is None:
            return None
        while entries and now - entries[0][0] >= self.window:
            entries.popleft()
        if not entries:
            del self._entries[key]
            return None
        return entries

    def _prune_oldest(self, now: float) -> None:
        """Drop expired keys from the least-recently-reserved end, then enforce ``max_keys``."""
        while self._entries:
            oldest = next(iter(self._entries))
            if self._live(oldest, now) is not None:
                break
        while len(self._entries) >= self.max_keys:
            self._entries.popitem(last=False)

    def reserve(self, key: str) -> Reservation | None:
        """Take a slot for ``key`` and return it, or return None when the key is at its limit."""
        now = self._clock()
        entries = self._live(key, now)
        if entries is not None and len(entries) >= self.limit:
            return None
        if entries is None:
            self._prune_oldest(now)
            entries = self._entries[key] = deque()
        else:
            self._entries.move_to_end(key)
        reservation = Reservation(key=key, at=now, token=next(_tokens))
        entries.append((reservation.at, reservation.token))
        return reservation

    def refund(self, reservation: Reservation) -> None:
        """Give back exactly this reservation's slot (a no-op if it expired or was refunded)."""
        entries = self._entries.get(reservation.key)
        if entries is None:
            return
        try:
            entries.remove((reservation.at, reservation.token))
        except ValueError:
            return
        if not entries:
            del self._entries[reservation.key]

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` can reserve again (0.0 if it can now)."""
        now = self._clock()
        entries = self._live(key, now)
        if entries is None or len(entries) < self.limit:
            return 0.0
        freeing_at = entries[len(entries) - self.limit][0] + self.window
        return max(0.0, freeing_at - now)


class MultiLimiter:
    """Several named limiters reserved together: a slot in each, or in none."""

    def __init__(self, limiters: Mapping[str, SlidingWindowLimiter]) -> None:
        self.limiters = dict(limiters)

    def reserve(self, keys: Mapping[str, str | None]) -> MultiReservation | RateLimited:
        """Reserve ``keys[name]`` in each named limiter (None skips that limiter).

        If a limiter is full, the slots already taken are released and a :class:`RateLimited`
        naming the first full limiter is returned. Unknown names raise ``KeyError``.
        """
        for name in keys:
            if name not in self.limiters:
                raise KeyError(f"no rate limiter named {name!r}")
        taken: list[tuple[str, Reservation]] = []
        for name, key in keys.items():
            if key is None:
                continue
            limiter = self.limiters[name]
            reservation = limiter.reserve(key)
            if reservation is None:
                for taken_name, taken_reservation in taken:
                    self.limiters[taken_name].refund(taken_reservation)
                return RateLimited(which=name, retry_after=limiter.retry_after(key))
            taken.append((name, reservation))
        return MultiReservation(parts=tuple(taken))

    def refund(self, multi: MultiReservation) -> None:
        """Give back every slot of ``multi`` (idempotent)."""
        for name, reservation in multi.parts:
            self.limiters[name].refund(reservation)


AUTH_FAILURE_WINDOW_S = 30.0


class AuthFailures:
    """Counts failed authentications per key (call and address, sign-ins per address).

    A failure counts while it is at most ``window`` seconds old (:data:`AUTH_FAILURE_WINDOW_S`
    by default); at most 10 000 keys are kept (the oldest key is forgotten first).
    """

    def __init__(
        self,
        window: float = AUTH_FAILURE_WINDOW_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self._clock = clock
        self._seen: dict[str, deque[float]] = defaultdict(deque)

    def _live(self, key: str, now: float) -> deque[float]:
        entries = self._seen[key]
        while entries and now - entries[0] > self.window:
            entries.popleft()
        return entries

    def add(self, key: str) -> int:
        """Record one failure; return how many fall in the window."""
        now = self._clock()
        entries = self._live(key, now)
        entries.append(now)
        if len(self._seen) > 10_000:
            self._seen.pop(next(iter(self._seen)))
        return len(entries)

    def retry_after(self, key: str, allowed: int) -> float:
        """Seconds until one more failure for ``key`` would be at most the ``allowed``-th."""
        now = self._clock()
        entries = self._live(key, now) if key in self._seen else deque()
        if len(entries) < allowed:
            return 0.0
        return max(0.0, entries[len(entries) - allowed] + self.window - now)

    def clear(self, key: str) -> None:
        """Forget a key after a success."""
        self._seen.pop(key, None)
