"""``bridgectl install-units`` and ``bridgectl doctor``: the systemd units and what they need.

The unit templates ship inside the package (``bridgehost/packaging_data/systemd/``, the one source
of truth; ``packaging/systemd/`` in the repository holds identical copies for readers and distro
packagers). ``install-units`` fills in their placeholders and writes them:

``@BRIDGEHOST@``
    the ``bridgehost`` console script beside ``sys.executable`` (the installed package's own);
``@CONFIG@``
    ``--config``, else ``/etc/bridgehost/bridge.config.toml`` (``--user``:
    ``~/.config/bridgehost/bridge.config.toml``);
``@LISTEN@``
    ``realtime.gateway_host:gateway_port`` from that config (default ``127.0.0.1:8890``);
``@USER@`` and ``@HOME@``
    the account that owns the Codex home (``--bridge-user``, default ``$SUDO_USER`` or the
    current user) and its home directory.

When Python or bridgehost lives under a home directory (pyenv, pipx), the gateway's
``ProtectHome=yes`` would hide it, so ``install-units`` also writes the drop-in
``bridge-gateway.service.d/50-python-paths.conf`` (``ProtectHome=tmpfs`` plus
``BindReadOnlyPaths=`` for exactly those directories).

``doctor`` reads the installed units and reports, each with its fix, a missing unit, config file,
credential or state directory; it exits 1 when anything is missing.

This module holds just the two click commands; the work is done in ``_units_render`` (templates,
paths, drop-ins), ``_units_install`` (the install plan), ``_installed_units`` (reading units from
disk), ``_credstore`` (credentials) and ``_doctor`` (the checks).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bridgehost._cli_common import bridgectl_options

from ._doctor import run_doctor
from ._units_install import plan_install, print_plan, write_plan
from ._units_render import Scope, render_unit


def _scope_option(func: Any) -> Any:
    func = click.option(
        "--system",
        "scope",
        flag_value="system",
        default=True,
        help="System units in /etc/systemd/system (the default).",
    )(func)
    return click.option(
        "--user",
        "scope",
        flag_value="user",
        help="User units in ~/.config/systemd/user, for `systemctl --user`.",
    )(func)


def _config_override(ctx: click.Context) -> Path | None:
    value = ctx.obj.get("config_path") if isinstance(ctx.obj, dict) else None
    return Path(value) if value else None


@click.command("install-units")
@_scope_option
@click.option(
    "--prefix",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the units into DIR instead of the standard unit directory (packaging, tests).",
)
@click.option(
    "--bridge-user",
    default=None,
    metavar="NAME",
    help="Account bridge-telegram runs as: the owner of the Codex home. "
    "Default: $SUDO_USER, else the current user.",
)
@click.option("--dry-run", is_flag=True, help="Print the units instead of writing them.")
@bridgectl_options
@click.pass_context
def install_units(
    ctx: click.Context,
    scope: Scope,
    prefix: Path | None,
    bridge_user: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Write bridge-gateway.{service,socket}, bridge-telegram.service and bridge.target.

    The units point at this installation's bridgehost executable and at the config file
    (bridgectl --config, default /etc/bridgehost/bridge.config.toml); the socket listens on the
    config's gateway address. Prints what it wrote and the commands to run next.
    """
    if scope == "user" and bridge_user:
        raise click.UsageError("--bridge-user is for system units; user units run as you")
    plan = plan_install(scope, prefix, _config_override(ctx), bridge_user)
    if not dry_run:
        write_plan(plan)
    if as_json:
        click.echo(json.dumps(plan.to_json(dry_run=dry_run, with_text=dry_run), indent=2))
    else:
        print_plan(plan, dry_run)


_LABELS = {"ok": "ok", "warn": "warning", "missing": "MISSING", "unknown": "unknown"}


@click.command("doctor")
@_scope_option
@click.option(
    "--prefix",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Look for the units only in DIR (as installed with install-units --prefix).",
)
@bridgectl_options
@click.pass_context
def doctor(ctx: click.Context, scope: Scope, prefix: Path | None, as_json: bool) -> None:
    """Check what the systemd units need: unit files, config, credentials, state directories.

    Every problem comes with its fix. Exit 0 when nothing is missing, 1 otherwise. Run it with
    sudo to check credentials in /etc/credstore.
    """
    checks = run_doctor(scope, prefix, _config_override(ctx))
    ok = all(check.ok for check in checks)
    if as_json:
        click.echo(
            json.dumps(
                {"ok": ok, "scope": scope, "checks": [check.to_json() for check in checks]},
                indent=2,
            )
        )
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            click.echo(f"{_LABELS[check.status]:8} {check.name:{width}}  {check.detail}")
            if check.fix and check.status != "ok":
                click.echo(f"{'':8} {'':{width}}  fix: {check.fix}")
        missing = sum(not check.ok for check in checks)
        click.echo(
            "\nAll set."
            if ok
            else f"\n{missing} thing{'s' if missing > 1 else ''} missing; see the fixes above."
        )
    if not ok:
        ctx.exit(1)


__all__ = ["doctor", "install_units", "plan_install", "render_unit", "run_doctor"]
