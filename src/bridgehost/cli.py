"""``bridgehost``: run the services (``gateway``, ``telegram``) and inspect the host.

Only what a command needs is imported when it runs: ``bridgehost gateway`` loads the gateway,
never ``bridgehost.ctl``; ``plugins`` is the operator command, registered by import path.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import click

from bridgehost._cli_common import PLUGINS_COMMAND, program_group, shared_options

DEFAULT_LOG_LEVEL = "INFO"
LOG_LEVEL_ENV = "BRIDGEHOST_LOG_LEVEL"


def configure_logging(service: str, *, level: str) -> None:
    """:func:`bridgehost.logging.configure_logging`, imported only once a command logs
    (structlog is not needed for ``--help``)."""
    from bridgehost import logging as host_logging

    host_logging.configure_logging(service, level=level)


def _configure_logging(settings: dict[str, Any]) -> None:
    configure_logging("bridgehost", level=settings.get("log_level") or DEFAULT_LOG_LEVEL)


@program_group(
    "bridgehost",
    lazy_commands={"plugins": PLUGINS_COMMAND},
    prepare=_configure_logging,
    options=("config", "log_level"),
    overrides={
        "log_level": {
            "default": DEFAULT_LOG_LEVEL,
            "envvar": LOG_LEVEL_ENV,
            "show_envvar": True,
            "show_default": True,
        }
    },
)
def main() -> None:
    """bridgehost: talk live, from Telegram, with the Codex agent on this machine.

    --config and --log-level may also follow the command (the one given last wins).
    """


@main.command()
@shared_options("config", "log_level")
@click.pass_context
def gateway(ctx: click.Context) -> None:
    """Run bridge-gateway: the Mini App, call bootstrap, call sessions and the tunnel.

    Runs in the foreground until SIGTERM or Ctrl-C. Under systemd it reports READY=1, STATUS=
    lines and watchdog pings; a socket passed by socket activation is used instead of binding.
    """
    with _starting():
        from bridgehost.gateway.service import GatewayStartError, build_gateway, serve

        built = _build_service(ctx, "bridge-gateway", build_gateway, GatewayStartError)
    _run_service(built, serve, GatewayStartError)


@main.command()
@click.option(
    "--serve",
    "serve_forever",
    is_flag=True,
    help="Keep running afterwards and print a URL to call the echo backend from a "
    "browser on this machine, until Ctrl-C or SIGTERM.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to keep the demo's config, state and handoff files (default: a new "
    "temporary directory).",
)
def demo(serve_forever: bool, state_dir: Path | None) -> None:
    """Carry one call through a real gateway, offline: no keys, no Telegram, no internet.

    Starts the gateway with the echo backend on loopback, connects a minimal bridge, arms the
    surface, places a scripted call that streams audio and hears it echoed, hangs up, and
    writes the handoff files. Every step is printed.
    """
    from bridgehost.demo import run_demo
    from bridgehost.logging import configure_logging

    # The demo's expected warnings (no key to summarize with, the bridge leaving at the end)
    # would only hide its own step lines; errors still show.
    configure_logging("bridgehost-demo", level="ERROR")
    click.echo("bridgehost demo: an offline call through the real gateway (echo backend)")
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = asyncio.run(run_demo(serve_forever=serve_forever, state_dir=state_dir))
    except KeyboardInterrupt:
        return
    if result.get("interrupted"):
        return
    if result["echoed"] == 0:
        click.echo("no audio came back from the echo backend", err=True)
        sys.exit(1)
    click.echo("demo finished: the call went from bootstrap to handoff")


@main.command()
@shared_options("config", "log_level")
@click.pass_context
def telegram(ctx: click.Context) -> None:
    """Run bridge-telegram: the bot, the bridge's control channel, and call hand-over.

    Runs in the foreground until SIGTERM or Ctrl-C. Under systemd it reports READY=1 once it
    polls Telegram, STATUS= lines (gateway connection, bound thread) and watchdog pings.
    """
    with _starting():
        from bridgehost.telegram.daemon import BridgeStartError, build_bridge, run_bridge

        built = _build_service(ctx, "bridge-telegram", build_bridge, BridgeStartError)
    _run_service(built, run_bridge, BridgeStartError)


@main.command()
@shared_options("config", "log_level")
@click.pass_context
def mcp(ctx: click.Context) -> None:
    """Run the MCP server on stdio that lets the Codex agent reach you in Telegram.

    Codex starts it (register it with 'bridgectl mcp install'). Tools: request_call,
    send_message, ask_user; each goes to bridge-telegram's local invite socket.
    """
    from bridgehost.config import ConfigError, load_config
    from bridgehost.mcp_server import serve_stdio

    configure_logging("bridgehost-mcp", level=ctx.obj.get("log_level") or "WARNING")
    try:
        loaded = load_config(ctx.obj["config_path"])
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_stdio(loaded))


@contextlib.contextmanager
def _starting() -> Iterator[None]:
    """A service's imports and build, with the cyclic garbage collector paused.

    Start-up creates about 100,000 objects that live as long as the process (modules, classes,
    pydantic's validators) and little garbage, yet the collector's passes over the growing heap
    cost ``bridgehost gateway`` about 40 ms of a 320 ms start (docs/performance.md). Afterwards
    what start-up built is frozen into the permanent generation (:func:`gc.freeze`): later
    collections in the running service skip it instead of walking it. The price is start-up's
    garbage, which stays: about 2,000 objects in cycles, 0.4–0.8 MiB of RSS. Then collection
    resumes as before.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _build_service(
    ctx: click.Context, name: str, build: Callable[[Any], Any], start_error: type[Exception]
) -> Any:
    """Configure logging, load the config and build the service; start problems exit 2 (no
    restart loop)."""
    from bridgehost.config import ConfigError, load_config

    configure_logging(name, level=ctx.obj.get("log_level") or DEFAULT_LOG_LEVEL)
    try:
        return build(load_config(ctx.obj["config_path"]))
    except (ConfigError, start_error) as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


def _run_service(
    built: Any, run: Callable[[Any], Coroutine[Any, Any, None]], start_error: type[Exception]
) -> None:
    """Run a built service until it stops; a start problem (say, the port is taken) exits 2."""
    from bridgehost.config import ConfigError

    try:
        asyncio.run(run(built))
    except (ConfigError, start_error) as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
