"""Today's budget: call time against ``max_daily_call_ms``, spend against ``max_daily_cost_usd``.

Time is charged as connected time (:class:`bridgehost.gateway.calls.CallManager`). Spend is the
estimate of :mod:`bridgehost.cost`: :class:`SpendMeter` sums each call's ``usage`` events,
prices them at ``[handoff.prices]`` and writes the call's spend to the usage ledger as it
grows, so a gateway restart keeps what the day has spent. When the money cap is set and the
day's spend reaches it, a new call is refused (``daily_cost_cap``) and a running call ends with
the end reason ``daily_cost_cap``.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bridgehost.basics import local_day, today
from bridgehost.config import BridgeConfig
from bridgehost.cost import TokenUsage, cost_usd, usd
from bridgehost.gateway.domain_errors import BudgetExhausted
from bridgehost.state.gateway_store import GatewayStore

if TYPE_CHECKING:
    from bridgehost.gateway.session import CallSession


@dataclass(frozen=True)
class Budget:
    """Today's call budget: time, and the estimated spend against the optional money cap."""

    calls_today: int
    used_ms: int
    daily_cap_ms: int
    per_call_cap_ms: int
    spent_usd: float = 0.0
    daily_cost_cap_usd: float | None = None

    @property
    def remaining_ms(self) -> int:
        """What is left today."""
        return max(0, self.daily_cap_ms - self.used_ms)

    @property
    def next_call_cap_ms(self) -> int:
        """How long the next call may last."""
        return min(self.per_call_cap_ms, self.remaining_ms)

    @property
    def cost_left_usd(self) -> float | None:
        """What may still be spent today (None without a money cap)."""
        if self.daily_cost_cap_usd is None:
            return None
        return round(max(0.0, self.daily_cost_cap_usd - self.spent_usd), 6)

    @property
    def cost_cap_reached(self) -> bool:
        """The money cap is set and today's spend reached it."""
        return self.daily_cost_cap_usd is not None and self.spent_usd >= self.daily_cost_cap_usd

    def to_json(self) -> dict[str, Any]:
        """The budget for status output."""
        return {
            "calls_today": self.calls_today,
            "used_ms": self.used_ms,
            "remaining_ms": self.remaining_ms,
            "daily_cap_ms": self.daily_cap_ms,
            "per_call_cap_ms": self.per_call_cap_ms,
            "next_call_cap_ms": self.next_call_cap_ms,
            "spent_usd": round(self.spent_usd, 6),
            "daily_cost_cap_usd": self.daily_cost_cap_usd,
            "cost_left_usd": self.cost_left_usd,
            "cost_cap_reached": self.cost_cap_reached,
        }

    def refuse_if_cost_cap_reached(self) -> None:
        """Raise the bootstrap refusal when today's spend reached the money cap."""
        if self.cost_cap_reached:
            raise BudgetExhausted(
                f"Today's spending cap is reached ({usd(self.spent_usd)} of "
                f"{usd(self.daily_cost_cap_usd)}, realtime.max_daily_cost_usd). "
                "It resets at midnight.",
            )


class SpendMeter:
    """Prices each call's ``usage`` events and keeps its spend in the usage ledger."""

    def __init__(self, config: BridgeConfig, store: GatewayStore) -> None:
        self.prices = config.handoff.prices
        self.cap_usd = config.realtime.max_daily_cost_usd
        self.store = store
        self._usage: weakref.WeakKeyDictionary[CallSession, TokenUsage] = (
            weakref.WeakKeyDictionary()
        )

    def record(self, session: CallSession, event: Mapping[str, Any]) -> bool:
        """Add one ``usage`` event to its call; True when the day's spend reached the cap."""
        total = self._usage.get(session, TokenUsage()) + TokenUsage.from_event(event)
        self._usage[session] = total
        spent = cost_usd(total, self.prices)
        session.record.cost_usd = spent
        day = local_day(session.connected_at) if session.connected_at else today()
        self.store.charge_cost(session.call_id, day, spent)
        return self.cap_usd is not None and self.store.spent_usd(day) >= self.cap_usd


__all__ = ["Budget", "SpendMeter"]
