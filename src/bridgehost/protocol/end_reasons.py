"""Why a call ended: one name per reason, with the words every surface shows for it.

The gateway records an :class:`EndReason` in ``call.ended``; the Mini App shows its
:attr:`~EndReason.text` when the call ends (the page gets the texts from the server), the
Telegram recap and ``handoff.md`` show its :attr:`~EndReason.label`. The reasons a voice
service gives are generic, whichever backend reports them: ``backend_ended`` (it closed the
call), ``session_expired``, ``content_filtered``, ``upstream_connection_lost`` and
``sideband_lost`` (the gateway's server-side connection to it dropped). A backend may still end
a call with a reason of its own (any short string): :func:`end_text` and :func:`end_label` say
something useful for it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class EndReason(StrEnum):
    """A reason a call ended, with its sentence for the page and its label for the handoff."""

    text: str
    """The sentence the Mini App (and a person reading the recap) sees."""
    label: str
    """The short phrase the handoff and the recap use: "Reason: <label> (<name>)"."""

    def __new__(cls, value: str, text: str, label: str) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.text = text
        member.label = label
        return member

    USER_HANGUP = "user_hangup", "You hung up.", "hung up from the call page"
    PAGE_CLOSED = (
        "page_closed",
        "The call ended because the page was closed.",
        "the call page was closed",
    )
    MICROPHONE_DENIED = (
        "microphone_denied",
        "The call ended because the microphone is not available.",
        "the microphone was not available",
    )
    CALL_START_FAILED = "call_start_failed", "The call could not start.", "the call could not start"
    NETWORK_LOST = (
        "network_lost",
        "The connection to your computer was lost.",
        "the call page lost its network",
    )
    IDLE_TIMEOUT = (
        "idle_timeout",
        "The call ended because nobody spoke for a while.",
        "nobody spoke for too long",
    )
    MAX_CALL_DURATION_REACHED = (
        "max_call_duration_reached",
        "The call reached its time limit.",
        "the maximum call length was reached",
    )
    DAILY_BUDGET_EXHAUSTED = (
        "daily_budget_exhausted",
        "Today's call time is used up, so the call ended. It resets at midnight.",
        "the daily call budget ran out",
    )
    DAILY_COST_CAP = (
        "daily_cost_cap",
        "Today's spending cap is reached, so the call ended. It resets at midnight.",
        "the daily spending cap (realtime.max_daily_cost_usd) was reached",
    )
    TELEGRAM_HANGUP = (
        "telegram_hangup",
        "The call was hung up from Telegram (/hangup).",
        "hung up with /hangup in Telegram",
    )
    OPERATOR_HANGUP = (
        "operator_hangup",
        "The call was hung up on the computer (bridgectl).",
        "hung up with bridgectl",
    )
    GATEWAY_STOP = (
        "gateway_stop",
        "The call service on your computer stopped, so the call ended.",
        "the gateway was stopped",
    )
    GATEWAY_RESTART = (
        "gateway_restart",
        "The call service on your computer restarted, so the call ended.",
        "the gateway restarted during the call",
    )
    CALL_START_TIMEOUT = (
        "call_start_timeout",
        "The call took too long to start.",
        "the call did not start in time",
    )
    CALL_LAUNCH_TIMEOUT = (
        "call_launch_timeout",
        "The call was not joined in time.",
        "the call page did not connect in time",
    )
    BROWSER_DISCONNECT = (
        "browser_disconnect",
        "The connection to your computer was lost.",
        "the call page went away",
    )
    CALL_AUTH_RATE_LIMITED = (
        "call_auth_rate_limited",
        "The call ended after repeated failed reconnects.",
        "the call page failed to reconnect too often",
    )
    BACKEND_FAILED = (
        "backend_failed",
        "The voice service stopped, so the call ended.",
        "the voice service failed",
    )
    BACKEND_ENDED = (
        "backend_ended",
        "The voice service ended the call.",
        "the voice service ended the call",
    )
    SESSION_EXPIRED = (
        "session_expired",
        "The voice session reached the voice service's time limit, so the call ended.",
        "the voice service's session time limit was reached",
    )
    CONTENT_FILTERED = (
        "content_filtered",
        "The voice service's safety filter ended the call.",
        "the voice service's safety filter ended the call",
    )
    UPSTREAM_CONNECTION_LOST = (
        "upstream_connection_lost",
        "The voice service lost its connection to this call, so the call ended.",
        "the voice service lost its connection to the call page",
    )
    SIDEBAND_LOST = (
        "sideband_lost",
        "The call service on your computer lost its connection to the voice service, so the "
        "call ended.",
        "the gateway lost its server-side connection to the voice service",
    )
    UNKNOWN = "unknown", "The call ended.", "unknown"

    @classmethod
    def parse(cls, reason: str | None) -> EndReason | None:
        """The member named ``reason``, or None for a reason of a backend's own."""
        return next((member for member in cls if reason and member.value == reason), None)


BROWSER_END_REASONS = frozenset(
    {
        EndReason.USER_HANGUP,
        EndReason.PAGE_CLOSED,
        EndReason.MICROPHONE_DENIED,
        EndReason.CALL_START_FAILED,
        EndReason.NETWORK_LOST,
        EndReason.IDLE_TIMEOUT,
    }
)
"""The reasons the page may give when it hangs up or finalizes (anything else: ``user_hangup``)."""


def end_text(reason: str | None) -> str:
    """The page's sentence for ``reason``; a reason of a backend's own is spelled out."""
    known = EndReason.parse(reason)
    if known is not None:
        return known.text
    return f"The call ended ({reason.replace('_', ' ')})." if reason else EndReason.UNKNOWN.text


def end_label(reason: str | None) -> str:
    """``"hung up from the call page (user_hangup)"``; unknown reasons are shown as they are."""
    if not reason:
        return "unknown"
    known = EndReason.parse(reason)
    return f"{known.label} ({reason})" if known is not None and known.label != reason else reason


def page_texts() -> dict[str, str]:
    """Every reason's sentence, keyed by name: what the Mini App embeds."""
    return {reason.value: reason.text for reason in EndReason}
