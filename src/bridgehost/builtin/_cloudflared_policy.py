"""When the managed tunnel may start again: cooldowns after failures, a bounded restart budget.

Both take a monotonic ``clock`` so tests can move time without sleeping.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

Clock = Callable[[], float]
"""A monotonic clock in seconds (``time.monotonic``)."""


@dataclass(frozen=True, slots=True)
class Cooldown:
    """A pause before the next start: until when (on the monotonic clock) and why."""

    until: float
    reason: str
    detail: str
    rate_limited: bool


class CooldownTracker:
    """Records the last start failure and refuses new starts until its cooldown has passed.

    :param clock: monotonic time source.
    :param normal_s: pause after an ordinary failure (the child died, no URL, no connection).
    :param rate_limit_s: pause after Cloudflare rate-limited quick-tunnel creation (longer:
        retrying early only extends the limit).
    """

    def __init__(self, clock: Clock, *, normal_s: float, rate_limit_s: float) -> None:
        self._clock = clock
        self.normal_s = normal_s
        self.rate_limit_s = rate_limit_s
        self._current: Cooldown | None = None

    def begin(self, reason: str, detail: str, *, rate_limited: bool) -> Cooldown:
        """Start a cooldown for a failure; returns it."""
        length = self.rate_limit_s if rate_limited else self.normal_s
        self._current = Cooldown(self._clock() + length, reason, detail, rate_limited)
        return self._current

    def active(self) -> Cooldown | None:
        """The cooldown still in force, if any (an expired one is forgotten)."""
        if self._current is not None and self._clock() >= self._current.until:
            self._current = None
        return self._current

    def clear(self) -> None:
        """Forget the cooldown (after a successful start)."""
        self._current = None

    def remaining_s(self, cooldown: Cooldown) -> float:
        """Seconds left of ``cooldown`` (0 once over)."""
        return max(cooldown.until - self._clock(), 0.0)

    def message(self, cooldown: Cooldown) -> str:
        """A sentence saying why starts are refused and when to retry."""
        left = self.remaining_s(cooldown)
        retry_at = (datetime.now(UTC) + timedelta(seconds=left)).strftime("%H:%M:%S UTC")
        text = (
            f"the managed quick tunnel is cooling down after {cooldown.reason}; "
            f"retry after {retry_at} (in {left:.0f} s)"
        )
        return f"{text}. Last error: {cooldown.detail}" if cooldown.detail else text


class RestartBudget:
    """Allows at most ``limit`` automatic restarts within any ``window_s`` seconds."""

    def __init__(self, clock: Clock, *, limit: int, window_s: float) -> None:
        self._clock = clock
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque()

    def _forget_old(self) -> None:
        now = self._clock()
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()

    @property
    def used(self) -> int:
        """Restarts within the current window."""
        self._forget_old()
        return len(self._times)

    def take(self) -> bool:
        """Use one restart if the budget allows it; False when exhausted."""
        self._forget_old()
        if len(self._times) >= self.limit:
            return False
        self._times.append(self._clock())
        return True

    def describe(self) -> str:
        """``3 restarts in 10 min`` — the budget in words."""
        minutes = self.window_s / 60
        window = f"{minutes:g} min" if minutes >= 1 else f"{self.window_s:g} s"
        return f"{self.limit} restart{'s' if self.limit != 1 else ''} in {window}"
