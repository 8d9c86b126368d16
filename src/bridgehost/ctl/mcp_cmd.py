"""``bridgectl mcp install|uninstall|status``: register ``bridgehost mcp`` with Codex.

The server goes into the Codex home's ``config.toml`` (``[codex] home``, default ``$CODEX_HOME``
or ``~/.codex``) as ``[mcp_servers.bridgehost]``, with the absolute path of this installation's
``bridgehost`` and of the config file, so Codex starts it with the same settings as the bridge.
"""

from __future__ import annotations

from pathlib import Path

import click

from bridgehost._cli_common import bridgectl_options
from bridgehost.ctl._context import load
from bridgehost.ctl._doctor_check import Check
from bridgehost.ctl._output import EXIT_USAGE, CtlError, emit_json
from bridgehost.invites import codex_registration as registration


def _config_file(ctx: click.Context, as_json: bool) -> tuple[Path, Path, float]:
    """The config's absolute path, the Codex home, and the longest tool wait."""
    loaded = load(ctx, as_json=as_json)
    if loaded.path is None:
        raise CtlError(
            "no bridge.config.toml was found; pass --config FILE so Codex starts the MCP "
            "server with the bridge's settings",
            exit_code=EXIT_USAGE,
            code="no_config",
            as_json=as_json,
        )
    invites = loaded.config.invites
    longest = max(invites.ask_timeout_s, invites.decision_wait_s)
    return Path(loaded.path).absolute(), Path(loaded.config.codex.home), longest


def _fail(exc: registration.RegistrationError, as_json: bool) -> CtlError:
    return CtlError(str(exc), exit_code=EXIT_USAGE, code="codex_config", as_json=as_json)


@click.group("mcp")
@bridgectl_options
def mcp() -> None:
    """Register the bridgehost MCP server with Codex (install, uninstall, status)."""


@mcp.command("install")
@bridgectl_options
@click.pass_context
def install(ctx: click.Context, as_json: bool) -> None:
    """Add [mcp_servers.bridgehost] to the Codex home's config.toml (idempotent).

    The rest of the file is kept byte for byte. Codex picks the server up in new sessions.
    """
    config, home, longest = _config_file(ctx, as_json)
    try:
        changed = registration.install(home, registration.wanted(config, longest))
    except registration.RegistrationError as exc:
        raise _fail(exc, as_json) from exc
    path = registration.config_file(home)
    if as_json:
        emit_json({"registered": True, "changed": changed, "codex_config": str(path)})
        return
    click.echo(f"Registered bridgehost in {path}." if changed else f"Already registered in {path}.")


@mcp.command("uninstall")
@bridgectl_options
@click.pass_context
def uninstall(ctx: click.Context, as_json: bool) -> None:
    """Remove [mcp_servers.bridgehost] from the Codex home's config.toml."""
    loaded = load(ctx, as_json=as_json)
    home = Path(loaded.config.codex.home)
    try:
        changed = registration.uninstall(home)
    except registration.RegistrationError as exc:
        raise _fail(exc, as_json) from exc
    path = registration.config_file(home)
    if as_json:
        emit_json({"registered": False, "changed": changed, "codex_config": str(path)})
        return
    click.echo(f"Removed bridgehost from {path}." if changed else f"Was not registered in {path}.")


def registration_check(codex_home: Path) -> Check:
    """The doctor's line: is ``bridgehost mcp`` registered with Codex, and does it still run?"""
    path = registration.config_file(codex_home)
    fix = "bridgectl mcp install (lets the Codex agent invite you to calls)"
    try:
        entry = registration.registered(codex_home)
    except registration.RegistrationError as exc:
        return Check("codex mcp server", "warn", str(exc), fix)
    if entry is None:
        return Check("codex mcp server", "warn", f"not registered in {path}", fix)
    command = Path(str(entry.get("command", "")))
    if not command.is_file():
        return Check(
            "codex mcp server", "missing", f"{path} starts {command}, which does not exist", fix
        )
    return Check("codex mcp server", "ok", f"registered in {path} ({command})")


@mcp.command("status")
@bridgectl_options
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Whether the server is registered with Codex."""
    loaded = load(ctx, as_json=as_json)
    check = registration_check(Path(loaded.config.codex.home))
    if as_json:
        emit_json({"registered": check.status == "ok", **check.to_json()})
        return
    click.echo(f"{check.status}: {check.detail}")
