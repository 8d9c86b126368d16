"""``bridgectl claim`` / ``bridgectl release``: who owns the session, Telegram or the desktop.

While the desktop owns it, ``/call`` is refused; the owner lives in the bridge's database and
the bridge reads it fresh for every request, so no restart is needed.
"""

from __future__ import annotations

import click

from bridgehost._cli_common import bridgectl_options
from bridgehost.ctl._context import load, open_bridge_store
from bridgehost.ctl._output import emit_json


def _set_owner(ctx: click.Context, owner: str, as_json: bool) -> None:
    loaded = load(ctx, as_json=as_json)
    store = open_bridge_store(loaded, create=True, as_json=as_json)
    assert store is not None
    try:
        before = store.binding().owner
        binding = store.set_owner(owner)  # type: ignore[arg-type]
    finally:
        store.close()
    if as_json:
        emit_json({**binding.to_json(), "previous_owner": before})
        return
    change = "unchanged" if before == owner else f"was {before}"
    if owner == "telegram":
        click.echo(f"Session owner: telegram ({change}). /call can start calls from Telegram.")
    else:
        click.echo(f"Session owner: desktop ({change}). /call is refused until 'bridgectl claim'.")


@click.command()
@bridgectl_options
@click.pass_context
def claim(ctx: click.Context, as_json: bool) -> None:
    """Hand the session to Telegram: /call may start calls."""
    _set_owner(ctx, "telegram", as_json)


@click.command()
@bridgectl_options
@click.pass_context
def release(ctx: click.Context, as_json: bool) -> None:
    """Hand the session back to the desktop: /call is refused until 'claim'."""
    _set_owner(ctx, "desktop", as_json)
