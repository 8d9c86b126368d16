"""``bridgehost``: run the services (``gateway``, ``telegram``) and inspect the host."""

from __future__ import annotations

import click

from bridgehost import __version__
from bridgehost.ctl.plugins_cmd import plugins


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bridgehost")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Path to bridge.config.toml (default: $BRIDGE_CONFIG, ./bridge.config.toml, "
    "/etc/bridgehost/bridge.config.toml).",
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """bridgehost: talk live, from Telegram, with the Codex agent on this machine."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


main.add_command(plugins)
