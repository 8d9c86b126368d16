"""When the managed tunnel may start again: cooldowns after failures, a bounded restart budget.

Both take a monotonic ``clock`` so tests can move time without sleeping. A cooldown is also
written to a small JSON file in the state directory (:class:`CooldownFile`), so a gateway that
restarts during a cooldown keeps refusing to start a tunnel until it is over: retrying early
after a Cloudflare rate limit only extends the limit.
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from bridgehost.basics import utc_now

Clock = Callable[[], float]
"""A monotonic clock in seconds (``time.monotonic``)."""
WallClock = Callable[[], datetime]
"""The current time, timezone-aware (:func:`bridgehost.basics.utc_now`)."""

COOLDOWN_FILENAME = "tunnel-cooldown.json"
"""The file under ``storage.root`` that keeps a running cooldown across gateway restarts."""

log = structlog.get_logger("bridgehost.builtin.cloudflared")


@dataclass(frozen=True, slots=True)
class Cooldown:
    """A pause before the next start: until when (on the monotonic clock) and why."""

    until: float
    reason: str
    detail: str
    rate_limited: bool


class CooldownFile:
    """Where a cooldown outlives the process: ``{"until", "reason", "detail", "rate_limited"}``.

    Reading never fails (a missing, unreadable or malformed file means no cooldown); writing
    is atomic (a temporary file renamed over the old one) and a failure is logged, not raised.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> tuple[datetime, str, str, bool] | None:
        """``(until, reason, detail, rate_limited)`` as last saved, or None."""
        try:
            data: Any = json.loads(self.path.read_text(encoding="utf-8"))
            until = datetime.fromisoformat(str(data["until"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if until.tzinfo is None:
            return None
        return (
            until,
            str(data.get("reason") or ""),
            str(data.get("detail") or ""),
            bool(data.get("rate_limited")),
        )

    def save(self, until: datetime, reason: str, detail: str, rate_limited: bool) -> None:
        """Write the cooldown; ``until`` is wall-clock time (UTC)."""
        payload = {
            "until": until.astimezone(UTC).isoformat(timespec="seconds"),
            "reason": reason,
            "detail": detail[:2000],
            "rate_limited": rate_limited,
        }
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(payload) + "\n", encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning("tunnel.cooldown_not_saved", path=str(self.path), error=str(exc))

    def remove(self) -> None:
        """Forget the saved cooldown."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("tunnel.cooldown_not_removed", path=str(self.path), error=str(exc))


class CooldownTracker:
    """Records the last start failure and refuses new starts until its cooldown has passed.

    :param clock: monotonic time source.
    :param normal_s: pause after an ordinary failure (the child died, no URL, no connection).
    :param rate_limit_s: pause after Cloudflare rate-limited quick-tunnel creation (longer:
        retrying early only extends the limit).
    :param store: keeps the cooldown across restarts; a cooldown it holds is resumed at once.
    :param wall: wall-clock time source (converts between the store and ``clock``).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        normal_s: float,
        rate_limit_s: float,
        store: CooldownFile | None = None,
        wall: WallClock = utc_now,
    ) -> None:
        self._clock = clock
        self._wall = wall
        self.normal_s = normal_s
        self.rate_limit_s = rate_limit_s
        self._store = store
        self._current: Cooldown | None = None
        self._resume()

    def _resume(self) -> None:
        saved = self._store.load() if self._store is not None else None
        if saved is None:
            return
        until, reason, detail, rate_limited = saved
        left = (until - self._wall()).total_seconds()
        longest = max(self.normal_s, self.rate_limit_s)
        if left <= 0:
            self._forget()
            return
        # A clock moved backwards must not pause the tunnel longer than a fresh cooldown would.
        self._current = Cooldown(self._clock() + min(left, longest), reason, detail, rate_limited)
        log.info("tunnel.cooldown_resumed", reason=reason, remaining_s=round(min(left, longest)))

    def begin(self, reason: str, detail: str, *, rate_limited: bool) -> Cooldown:
        """Start a cooldown for a failure (and save it); returns it."""
        length = self.rate_limit_s if rate_limited else self.normal_s
        self._current = Cooldown(self._clock() + length, reason, detail, rate_limited)
        if self._store is not None:
            until = self._wall() + timedelta(seconds=length)
            self._store.save(until, reason, detail, rate_limited)
        return self._current

    def active(self) -> Cooldown | None:
        """The cooldown still in force, if any (an expired one is forgotten)."""
        if self._current is not None and self._clock() >= self._current.until:
            self._forget()
        return self._current

    def clear(self) -> None:
        """Forget the cooldown (after a successful start)."""
        self._forget()

    def _forget(self) -> None:
        self._current = None
        if self._store is not None:
            self._store.remove()

    def remaining_s(self, cooldown: Cooldown) -> float:
        """Seconds left of ``cooldown`` (0 once over)."""
        return max(cooldown.until - self._clock(), 0.0)

    def ends_at(self, cooldown: Cooldown) -> datetime:
        """When ``cooldown`` is over, in wall-clock time (UTC)."""
        return self._wall() + timedelta(seconds=self.remaining_s(cooldown))

    def status(self) -> dict[str, Any]:
        """The cooldown as status fields: ``cooldown_until`` (ISO 8601, UTC), ``cooldown_s``
        (whole seconds left), ``cooldown_reason``, ``rate_limited``; all None without one."""
        cooldown = self.active()
        if cooldown is None:
            return dict.fromkeys(COOLDOWN_FIELDS)
        return {
            "cooldown_until": self.ends_at(cooldown).isoformat(timespec="seconds"),
            "cooldown_s": math.ceil(self.remaining_s(cooldown)),
            "cooldown_reason": cooldown.reason,
            "rate_limited": cooldown.rate_limited,
        }

    def message(self, cooldown: Cooldown) -> str:
        """A sentence saying why starts are refused and when to retry."""
        left = self.remaining_s(cooldown)
        retry_at = self.ends_at(cooldown).strftime("%H:%M:%S UTC")
        text = (
            f"the managed quick tunnel is cooling down after {cooldown.reason}; "
            f"retry after {retry_at} (in {left:.0f} s)"
        )
        return f"{text}. Last error: {cooldown.detail}" if cooldown.detail else text


COOLDOWN_FIELDS = ("cooldown_until", "cooldown_s", "cooldown_reason", "rate_limited")
"""The keys :meth:`CooldownTracker.status` adds to the tunnel's status."""


def cooldown_fields(tunnel: object) -> dict[str, Any]:
    """A tunnel's cooldown status fields (all None for a tunnel mode without cooldowns)."""
    status = getattr(tunnel, "cooldown_status", None)
    if callable(status):
        fields = status()
        if isinstance(fields, dict):
            return {key: fields.get(key) for key in COOLDOWN_FIELDS}
    return dict.fromkeys(COOLDOWN_FIELDS)


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
