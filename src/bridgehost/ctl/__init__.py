"""bridgectl: the operator's command line.

Human text by default, one JSON object with ``--json``; exit 0 on success, non-zero with a one-line
reason otherwise. Each command group lives in its own module, registered here by import path and
imported only when it runs (``bridgectl --help`` imports none of them).
"""

from __future__ import annotations

from typing import Any

from bridgehost._cli_common import PLUGINS_COMMAND, LazyCommand, program_group

COMMANDS: dict[str, LazyCommand] = {
    "plugins": PLUGINS_COMMAND,
    "config": LazyCommand(
        "bridgehost.ctl.config_cmd:config",
        "Check and show bridge.config.toml (secrets are never shown).",
    ),
    "status": LazyCommand(
        "bridgehost.ctl.status_cmd:status",
        "Gateway, call surface, bridge connection, current call, owner, bound thread, budget.",
    ),
    "capabilities": LazyCommand(
        "bridgehost.ctl.status_cmd:capabilities",
        "Every prerequisite of /call, with what is missing and how to fix it.",
    ),
    "call": LazyCommand(
        "bridgehost.ctl.call_cmd:call",
        "Arm or disarm the call surface, see calls, hang up the live call.",
    ),
    "mcp": LazyCommand(
        "bridgehost.ctl.mcp_cmd:mcp",
        "Register the bridgehost MCP server with Codex (install, uninstall, status).",
    ),
    "threads": LazyCommand(
        "bridgehost.ctl.threads_cmd:threads",
        "List Codex threads (newest first), marking the one calls are bound to.",
    ),
    "bind": LazyCommand(
        "bridgehost.ctl.threads_cmd:bind",
        "Bind calls to a Codex thread: handoffs from the next call go there.",
    ),
    "claim": LazyCommand(
        "bridgehost.ctl.owner_cmd:claim", "Hand the session to Telegram: /call may start calls."
    ),
    "release": LazyCommand(
        "bridgehost.ctl.owner_cmd:release",
        "Hand the session back to the desktop: /call is refused until 'claim'.",
    ),
    "telegram": LazyCommand(
        "bridgehost.ctl.telegram_cmd:telegram", "Telegram helpers for setting up the bot."
    ),
    "install-units": LazyCommand(
        "bridgehost.ctl.units_cmd:install_units",
        "Write bridge-gateway.{service,socket}, bridge-telegram.service and bridge.target.",
    ),
    "doctor": LazyCommand(
        "bridgehost.ctl.units_cmd:doctor",
        "Check what the systemd units need: unit files, config, credentials, state directories.",
    ),
}
"""Every bridgectl command: name -> import path and one-line help."""

DEFAULT_LOG_LEVEL = "WARNING"
"""bridgectl logs only warnings unless --log-level says otherwise: stdout is for results."""


def _configure_logging(settings: dict[str, Any]) -> None:
    from bridgehost.logging import configure_logging

    configure_logging("bridgectl", level=settings.get("log_level") or DEFAULT_LOG_LEVEL)


@program_group(
    "bridgectl",
    lazy_commands=COMMANDS,
    prepare=_configure_logging,
    options=("config", "log_level", "json"),
    overrides={"log_level": {"default": DEFAULT_LOG_LEVEL, "show_default": True}},
)
def main() -> None:
    """Operate bridgehost: plugins, configuration, the call surface and calls.

    Every command prints text, or one JSON object with --json. Errors are one line on stderr
    naming the problem and the fix. --config, --log-level and --json may also follow the
    command (the one given last wins).

    \b
    Exit codes:
      0  success (capabilities: /call is ready)
      1  not ready, nothing to do, or refused by the gateway
      2  usage or configuration error (invalid config, missing or wrong secret)
      3  gateway unreachable (telegram discover: Bot API unreachable)
    """


__all__ = ["COMMANDS", "main"]
