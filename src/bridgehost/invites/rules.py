"""The invite rules as pure functions: quiet hours, the rolling-hour rate limit, expiry."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from bridgehost.config import InvitesConfig

RATE_WINDOW = timedelta(hours=1)
"""The rate limits count what was sent within this rolling window."""


@dataclass(frozen=True)
class QuietHours:
    """A daily range of local clock time, ``start`` inclusive, ``end`` exclusive (may wrap)."""

    start: time
    end: time
    zone: tzinfo

    @classmethod
    def parse(cls, text: str, zone: tzinfo) -> QuietHours:
        """``"22:00-08:00"`` in ``zone``."""
        first, _, second = text.partition("-")
        return cls(time.fromisoformat(first), time.fromisoformat(second), zone)

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside the quiet hours."""
        clock = moment.astimezone(self.zone).time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end

    def ends_after(self, moment: datetime) -> datetime:
        """When the quiet hours that contain ``moment`` end (aware, in ``zone``)."""
        local = moment.astimezone(self.zone)
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return end if end > local else end + timedelta(days=1)


def zone_of(config: InvitesConfig) -> tzinfo:
    """``[invites] timezone``, else the host's local time zone."""
    if config.timezone:
        return ZoneInfo(config.timezone)
    local = datetime.now().astimezone().tzinfo
    assert local is not None
    return local


def quiet_hours(config: InvitesConfig) -> QuietHours | None:
    """The configured quiet hours, or None."""
    if not config.quiet_hours:
        return None
    return QuietHours.parse(config.quiet_hours, zone_of(config))


def quiet_until(config: InvitesConfig, now: datetime) -> datetime | None:
    """When the quiet hours around ``now`` end; None when ``now`` is not quiet."""
    hours = quiet_hours(config)
    if hours is None or not hours.contains(now):
        return None
    return hours.ends_after(now)


def rate_limited_until(sent_at: Iterable[datetime], limit: int, now: datetime) -> datetime | None:
    """When the next send becomes allowed, or None when one is allowed now.

    ``sent_at`` are the moments of earlier sends; at most ``limit`` fit in :data:`RATE_WINDOW`.
    """
    recent = sorted(moment for moment in sent_at if now - moment < RATE_WINDOW)
    if len(recent) < limit:
        return None
    return recent[len(recent) - limit] + RATE_WINDOW


def local_clock(moment: datetime, config: InvitesConfig) -> str:
    """``HH:MM`` of ``moment`` in the invites' time zone."""
    return moment.astimezone(zone_of(config)).strftime("%H:%M")
