"""Sentences for the pieces of the gateway's status, shared by ``status`` and ``call status``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridgehost.basics import parse_iso, utc_now
from bridgehost.ctl._output import seconds


def when(moment: Any) -> str:
    """An ISO time with how far away it is: ``2025-01-01T10:00:00+00:00 (in 5 min)``."""
    parsed = parse_iso(moment, naive_as_utc=True)
    if parsed is None:
        return str(moment) if moment else "never"
    delta = int((parsed - utc_now()).total_seconds())
    span = abs(delta)
    text = f"{span}s" if span < 120 else f"{span // 60} min" if span < 7200 else f"{span // 3600} h"
    return f"{moment} ({'in ' + text if delta >= 0 else text + ' ago'})"


def disarm_reason(surface: Mapping[str, Any]) -> str:
    """Why the surface is disarmed, as a person reads it (one wording per cause)."""
    reason = surface.get("last_disarm_reason")
    probe = surface.get("last_probe") or {}
    if not reason:
        return "never armed"
    if reason.startswith("bridgectl"):
        return "manually disarmed"
    if "public_unreachable" in reason and probe.get("detail"):
        return f"public origin unreachable (last failure: {probe['detail']})"
    if "disconnected" in reason:
        return "control channel disconnected"
    if "idle" in reason:
        return "idle timeout"
    return str(reason)


def surface_line(surface: Mapping[str, Any]) -> str:
    """``disarmed (why)``, ``ready — invite valid until …`` or ``armed, no valid invite``."""
    label = surface.get("status") or ("armed" if surface.get("armed") else "disarmed")
    if not surface.get("armed"):
        at = f" at {surface['last_disarm_at']}" if surface.get("last_disarm_at") else ""
        return f"disarmed ({disarm_reason(surface)}{at}); run 'bridgectl call arm'"
    base = f"{label} — armed at {surface.get('public_url')} by {surface.get('armed_by')}"
    if surface.get("launch_token_ready"):
        return f"{base}; invite valid until {when(surface.get('token_expires_at'))}"
    why = "used by a call" if surface.get("token_consumed") else "expired"
    return f"{base}; invite {why} — run 'bridgectl call arm' for a fresh one"


def tunnel_line(tunnel: Mapping[str, Any]) -> str:
    """The tunnel mode, its public URL and whether the public origin answers."""
    url = tunnel.get("public_url") or "no public URL yet"
    state = "answering" if tunnel.get("ok") else "not answering"
    detail = f" ({tunnel['detail']})" if tunnel.get("detail") else ""
    return f"{tunnel.get('mode') or '?'} {url}, {state}{detail}"


def probe_line(surface: Mapping[str, Any]) -> str | None:
    """The last public probe, if there was one."""
    probe = surface.get("last_probe")
    if not probe:
        return None
    return f"{'ok' if probe.get('ok') else 'failed'} at {probe.get('at')}: {probe.get('detail')}"


def call_line(call: Mapping[str, Any] | None) -> str:
    """The current call in one line, or ``none``."""
    if not call:
        return "none"
    parts = [f"{call.get('call_id')} {call.get('status')}"]
    if call.get("started_at"):
        parts.append(f"started {call['started_at']}")
    parts.append(f"{seconds(call.get('connected_ms'))} of {seconds(call.get('max_call_ms'))} cap")
    parts.append("browser connected" if call.get("browser_connected") else "browser not connected")
    if call.get("ending_reason"):
        parts.append(f"ending: {call['ending_reason']}")
    return ", ".join(parts)


def budget_line(budget: Mapping[str, Any]) -> str:
    """Today's calls, time used and left, and the next call's cap."""
    count = int(budget.get("calls_today", 0))
    line = (
        f"{count} call{'' if count == 1 else 's'} today, {seconds(budget.get('used_ms'))} "
        f"used of {seconds(budget.get('daily_cap_ms'))}, "
        f"{seconds(budget.get('remaining_ms'))} left; next call capped at "
        f"{seconds(budget.get('next_call_cap_ms'))}"
    )
    if int(budget.get("next_call_cap_ms", 1)) <= 0:
        line += " — exhausted until midnight (realtime.max_daily_call_ms)"
    return line


def bridge_line(view: Mapping[str, Any]) -> str:
    """Whether the bridge's control channel is connected."""
    if view.get("connected"):
        return f"connected since {view.get('connected_at')}"
    return "not connected — start bridge-telegram (systemctl start bridge-telegram)"


def owner_line(view: Mapping[str, Any]) -> str:
    """Who owns the session."""
    owner = view.get("owner")
    if owner == "telegram":
        return "telegram"
    if owner is None:
        return "unknown (the bridge has not run here yet)"
    return f"{owner} — /call is refused until 'bridgectl claim'"


def thread_line(view: Mapping[str, Any]) -> str:
    """The bound Codex thread."""
    if not view.get("thread_id"):
        return "none — run 'bridgectl bind --latest' or 'bridgectl bind THREAD_ID'"
    bound = f" (bound {view['bound_at']})" if view.get("bound_at") else ""
    return f"{view['thread_id']}{bound}"


def recent_call_line(record: Mapping[str, Any]) -> str:
    """One past or present call from the gateway's records."""
    text = f"{record.get('call_id')}  {record.get('status')}  created {record.get('created_at')}"
    if record.get("ended_at"):
        text += (
            f", ended {record['ended_at']} ({record.get('end_reason')} by {record.get('ended_by')})"
        )
    return text
