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
"""

from __future__ import annotations

import getpass
import importlib.resources
import ipaddress
import json
import os
import pwd
import re
import shlex
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import click

from bridgehost import __version__
from bridgehost.config import KNOWN_SECRETS, SYSTEM_CONFIG_PATH, ConfigError, load_config

Scope = Literal["system", "user"]

GATEWAY = "bridge-gateway.service"
SOCKET = "bridge-gateway.socket"
TELEGRAM = "bridge-telegram.service"
TARGET = "bridge.target"
UNIT_NAMES: tuple[str, ...] = (GATEWAY, SOCKET, TELEGRAM, TARGET)
SERVICES: dict[str, str] = {GATEWAY: "gateway", TELEGRAM: "telegram"}
PYTHON_DROPIN = "50-python-paths.conf"
DEFAULT_LISTEN = "127.0.0.1:8890"
HOME_ROOTS = (Path("/home"), Path("/root"), Path("/run/user"))
CREDSTORE = (Path("/etc/credstore"), Path("/run/credstore"), Path("/usr/lib/credstore"))
CREDSTORE_ENCRYPTED = (
    Path("/run/credstore.encrypted"),
    Path("/etc/credstore.encrypted"),
    Path("/usr/lib/credstore.encrypted"),
)
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
SYSTEM_SEARCH = (
    SYSTEM_UNIT_DIR,
    Path("/run/systemd/system"),
    Path("/usr/local/lib/systemd/system"),
    Path("/usr/lib/systemd/system"),
    Path("/lib/systemd/system"),
)
_PLACEHOLDER = re.compile(r"@[A-Z]+@")
_HEADER = (
    "# Written by `bridgectl install-units` (bridgehost {version}) from its template.\n"
    "# Reinstalling overwrites this file: put changes in a drop-in "
    "(`systemctl edit {unit}`).\n"
)
_HEADER_VERSION = re.compile(r"^# Written by `bridgectl install-units` \(bridgehost ([^)]+)\)")


# --- templates and values ------------------------------------------------------------------------


def template_text(name: str) -> str:
    """The shipped template of unit ``name`` (placeholders unfilled)."""
    resource = importlib.resources.files("bridgehost") / "packaging_data" / "systemd" / name
    return resource.read_text(encoding="utf-8")


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or Path.home())


def unit_dir(scope: Scope, env: Mapping[str, str] | None = None) -> Path:
    """Where ``install-units`` writes by default: ``/etc/systemd/system`` or the user unit dir."""
    env = os.environ if env is None else env
    if scope == "system":
        return SYSTEM_UNIT_DIR
    config_home = env.get("XDG_CONFIG_HOME") or str(_home(env) / ".config")
    return Path(config_home) / "systemd" / "user"


def default_config_path(scope: Scope, env: Mapping[str, str] | None = None) -> Path:
    """``/etc/bridgehost/bridge.config.toml``, or ``~/.config/bridgehost/…`` for user units."""
    env = os.environ if env is None else env
    if scope == "system":
        return SYSTEM_CONFIG_PATH
    config_home = env.get("XDG_CONFIG_HOME") or str(_home(env) / ".config")
    return Path(config_home) / "bridgehost" / "bridge.config.toml"


def find_console_script(name: str = "bridgehost") -> Path:
    """The console script ``name`` beside ``sys.executable`` (the running install's own).

    :raises click.ClickException: when it is not there (bridgehost was not installed as a
        distribution, e.g. run from a source tree).
    """
    path = Path(sys.executable).absolute().with_name(name)
    if path.is_file() and os.access(path, os.X_OK):
        return path
    raise click.ClickException(
        f"no {name} executable beside {sys.executable}: install bridgehost (pip install "
        "bridgehost) into this Python's environment, then run bridgectl from it"
    )


def listen_address(config_path: Path) -> tuple[str, str | None]:
    """``ListenStream=`` for the config's ``gateway_host:gateway_port``, and a note if defaulted."""
    if not config_path.is_file():
        return (
            DEFAULT_LISTEN,
            f"{config_path} does not exist yet: the socket listens on "
            f"{DEFAULT_LISTEN}, the default gateway address",
        )
    try:
        realtime = load_config(config_path).config.realtime
    except ConfigError as exc:
        return DEFAULT_LISTEN, (
            f"{config_path} is not valid ({str(exc).splitlines()[0]}): the "
            f"socket listens on {DEFAULT_LISTEN}, the default"
        )
    return format_listen(realtime.gateway_host, realtime.gateway_port), None


def format_listen(host: str, port: int) -> str:
    """``127.0.0.1:8890`` / ``[::1]:8890``; ``localhost`` becomes ``127.0.0.1``.

    :raises click.ClickException: for a host name, which ``ListenStream=`` cannot take.
    """
    host = host.strip("[]")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise click.ClickException(
            f"realtime.gateway_host = {host!r} is not an IP address, which the socket unit "
            "(ListenStream=) needs: use 127.0.0.1 or another address of this machine"
        ) from None
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def python_home_paths() -> list[Path]:
    """Directories this bridgehost needs (Python, its venv, the package) under /home, /root or
    /run/user, which ``ProtectHome=yes`` hides; the outermost of each, sorted."""
    import bridgehost

    candidates = {
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.exec_prefix),
        Path(sys.base_exec_prefix),
        Path(os.path.realpath(sys.executable)).parent.parent,
        Path(bridgehost.__file__).resolve().parent.parent,
    }
    candidates |= {Path(entry) for entry in sys.path if entry and Path(entry).is_dir()}
    found = {path.absolute() for path in candidates if _under(path.absolute(), HOME_ROOTS)}
    outermost = [p for p in found if not any(o != p and o in p.parents for o in found)]
    return sorted(p for p in outermost if p not in HOME_ROOTS)


def _unit_value(value: str) -> str:
    """A value as unit files need it: ``%`` escaped (specifiers)."""
    return value.replace("%", "%%")


def _exec_path(path: Path) -> str:
    """A path for ``ExecStart=``: quoted when it has spaces or quotes."""
    text = _unit_value(str(path))
    if re.search(r"[\s\"'\\]", text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


@dataclass
class UnitValues:
    """What the placeholders become."""

    bridgehost: Path
    config: Path
    listen: str
    user: str | None
    home: Path | None

    def placeholders(self, *, command_line: bool = False) -> dict[str, str]:
        """``@NAME@`` → its text in a unit file; paths quoted as needed on command lines."""
        user = self.user or ""
        path = _exec_path if command_line else (lambda p: _unit_value(str(p)))
        return {
            "@BRIDGEHOST@": path(self.bridgehost),
            "@CONFIG@": path(self.config),
            "@LISTEN@": self.listen,
            "@USER@": _unit_value(user),
            "@HOME@": _unit_value(str(self.home or f"/home/{user}")),
        }


_USER_MODE_DROP = re.compile(r"^(User|DynamicUser|LoadCredential|LoadCredentialEncrypted)=")


def _user_mode(text: str) -> str:
    """Adapt a system unit to a user manager: no accounts, credentials or system targets."""
    lines = []
    for line in text.splitlines():
        if _USER_MODE_DROP.match(line):
            continue
        if line.startswith(("Wants=", "After=")):
            names = [n for n in line.split("=", 1)[1].split() if n != "network-online.target"]
            if not names:
                continue
            line = line.split("=", 1)[0] + "=" + " ".join(names)
        line = line.replace("WantedBy=multi-user.target", "WantedBy=default.target")
        if line == "ProtectHome=yes":
            line = "ProtectHome=read-only"
        lines.append(line)
    return "\n".join(lines) + "\n"


def render_unit(name: str, values: UnitValues, scope: Scope = "system") -> str:
    """The unit file ``name`` as ``install-units`` writes it.

    :raises ValueError: when a placeholder is left (a template bug).
    """
    lines = []
    for line in template_text(name).splitlines(keepends=True):
        command_line = line.startswith(("ExecStart=", "#ExecStart="))
        for placeholder, value in values.placeholders(command_line=command_line).items():
            line = line.replace(placeholder, value)
        lines.append(line)
    text = "".join(lines)
    if scope == "user":
        text = _user_mode(text)
    left = sorted(set(_PLACEHOLDER.findall(text)))
    if left:
        raise ValueError(f"template {name} has unknown placeholders: {', '.join(left)}")
    return _HEADER.format(version=__version__, unit=name.split(".")[0]) + text


def render_python_dropin(paths: list[Path]) -> str:
    """The gateway drop-in that shows ``paths`` despite ``ProtectHome=``."""
    binds = "\n".join(f"BindReadOnlyPaths={_unit_value(str(p))}" for p in paths)
    return (
        _HEADER.format(version=__version__, unit="bridge-gateway")
        + "# Python or bridgehost lives under a home directory, which ProtectHome=yes hides from\n"
        "# the gateway: mount empty, read-only home directories instead and show just these.\n"
        f"[Service]\nProtectHome=tmpfs\n{binds}\n"
    )


# --- install-units -------------------------------------------------------------------------------


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


def credential_commands(names: Iterable[str]) -> list[str]:
    """Shell commands that put each secret into ``/etc/credstore/NAME`` (root-only files)."""
    commands = ["sudo install -d -m 0700 /etc/credstore"]
    for name in names:
        if name == "REALTIME_CONTROL_SECRET":  # nobody types this one: generate it
            commands.append(
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32), "
                f'end="")\' | sudo install -m 0600 /dev/stdin /etc/credstore/{name}'
            )
        else:
            commands.append(
                f'systemd-ask-password -n "{name}:" | sudo install -m 0600 '
                f"/dev/stdin /etc/credstore/{name}"
            )
    return commands


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
    values = UnitValues(find_console_script("bridgehost"), config_path, listen, user, home)
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


def _bridgectl() -> str:
    """``bridgectl``, by absolute path when it is not the one on PATH (sudo's PATH differs)."""
    path = Path(sys.executable).absolute().with_name("bridgectl")
    on_path = shutil.which("bridgectl")
    return "bridgectl" if not path.is_file() or (on_path and Path(on_path) == path) else str(path)


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
                "(OPENAI_API_KEY only for the openai backend)",
                credential_commands(KNOWN_SECRETS),
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
                f"{sudo}{_bridgectl()} doctor" + ("" if system else " --user"),
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


def _print_plan(plan: InstallPlan, dry_run: bool) -> None:
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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
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
        _print_plan(plan, dry_run)


# --- reading installed units ---------------------------------------------------------------------


def parse_unit(text: str, into: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """``Section.Key`` → values, with systemd's list semantics (an empty value resets)."""
    result = into if into is not None else {}
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        name = f"{section}.{key.strip()}"
        value = value.strip()
        if value:
            result.setdefault(name, []).append(value)
        else:
            result[name] = []
    return result


@dataclass
class InstalledUnit:
    """A unit file found on disk, merged with its drop-ins."""

    name: str
    path: Path
    text: str
    settings: dict[str, list[str]]
    dropins: list[Path]

    def get(self, key: str) -> list[str]:
        """Every value of ``Section.Key``."""
        return self.settings.get(key, [])

    def last(self, key: str) -> str | None:
        """The effective value of a single-valued ``Section.Key``."""
        values = self.get(key)
        return values[-1] if values else None


def search_dirs(
    scope: Scope, prefix: Path | None, env: Mapping[str, str] | None = None
) -> list[Path]:
    """Unit directories ``doctor`` looks in, most important first."""
    env = os.environ if env is None else env
    if prefix is not None:
        return [prefix.absolute()]
    if scope == "user":
        return [unit_dir("user", env), Path("/etc/systemd/user"), Path("/usr/lib/systemd/user")]
    return list(SYSTEM_SEARCH)


def find_unit(name: str, dirs: list[Path]) -> InstalledUnit | None:
    """Unit ``name`` from the first directory that has it, plus every ``name.d/*.conf``."""
    path = next((d / name for d in dirs if (d / name).is_file()), None)
    if path is None:
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    dropins: dict[str, Path] = {}
    for directory in reversed(dirs):  # a higher-priority directory overrides the same file name
        conf_dir = directory / f"{name}.d"
        if conf_dir.is_dir():
            dropins.update({p.name: p for p in conf_dir.glob("*.conf") if p.is_file()})
    ordered = [dropins[key] for key in sorted(dropins)]
    settings = parse_unit(text)
    for dropin in ordered:
        parse_unit(dropin.read_text(encoding="utf-8", errors="replace"), settings)
    return InstalledUnit(name, path, text, settings, ordered)


def _exec_argv(unit: InstalledUnit) -> list[str]:
    value = unit.last("Service.ExecStart")
    if not value:
        return []
    try:
        argv = shlex.split(value.lstrip("-@:+!"))
    except ValueError:
        argv = value.split()
    return [arg.replace("%%", "%") for arg in argv]


def _config_from_unit(unit: InstalledUnit | None) -> Path | None:
    argv = _exec_argv(unit) if unit else []
    for index, arg in enumerate(argv):
        if arg == "--config" and index + 1 < len(argv):
            return Path(argv[index + 1])
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1])
    return None


# --- doctor --------------------------------------------------------------------------------------


@dataclass
class Check:
    """One line of the doctor's report; ``status`` is ``ok``, ``warn``, ``missing`` or
    ``unknown`` (could not look, e.g. credentials without root)."""

    name: str
    status: Literal["ok", "warn", "missing", "unknown"]
    detail: str
    fix: str | None = None

    @property
    def ok(self) -> bool:
        """False only for ``missing``."""
        return self.status != "missing"

    def to_json(self) -> dict[str, Any]:
        """``{"name", "status", "ok", "detail", "fix"}``."""
        return {**asdict(self), "ok": self.ok}


def _install_fix(scope: Scope, prefix: Path | None) -> str:
    sudo = "sudo " if scope == "system" else ""
    where = f" --prefix {prefix}" if prefix else ""
    user = " --user" if scope == "user" else ""
    bridgectl = _bridgectl()
    ctl = "sudo systemctl" if scope == "system" else "systemctl --user"
    return f"{sudo}{bridgectl} install-units{user}{where}, then {ctl} daemon-reload"


def _check_unit(
    name: str, unit: InstalledUnit | None, dirs: list[Path], scope: Scope, prefix: Path | None
) -> list[Check]:
    fix = _install_fix(scope, prefix)
    if unit is None:
        return [Check(f"unit {name}", "missing", "not found in " + ", ".join(map(str, dirs)), fix)]
    left = sorted(set(_PLACEHOLDER.findall(unit.text)))
    if left:
        return [
            Check(
                f"unit {name}",
                "missing",
                f"{unit.path} is the raw template (still has {', '.join(left)})",
                fix,
            )
        ]
    checks = [Check(f"unit {name}", "ok", str(unit.path))]
    version = _HEADER_VERSION.search(unit.text)
    if version and version.group(1) != __version__:
        checks.append(
            Check(
                f"unit {name} version",
                "warn",
                f"written by bridgehost {version.group(1)}, this is {__version__}",
                fix,
            )
        )
    argv = _exec_argv(unit)
    if argv and not (Path(argv[0]).is_file() and os.access(argv[0], os.X_OK)):
        checks.append(
            Check(
                f"unit {name} executable",
                "missing",
                f"ExecStart= runs {argv[0]}, which does not exist (moved or upgraded "
                "into a new environment?)",
                fix,
            )
        )
    user = unit.last("Service.User")
    if user and scope == "system":
        try:
            pwd.getpwnam(user)
        except KeyError:
            checks.append(
                Check(
                    f"unit {name} user",
                    "missing",
                    f"User={user} does not exist",
                    "rerun install-units with --bridge-user NAME (the owner of the Codex home)",
                )
            )
    return checks


def _config_checks(path: Path, scope: Scope, socket: InstalledUnit | None) -> list[Check]:
    if not path.is_file():
        return [
            Check(
                "config",
                "missing",
                f"{path} does not exist",
                f"write it (start from bridge.config.toml.example; no secrets in it), "
                f"then check it: bridgectl --config {path} config check --service none",
            )
        ]
    checks = [Check("config", "ok", str(path))]
    if scope == "system" and not path.stat().st_mode & 0o004:
        checks.append(
            Check(
                "config readable",
                "missing",
                f"{path} is not world-readable, and the gateway runs as a dynamic user",
                f"sudo chmod 644 {path} (secrets belong in credentials, not in this file)",
            )
        )
    try:
        loaded = load_config(path, env={})
    except ConfigError as exc:
        checks.append(
            Check(
                "config valid",
                "missing",
                str(exc).splitlines()[0],
                f"bridgectl --config {path} config check --service none",
            )
        )
        return checks
    if scope == "system" and "root" in loaded.raw.get("storage", {}):
        checks.append(
            Check(
                "config storage.root",
                "warn",
                f"storage.root = {loaded.config.storage.root}: both services would "
                "share it and the gateway may not write there (ProtectSystem=strict)",
                "remove storage.root so each service uses its StateDirectory=",
            )
        )
    if socket is not None:
        try:
            want = format_listen(
                loaded.config.realtime.gateway_host, loaded.config.realtime.gateway_port
            )
        except click.ClickException as exc:
            return [
                *checks,
                Check(
                    "socket address",
                    "missing",
                    exc.message,
                    "set realtime.gateway_host to an IP address",
                ),
            ]
        have = socket.get("Socket.ListenStream")
        if have and want not in have:
            checks.append(
                Check(
                    "socket address",
                    "missing",
                    f"{SOCKET} listens on {', '.join(have)} but the config says {want}",
                    "run bridgectl install-units again",
                )
            )
    return checks


def needed_secrets(config_path: Path | None) -> dict[str, set[str]]:
    """Per service unit, the secrets it needs with this config (all of them when unreadable)."""
    try:
        config = load_config(config_path, env={}).config if config_path else None
    except ConfigError:
        config = None
    if config is None:
        return {GATEWAY: set(KNOWN_SECRETS), TELEGRAM: set(KNOWN_SECRETS)}
    enabled = config.realtime.enabled
    backend = {"OPENAI_API_KEY"} if config.realtime.backend == "openai" else set()
    calls = {"REALTIME_CONTROL_SECRET", *backend} if enabled else set()
    return {
        GATEWAY: {"TELEGRAM_BOT_TOKEN", *calls} if enabled else set(),
        TELEGRAM: {"TELEGRAM_BOT_TOKEN", *calls},
    }


def _credential_sources(unit: InstalledUnit) -> dict[str, tuple[bool, str]]:
    """ID → (encrypted, path-or-ID) from ``LoadCredential[Encrypted]=``."""
    sources: dict[str, tuple[bool, str]] = {}
    for key, encrypted in (
        ("Service.LoadCredential", False),
        ("Service.LoadCredentialEncrypted", True),
    ):
        for value in unit.get(key):
            ident, _, path = value.partition(":")
            sources[ident] = (encrypted, path or ident)
    return sources


def _env_file_names(unit: InstalledUnit) -> set[str]:
    names = {
        v.split("=", 1)[0]
        for value in unit.get("Service.Environment")
        for v in shlex.split(value)
        if "=" in v
    }
    for value in unit.get("Service.EnvironmentFile"):
        path = Path(value.lstrip("-"))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        names |= {
            line.split("=", 1)[0].removeprefix("export ").strip()
            for line in text.splitlines()
            if "=" in line and not line.startswith("#")
        }
    return names


def _find_credential(encrypted: bool, source: str) -> tuple[Path | None, list[Path], bool]:
    """(found, places looked, permission denied somewhere)."""
    if source.startswith("/"):
        candidates = [Path(source)]
    else:
        candidates = [d / source for d in (CREDSTORE_ENCRYPTED if encrypted else ())]
        candidates += [d / source for d in CREDSTORE]
    denied = False
    for path in candidates:
        try:
            if path.is_file() and path.stat().st_size > 0:
                return path, candidates, False
        except PermissionError:
            denied = True
        if path.parent.is_dir() and not os.access(path.parent, os.R_OK | os.X_OK):
            denied = True
    return None, candidates, denied


def _credential_checks(unit: InstalledUnit, needed: set[str]) -> list[Check]:
    sources = _credential_sources(unit)
    from_env = _env_file_names(unit)
    checks = []
    for name in sorted(needed):
        label = f"credential {name} ({unit.name.removesuffix('.service')})"
        if name not in sources:
            if name in from_env:
                checks.append(Check(label, "ok", "from Environment=/EnvironmentFile="))
            else:
                checks.append(
                    Check(
                        label,
                        "missing",
                        f"{unit.name} loads no credential {name}",
                        f"systemctl edit {unit.name}: add LoadCredential={name}",
                    )
                )
            continue
        encrypted, source = sources[name]
        found, looked, denied = _find_credential(encrypted, source)
        if found is not None:
            checks.append(Check(label, "ok", str(found)))
        elif denied:
            checks.append(
                Check(
                    label,
                    "unknown",
                    "cannot look into "
                    + ", ".join(sorted({str(p.parent) for p in looked}))
                    + f" as uid {os.getuid()}",
                    "sudo bridgectl doctor",
                )
            )
        else:
            fix = (
                f"sudo install -m 0600 /dev/stdin {looked[0]} < your-secret-file"
                if source.startswith("/")
                else "; ".join(credential_commands([name]))
            )
            if encrypted:
                fix = f"sudo systemd-creds encrypt --name={name} - {CREDSTORE_ENCRYPTED[1] / name}"
            checks.append(
                Check(label, "missing", "not in " + ", ".join(str(p.parent) for p in looked), fix)
            )
    return checks


def state_root(scope: Scope, env: Mapping[str, str] | None = None) -> Path:
    """Where ``StateDirectory=`` puts state: ``/var/lib`` or ``$XDG_STATE_HOME``."""
    env = os.environ if env is None else env
    if scope == "system":
        return Path("/var/lib")
    return Path(env.get("XDG_STATE_HOME") or _home(env) / ".local" / "state")


def _state_checks(unit: InstalledUnit, scope: Scope) -> list[Check]:
    checks = []
    for value in unit.get("Service.StateDirectory"):
        for name in value.split():
            path = state_root(scope) / name.split(":")[0]
            if path.is_dir():
                checks.append(Check(f"state {path}", "ok", f"{unit.name} keeps its state here"))
            else:
                ctl = "sudo systemctl" if scope == "system" else "systemctl --user"
                checks.append(
                    Check(
                        f"state {path}",
                        "missing",
                        f"does not exist yet (StateDirectory={name} of {unit.name})",
                        f"{ctl} start {unit.name} creates it",
                    )
                )
    return checks


def _python_checks(unit: InstalledUnit) -> list[Check]:
    hidden = python_home_paths()
    if not hidden or unit.last("Service.ProtectHome") not in ("yes", "true", "1", "on"):
        return []
    bound = " ".join(unit.get("Service.BindReadOnlyPaths") + unit.get("Service.BindPaths"))
    missing = [p for p in hidden if str(p) not in bound]
    if not missing:
        return []
    return [
        Check(
            "gateway can see Python",
            "missing",
            f"ProtectHome=yes hides {', '.join(map(str, missing))} from {unit.name}",
            "run bridgectl install-units again (it writes the drop-in "
            f"{GATEWAY}.d/{PYTHON_DROPIN}), or install bridgehost outside /home and /root",
        )
    ]


def _merge(checks: list[Check]) -> list[Check]:
    """One line for the same finding about several units: ``credential X (a, b)``."""
    merged: dict[tuple[str, str, str, str | None], list[str]] = {}
    for check in checks:
        base, _, unit = check.name.partition(" (")
        key = (base, check.status, check.detail, check.fix)
        merged.setdefault(key, []).append(unit.rstrip(")"))
    return [
        Check(f"{base} ({', '.join(units)})" if all(units) else base, status, detail, fix)
        for (base, status, detail, fix), units in merged.items()
    ]


def run_doctor(scope: Scope, prefix: Path | None, config: Path | None) -> list[Check]:
    """Every check, in report order: units, config, credentials, state, Python."""
    dirs = search_dirs(scope, prefix)
    units = {name: find_unit(name, dirs) for name in UNIT_NAMES}
    checks: list[Check] = []
    for name in UNIT_NAMES:
        checks += _check_unit(name, units[name], dirs, scope, prefix)
    config_path = (
        config
        or _config_from_unit(units[GATEWAY])
        or _config_from_unit(units[TELEGRAM])
        or default_config_path(scope)
    )
    checks += _config_checks(config_path.absolute(), scope, units[SOCKET])
    needed = needed_secrets(config_path if config_path.is_file() else None)
    services = [unit for name in SERVICES if (unit := units[name]) is not None]
    if scope == "system":
        found = [c for unit in services for c in _credential_checks(unit, needed[unit.name])]
        checks += _merge(found)
    for unit in services:
        checks += _state_checks(unit, scope)
    if units[GATEWAY] is not None and scope == "system":
        checks += _python_checks(units[GATEWAY])
    return checks


_LABELS = {"ok": "ok", "warn": "warning", "missing": "MISSING", "unknown": "unknown"}


@click.command("doctor")
@_scope_option
@click.option(
    "--prefix",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Look for the units only in DIR (as installed with install-units --prefix).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
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
