"""Readiness as the bridge sees it, and the texts of ``/capabilities``, ``/call status`` and
``/status``.

:func:`snapshot` asks the gateway's control API (bounded), takes the bridge's own view (is the
control channel up, who owns the session, which thread is bound) and the plugins' readiness
checks (each bounded) through :func:`bridgehost.readiness.gather`, which ``bridgectl`` shares,
then sharpens what the bridge knows better.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bridgehost import __version__
from bridgehost.cost import usd
from bridgehost.gateway_api import GatewayApiError
from bridgehost.providers import CheckResult
from bridgehost.readiness import Readiness, cooldown_text, gather, spend_text, tunnel_cooldown

if TYPE_CHECKING:
    from bridgehost.telegram.runtime import BridgeRuntime

STATUS_TIMEOUT_S = 5.0
PLUGIN_CHECK_TIMEOUT_S = 3.0
ARM_FIXES = frozenset({"Call surface", "Public Mini App origin"})
"""Failures that arming the surface fixes (``/call`` arms when these are the only ones)."""


@dataclass(frozen=True)
class Snapshot:
    """Readiness plus the gateway's status it was computed from (None when unreachable)."""

    readiness: Readiness
    gateway: dict[str, Any] | None
    gateway_error: GatewayApiError | None

    @property
    def failures(self) -> list[CheckResult]:
        """Every failing gating check, in order."""
        return [c for c in self.readiness.checks if not c.ok]

    @property
    def only_disarmed(self) -> bool:
        """Not ready, and arming would fix it."""
        names = {c.name for c in self.failures}
        return bool(names) and names <= ARM_FIXES


def _refine(
    rt: BridgeRuntime, checks: list[CheckResult], error: GatewayApiError | None
) -> list[CheckResult]:
    """Sharper details and fixes where the bridge knows more than the generic check."""
    out = []
    for check in checks:
        if check.name == "Gateway" and not rt.config.realtime.enabled:
            check = replace(check, detail="not asked: live calls are disabled", fix=None)
        elif check.name == "Gateway" and error is not None and error.code == "unauthorized":
            check = replace(
                check,
                detail="the gateway refused this bridge's REALTIME_CONTROL_SECRET, so "
                "neither its control API nor the control channel accepts the bridge",
                fix="set the same REALTIME_CONTROL_SECRET for bridge-gateway and "
                "bridge-telegram, then restart bridge-telegram",
            )
        elif (
            check.name == "Control channel"
            and not check.ok
            and rt.channel is not None
            and rt.channel.last_error
        ):
            check = replace(check, detail=f"not connected: {rt.channel.last_error}")
        out.append(check)
    return out


async def snapshot(rt: BridgeRuntime) -> Snapshot:
    """Everything ``/call`` needs to know, computed once."""
    found = await gather(
        rt.config,
        rt.secrets,
        bridge=rt.bridge_view(),
        host=rt.host,
        ask_gateway=rt.config.realtime.enabled,
        status_timeout_s=STATUS_TIMEOUT_S,
        check_timeout_s=PLUGIN_CHECK_TIMEOUT_S,
        check_failed_wording="check failed:",
    )
    readiness = found.readiness
    readiness = Readiness(
        _refine(rt, readiness.checks, found.gateway_error),
        readiness.informational,
        readiness.tunnel,
    )
    return Snapshot(readiness, found.gateway, found.gateway_error)


# -- texts -------------------------------------------------------------------------------------


def check_line(check: CheckResult, *, with_fix: bool = True) -> str:
    """``✅ name: detail`` or ``❌ name: detail`` plus ``→ fix``."""
    line = f"{'✅' if check.ok else '❌'} {check.name}: {check.detail}"
    if with_fix and not check.ok and check.fix:
        line += f"\n   → {check.fix}"
    return line


def blocked_text(snap: Snapshot) -> str:
    """Why ``/call`` cannot start a call, every failing check with its fix."""
    lines = ["Can't start a call yet."]
    lines += [check_line(c) for c in snap.failures]
    return "\n".join(lines)


def capabilities_text(snap: Snapshot) -> str:
    """``/capabilities``: every check, ✅ or ❌, with fixes."""
    head = "Live calls: ready ✅" if snap.readiness.ready else "Live calls: not ready ❌"
    checks = [*snap.readiness.checks, *snap.readiness.informational]
    return "\n".join([head, *(check_line(c) for c in checks)])


def _minutes(ms: int) -> str:
    seconds = max(0, int(ms) // 1000)
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _clock(stamp: str | None) -> str:
    if not stamp:
        return "?"
    try:
        return datetime.fromisoformat(stamp).strftime("%H:%M UTC")
    except ValueError:
        return stamp


def _surface_line(gateway: dict[str, Any]) -> str:
    surface = gateway.get("surface") or {}
    if not surface.get("armed"):
        reason = surface.get("last_disarm_reason")
        return f"Call surface: disarmed ({reason})" if reason else "Call surface: disarmed"
    invite = (
        "invite ready until " + _clock(surface.get("token_expires_at"))
        if surface.get("launch_token_ready")
        else "no open invite"
    )
    return f"Call surface: armed at {surface.get('public_url')} ({invite})"


def _call_line(call: dict[str, Any]) -> str:
    ended = call.get("end_reason")
    when = _clock(call.get("started_at") or call.get("created_at"))
    text = f"• {str(call.get('call_id'))[:8]} {when}: {call.get('status')}"
    text += f" ({ended})" if ended else ""
    return text + (f", {usd(call['cost_usd'])}" if call.get("cost_usd") is not None else "")


def spend_line(gateway: dict[str, Any]) -> str:
    """``Spend: $0.42 spent today of a $2.00 cap ($1.58 left)`` (an estimate)."""
    return "Spend (estimate): " + spend_text(gateway.get("budget") or {})


def budget_line(gateway: dict[str, Any]) -> str:
    """Today's calls, time used and left, next call's cap."""
    b = gateway.get("budget") or {}
    return (
        f"Budget: {b.get('calls_today', 0)} calls today · {_minutes(b.get('used_ms', 0))} "
        f"used · {_minutes(b.get('remaining_ms', 0))} left · next call up to "
        f"{_minutes(b.get('next_call_cap_ms', 0))}"
    )


def call_status_text(rt: BridgeRuntime, snap: Snapshot) -> str:
    """``/call status``: the surface, the current call, recent calls, budget, readiness."""
    gateway = snap.gateway
    if gateway is None:
        return "\n".join(
            [
                "Call status unavailable: the gateway is not answering.",
                *(check_line(c) for c in snap.failures[:2]),
            ]
        )
    call = gateway.get("call")
    lines = [_surface_line(gateway)]
    if (cooldown := tunnel_cooldown(gateway)) is not None:
        lines.append(cooldown_text(cooldown))
    lines += [
        "Current call: none"
        if not call
        else f"Current call: {call.get('call_id')} ({call.get('status')}, "
        f"{_minutes(call.get('connected_ms') or 0)} connected, "
        f"{usd(call.get('cost_usd'))} so far)",
        budget_line(gateway),
        spend_line(gateway),
        "Control channel: " + ("connected" if rt.connected else "not connected"),
    ]
    recent = [
        c
        for c in gateway.get("recent_calls") or []
        if not call or c.get("call_id") != call.get("call_id")
    ][:5]
    lines += (
        ["Recent calls:", *(_call_line(c) for c in recent)] if recent else ["Recent calls: none"]
    )
    lines.append(
        "Ready for /call ✅"
        if snap.readiness.ready
        else "Not ready:\n" + "\n".join(check_line(c) for c in snap.failures)
    )
    return "\n".join(lines)


def status_text(rt: BridgeRuntime, snap: Snapshot) -> str:
    """``/status``: the bridge, the gateway, the binding, the surface, readiness."""
    view = rt.binding_view()
    lines = [
        f"bridgehost {__version__}: {rt.status_line()}",
        f"Gateway: {'reachable' if snap.gateway is not None else 'not answering'}",
        f"Control channel: {'connected' if rt.connected else 'not connected'}",
        f"Session owner: {view['owner']}",
        f"Bound thread: {view['thread_id'] or 'none'}",
    ]
    if snap.gateway is not None:
        lines += [_surface_line(snap.gateway), budget_line(snap.gateway)]
    first = snap.readiness.first_failure
    lines.append(
        "Ready for /call ✅"
        if first is None
        else f"Not ready for /call: {first.name} ({first.detail}). /capabilities has all checks."
    )
    return "\n".join(lines)
