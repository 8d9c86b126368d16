"""``[invites]``: when the agent (or a script) may call the person, and how long an invite lasts."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator

from bridgehost.config._fields import setting

QUIET_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
"""``HH:MM-HH:MM`` (24-hour clock); the range may wrap past midnight."""


class InvitesConfig(BaseModel):
    """``[invites]``: the rules for ``bridgectl call invite`` and the ``bridgehost mcp`` tools.

    An invite is a chat message with the reason and a button that opens the Mini App. Invites
    are refused during ``quiet_hours`` (read in ``timezone``), beyond ``max_per_hour``, and when
    today's call budget is spent; an open invite expires after ``expiry_s`` and a newer one
    replaces it. Messages and questions from the agent respect the quiet hours too.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    quiet_hours: str | None = setting(
        None,
        'Hours when no invite, message or question is sent, as "HH:MM-HH:MM" in `timezone` '
        '(may wrap past midnight, e.g. "22:00-08:00")',
        default_text="unset (no quiet hours)",
        examples=["22:00-08:00"],
    )
    timezone: str | None = setting(
        None,
        'IANA time zone the quiet hours are read in (e.g. "Europe/Berlin")',
        default_text="unset (the host's local time zone)",
        examples=["Europe/Berlin"],
    )
    max_per_hour: int = setting(
        3,
        "Invites sent in any rolling hour; more are refused as rate-limited",
        unit="count",
        strict=True,
        ge=1,
    )
    max_messages_per_hour: int = setting(
        20,
        "Messages and questions the agent may send in any rolling hour",
        unit="count",
        strict=True,
        ge=1,
    )
    expiry_s: int = setting(
        600,
        "Lifetime of an invite's button; an unanswered invite expires after this long",
        unit="s",
        strict=True,
        gt=0,
    )
    decision_wait_s: float = setting(
        45.0,
        "How long the request_call tool waits for the person to tap Start or Not now before "
        "it answers that the invite is open",
        unit="s",
        strict=True,
        ge=0,
    )
    ask_timeout_s: float = setting(
        240.0,
        "How long the ask_user tool waits for a button before it answers no answer",
        unit="s",
        strict=True,
        gt=0,
    )
    socket_path: Path | None = setting(
        None,
        "The bridge's local invite socket, which bridgectl and bridgehost mcp use to reach "
        "bridge-telegram (a Unix socket, mode 0600)",
        unit="path",
        default_text="{storage.root}/invites.sock",
        examples=["/run/bridgehost/invites.sock"],
    )

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_shape(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if QUIET_HOURS.fullmatch(value) is None:
            raise ValueError(
                f'must look like "22:00-08:00" (HH:MM-HH:MM, 24-hour clock), got {value!r}'
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f'{value!r} is not a known IANA time zone; use a name like "Europe/Berlin" '
                "or leave it unset for the host's local time"
            ) from None
        return value.strip()


__all__ = ["InvitesConfig"]
