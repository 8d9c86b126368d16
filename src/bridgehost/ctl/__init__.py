"""bridgectl: the operator's command line.

Human text by default, one JSON object with ``--json``; exit 0 on success, non-zero with a one-line
reason otherwise. Each command group lives in its own module and is registered here.
"""

from __future__ import annotations

import click

from bridgehost import __version__
from bridgehost.logging import configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bridgectl")
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
    """Operate bridgehost: plugins, configuration, the call surface and calls."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    configure_logging("bridgectl", level="WARNING")


def _register_commands() -> None:
    from bridgehost.ctl import config_cmd, plugins_cmd

    main.add_command(plugins_cmd.plugins)
    main.add_command(config_cmd.config)


_register_commands()
