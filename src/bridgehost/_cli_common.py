"""Pieces the two command lines (``bridgehost`` and ``bridgectl``) share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Path to bridge.config.toml (default: $BRIDGE_CONFIG, ./bridge.config.toml, "
    "/etc/bridgehost/bridge.config.toml).",
)
"""``--config PATH``, stored by the group in ``ctx.obj["config_path"]``."""

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


def group_options(prog_name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--version`` and ``--config`` for a top-level group."""
    from bridgehost import __version__

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        return click.version_option(__version__, prog_name=prog_name)(config_option(function))

    return decorate
