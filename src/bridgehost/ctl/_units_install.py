"""What ``bridgectl install-units`` writes and what it tells the operator to do next."""

from __future__ import annotations

import getpass
import os
import pwd
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from ._credstore import credential_commands, unit_credentials
from ._units_render import (
    GATEWAY,
    PYTHON_DROPIN,
    UNIT_NAMES,
    Scope,
    UnitValues,
    bridgectl_command,
    default_config_path,
    find_console_script,
    listen_address,
    python_home_paths,
    render_python_dropin,
    render_unit,
    unit_dir,
)


@dataclass
class PlannedFile:
    """One file ``install-units`` writes."""

    unit: str
    path: Path
    text: str


@dataclass
class Step:
    """One thing to do after installing, and the commands that do it."""

    do: str
    commands: list[str]


@dataclass
class InstallPlan:
    """Everything ``install-units`` is about to do, and what to do next."""

    scope: Scope
    unit_dir: Path
    values: UnitValues
    files: list[PlannedFile]
    remove: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    next_steps: list[Step] = field(default_factory=list)

    def to_json(self, *, dry_run: bool, with_text: bool) -> dict[str, Any]:
        """The ``--json`` object."""
        files = []
        for planned in self.files:
            item: dict[str, Any] = {"unit": planned.unit, "path": str(planned.path)}
            if with_text:
                item["text"] = planned.text
            files.append(item)
        return {
            "scope": self.scope,
            "unit_dir": str(self.unit_dir),
            "dry_run": dry_run,
            "bridgehost": str(self.values.bridgehost),
            "config": str(self.values.config),
            "listen": self.values.listen,
            "bridge_user": self.values.user,
            "files": files,
            "removed": [str(p) for p in self.remove],
            "notes": self.notes,
            "next": [asdict(step) for step in self.next_steps],
        }


def _bridge_user(name: str | None, env: Mapping[str, str]) -> tuple[str, Path | None, str | None]:
    """(user, home, note): ``name``, else ``$SUDO_USER``, else the current user."""
    user = name or env.get("SUDO_USER") or getpass.getuser()
    try:
        home: Path | None = Path(pwd.getpwnam(user).pw_dir)
    except KeyError:
        return (
            user,
            None,
            f"user {user!r} does not exist on this machine: create it, or pass "
            "--bridge-user NAME (the account that owns the Codex home)",
        )
    note = None
    if user == "root":
        note = (
            "bridge-telegram will run as root, and so will Codex: pass --bridge-user NAME, "
            "the account that owns the Codex home, unless that really is root"
        )
    return user, home, note


def plan_install(
    scope: Scope,
    prefix: Path | None,
    config: Path | None,
    bridge_user: str | None,
    env: Mapping[str, str] | None = None,
) -> InstallPlan:
    """Work out every file ``install-units`` writes, with notes and the next commands."""
    env = os.environ if env is None else env
    target = (prefix or unit_dir(scope, env)).absolute()
    config_path = (config or default_config_path(scope, env)).absolute()
    listen, listen_note = listen_address(config_path)
    notes = [listen_note] if listen_note else []
    user = home = None
    if scope == "system":
        user, home, user_note = _bridge_user(bridge_user, env)
        notes += [user_note] if user_note else []
    credentials = unit_credentials()
    values = UnitValues(
        find_console_script("bridgehost"), config_path, listen, user, home, credentials
    )
    files = [
        PlannedFile(name, target / name, render_unit(name, values, scope)) for name in UNIT_NAMES
    ]
    dropin = target / f"{GATEWAY}.d" / PYTHON_DROPIN
    plan = InstallPlan(scope, target, values, files, notes=notes)
    hidden = python_home_paths() if scope == "system" else []  # user units: read-only homes
    if hidden:
        files.append(PlannedFile(GATEWAY, dropin, render_python_dropin(hidden)))
        notes.append(
            "Python or bridgehost lives under a home directory ("
            + ", ".join(map(str, hidden))
            + "); the gateway gets a drop-in that "
            "shows it despite ProtectHome=. Installing into /opt or /usr/local avoids it."
        )
    elif dropin.is_file():
        plan.remove.append(dropin)
    plan.next_steps = _next_steps(plan)
    return plan


def _next_steps(plan: InstallPlan) -> list[Step]:
    system = plan.scope == "system"
    sudo = "sudo " if system else ""
    ctl = "sudo systemctl" if system else "systemctl --user"
    config = plan.values.config
    steps = []
    if not config.is_file():
        steps.append(
            Step(
                f"Write the configuration to {config} (no secrets in it)",
                [
                    f"{sudo}install -D -m 0644 bridge.config.toml {config}",
                    f"bridgectl --config {config} config check --service none",
                ],
            )
        )
    if system:
        steps.append(
            Step(
                "Add the secrets as credentials, one root-only file each "
                "(`bridgectl config check` says which ones this config needs)",
                credential_commands(
                    dict.fromkeys(n for names in plan.values.credentials.values() for n in names)
                ),
            )
        )
    else:
        dotenv = config.parent / ".env"
        steps.append(
            Step(
                f"Put the secrets, NAME=value lines, in {dotenv}",
                [f"install -m 0600 /dev/null {dotenv}", f"editor {dotenv}"],
            )
        )
    steps += [
        Step(
            "Load the units, start them now and at boot",
            [f"{ctl} daemon-reload", f"{ctl} enable --now bridge.target"],
        ),
        Step(
            "Check the result",
            [
                f"{sudo}{bridgectl_command()} doctor" + ("" if system else " --user"),
                f"{ctl} status bridge-gateway",
                f"journalctl{'' if system else ' --user'} -u bridge-gateway -e",
            ],
        ),
    ]
    return steps


def write_plan(plan: InstallPlan) -> None:
    """Write the planned files (0644) and remove a stale drop-in.

    :raises click.ClickException: when the unit directory is not writable.
    """
    try:
        for planned in plan.files:
            planned.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = planned.path.with_name(f".{planned.path.name}.tmp")
            tmp.write_text(planned.text, encoding="utf-8")
            tmp.chmod(0o644)
            tmp.replace(planned.path)
        for stale in plan.remove:
            stale.unlink(missing_ok=True)
    except PermissionError as exc:
        hint = "run it with sudo" if plan.scope == "system" else "check the directory"
        raise click.ClickException(
            f"cannot write {exc.filename}: permission denied; {hint}, or pass --user or "
            "--prefix DIR"
        ) from None


def print_plan(plan: InstallPlan, dry_run: bool) -> None:
    """What ``install-units`` wrote (or would write), its notes and the next steps, as text."""
    if dry_run:
        for planned in plan.files:
            click.echo(f"# --- would write {planned.path}\n{planned.text}")
    verb = "Would write" if dry_run else "Wrote"
    click.echo(f"{verb} {len(plan.files)} files ({plan.scope} units) to {plan.unit_dir}:")
    for planned in plan.files:
        click.echo(f"  {planned.path}")
    for stale in plan.remove:
        click.echo(f"  {'would remove' if dry_run else 'removed'} {stale} (no longer needed)")
    click.echo(
        f"\n  bridgehost   {plan.values.bridgehost}\n  config       {plan.values.config}"
        f"\n  listen       {plan.values.listen}"
    )
    if plan.values.user is not None:
        click.echo(f"  bridge user  {plan.values.user}")
    if plan.notes:
        click.echo("")
    for note in plan.notes:
        click.echo(f"Note: {note}")
    click.echo("\nNext:")
    for number, step in enumerate(plan.next_steps, 1):
        click.echo(f"  {number}. {step.do}:")
        for command in step.commands:
            click.echo(f"       {command}")
