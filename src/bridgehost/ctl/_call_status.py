"""``bridgectl call status``: the surface, the live call, and recent calls with their handoffs.

Calls come from the gateway (it owns call records); for each, what the bridge received comes
from ``bridge.db``, and so do the handoff deliveries per sink (the outbox,
:func:`bridgehost.handoff.outbox.deliveries`). ``deliveries`` is left out of a call when there
is no ``bridge.db`` (the bridge never ran here) or no outbox to read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import click

from bridgehost._cli_common import bridgectl_options
from bridgehost.cost import usd
from bridgehost.ctl import _describe as describe
from bridgehost.ctl._context import bridge_view, fetch_status, load, read_bridge_store
from bridgehost.ctl._output import echo_pairs, emit_json, run
from bridgehost.readiness import cooldown_text, spend_text, tunnel_cooldown

if TYPE_CHECKING:
    from bridgehost.state.bridge_store import BridgeStore


def _bridge_side(store: BridgeStore | None, call_id: str) -> dict[str, Any] | None:
    """What the bridge stored about a call: its row, or None when it has not seen it."""
    if store is None:
        return None
    row = store.call(call_id)
    if row is None:
        return None
    return {
        "status": row.get("status"),
        "thread_id": row.get("thread_id"),
        "events_received": row.get("last_seq"),
        "ended_at": row.get("ended_at"),
        "end_reason": row.get("end_reason"),
    }


def _deliveries_reader(store: BridgeStore | None) -> Callable[[str], list[Any]] | None:
    """How to read a call's handoff deliveries per sink, when the bridge's store has them."""
    if store is None:
        return None
    method = getattr(store, "deliveries", None)
    if callable(method):
        return method  # type: ignore[no-any-return]
    try:
        from bridgehost.handoff.outbox import deliveries
    except ImportError:  # a build without the outbox: leave deliveries out
        return None
    return lambda call_id: deliveries(store, call_id)


def enrich(records: list[dict[str, Any]], store: BridgeStore | None) -> list[dict[str, Any]]:
    """Gateway call records plus the bridge's side and, when known, the deliveries."""
    result = []
    read = _deliveries_reader(store) if records else None
    for record in records:
        item = {**record, "bridge": _bridge_side(store, str(record.get("call_id")))}
        if read is not None:
            item["deliveries"] = [
                dict(d) if isinstance(d, Mapping) else d for d in read(str(record.get("call_id")))
            ]
        result.append(item)
    return result


def _delivery_text(delivery: Any) -> str:
    if not isinstance(delivery, Mapping):
        return str(delivery)
    text = f"{delivery.get('sink', '?')} {delivery.get('status', '?')}"
    if delivery.get("attempts"):
        text += f" after {delivery['attempts']} attempt{'' if delivery['attempts'] == 1 else 's'}"
    if delivery.get("status") == "delivered" and delivery.get("receipt"):
        text += f" ({delivery['receipt']})"
    elif delivery.get("next_attempt_at"):
        text += f", next try {delivery['next_attempt_at']}"
    if delivery.get("last_error") and delivery.get("status") != "delivered":
        text += f" — last error: {str(delivery['last_error'])[:160]}"
    return text


def _echo_recent(calls: list[dict[str, Any]]) -> None:
    click.echo("Recent calls:" if calls else "Recent calls: none")
    for item in calls:
        cost = f", {usd(item['cost_usd'])}" if item.get("cost_usd") is not None else ""
        click.echo(f"  {describe.recent_call_line(item)}{cost}")
        bridge = item.get("bridge")
        if bridge is None:
            click.echo("      bridge: not received yet")
        else:
            click.echo(
                f"      bridge: {bridge['status']}, {bridge['events_received']} events "
                f"received, thread {bridge.get('thread_id') or 'none'}"
            )
        if "deliveries" in item:
            rows = [_delivery_text(d) for d in item["deliveries"]] or ["none queued yet"]
            click.echo(f"      handoff: {rows[0]}")
            for row in rows[1:]:
                click.echo(f"               {row}")


def _echo_events(surface: Mapping[str, Any]) -> None:
    events = list(reversed(surface.get("recent_events") or []))[:3]
    click.echo("Surface events (newest first):" if events else "Surface events: none")
    for event in events:
        click.echo(
            f"  {event.get('at')}  {event.get('action')} {event.get('outcome')} via "
            f"{event.get('source')}: {str(event.get('detail'))[:180]}"
        )


@click.command("status")
@bridgectl_options
@click.pass_context
def call_status(ctx: click.Context, as_json: bool) -> None:
    """The call surface, the live call, and recent calls with their handoff deliveries."""
    loaded = load(ctx, as_json=as_json)
    data = run(fetch_status(loaded, as_json=as_json))
    store = read_bridge_store(loaded, as_json=as_json)
    try:
        calls = enrich(list(data.get("recent_calls") or []), store)
        view = bridge_view(loaded, data, store)
    finally:
        if store is not None:
            store.close()
    surface = data.get("surface") or {}
    if as_json:
        emit_json(
            {
                "surface": surface,
                "tunnel": data.get("tunnel"),
                "call": data.get("call"),
                "recent_calls": calls,
                "budget": data.get("budget"),
                "bridge": view,
            }
        )
        return
    pairs = [
        ("Call surface", describe.surface_line(surface)),
        ("Public origin", describe.tunnel_line(data.get("tunnel") or {})),
    ]
    probe = describe.probe_line(surface)
    if probe:
        pairs.append(("Last probe", probe))
    if (cooldown := tunnel_cooldown(data)) is not None:
        pairs.append(("Tunnel", cooldown_text(cooldown)))
    call = data.get("call")
    pairs += [
        (
            "Current call",
            describe.call_line(call) + (f", {usd(call.get('cost_usd'))} so far" if call else ""),
        ),
        ("Bridge", describe.bridge_line(view)),
        ("Budget", describe.budget_line(data.get("budget") or {})),
        ("Spend", spend_text(data.get("budget") or {}) + " (estimate at [handoff.prices])"),
    ]
    echo_pairs(pairs)
    _echo_recent(calls)
    _echo_events(surface)
