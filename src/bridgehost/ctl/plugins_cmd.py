"""``bridgectl plugins``: what is installed, what loaded, and what each plugin provides."""

from __future__ import annotations

import json
import os

import click

from bridgehost._cli_common import bridgectl_options
from bridgehost.plugins import PluginHost, PluginRecord, PluginStatus
from bridgehost.providers import SLOTS


def _disabled_from_config(config_path: str | None) -> tuple[list[str], str | None]:
    """``plugins.disabled`` from the config, or a warning when the config cannot be read."""
    from bridgehost.config import ConfigError, load_config

    try:
        loaded = load_config(config_path, env=os.environ)
    except ConfigError as exc:
        first_line = str(exc).splitlines()[0]
        return [], f"warning: config not applied ({first_line}); listing all plugins"
    return list(loaded.config.plugins.disabled), None


def _human_line(record: PluginRecord) -> list[str]:
    kind = "builtin" if record.builtin else (record.distribution or "inline")
    lines = [
        f"{record.name} {record.version or ''}  [{record.status}]  ({kind})".replace("  [", " [")
    ]
    if record.status is PluginStatus.FAILED:
        lines.append(f"    error: {record.error}")
    elif record.detail:
        lines.append(f"    {record.detail}")
    for slot in SLOTS:
        if record.provides[slot.key]:
            lines.append(f"    {slot.label}s: {', '.join(sorted(record.provides[slot.key]))}")
    if record.hooks:
        lines.append(f"    hooks: {', '.join(record.hooks)}")
    return lines


@click.command()
@bridgectl_options
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List plugins: name, version, status, hooks and the providers each one registers.

    A plugin that fails to load is listed as failed with its error; the others still load.
    BRIDGEHOST_LOAD_PLUGINS=a,b limits third-party plugins to those named (empty: builtins
    only); plugins.disabled in bridge.config.toml turns any plugin off.
    """
    disabled, warning = _disabled_from_config(ctx.obj.get("config_path") if ctx.obj else None)
    host = PluginHost.load(disabled=disabled)
    if as_json:
        click.echo(json.dumps(host.to_json(), indent=2))
        return
    if warning:
        click.echo(warning, err=True)
    for record in host.records():
        click.echo("\n".join(_human_line(record)))
    for conflict in host.conflicts():
        click.echo(f"conflict: {conflict}")
