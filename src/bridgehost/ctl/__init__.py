"""bridgectl: the operator's command line.

Human text by default, one JSON object with ``--json``; exit 0 on success, non-zero with a one-line
reason otherwise. Each command group lives in its own module and is registered here.
"""

from __future__ import annotations

import click

from bridgehost._cli_common import CONTEXT_SETTINGS, group_options
from bridgehost.logging import configure_logging


@click.group(context_settings=CONTEXT_SETTINGS)
@group_options("bridgectl")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """Operate bridgehost: plugins, configuration, the call surface and calls.

    Every command prints text, or one JSON object with --json. Errors are one line on stderr
    naming the problem and the fix.

    \b
    Exit codes:
      0  success (capabilities: /call is ready)
      1  not ready, nothing to do, or refused by the gateway
      2  usage or configuration error (invalid config, missing or wrong secret)
      3  gateway unreachable (telegram discover: Bot API unreachable)
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    configure_logging("bridgectl", level="WARNING")


def _register_commands() -> None:
    from bridgehost.ctl import (
        call_cmd,
        config_cmd,
        owner_cmd,
        plugins_cmd,
        status_cmd,
        telegram_cmd,
        threads_cmd,
        units_cmd,
    )

    main.add_command(plugins_cmd.plugins)
    main.add_command(config_cmd.config)
    main.add_command(status_cmd.status)
    main.add_command(status_cmd.capabilities)
    main.add_command(call_cmd.call)
    main.add_command(threads_cmd.threads)
    main.add_command(threads_cmd.bind)
    main.add_command(owner_cmd.claim)
    main.add_command(owner_cmd.release)
    main.add_command(telegram_cmd.telegram)
    main.add_command(units_cmd.install_units)
    main.add_command(units_cmd.doctor)


_register_commands()
