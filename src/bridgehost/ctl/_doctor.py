"""The checks of ``bridgectl doctor``: units, config, credentials, state directories, Python."""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from pathlib import Path

import click

from bridgehost import __version__
from bridgehost.config import ConfigError, load_config

from ._credstore import credential_checks, needed_secrets
from ._doctor_check import Check, CheckStatus
from ._installed_units import InstalledUnit, config_from_unit, exec_argv, find_unit, search_dirs
from ._units_render import (
    GATEWAY,
    HEADER_VERSION,
    PLACEHOLDER,
    PYTHON_DROPIN,
    SERVICES,
    SOCKET,
    TELEGRAM,
    UNIT_NAMES,
    Scope,
    bridgectl_command,
    default_config_path,
    format_listen,
    home_dir,
    python_home_paths,
)


def _install_fix(scope: Scope, prefix: Path | None) -> str:
    sudo = "sudo " if scope == "system" else ""
    where = f" --prefix {prefix}" if prefix else ""
    user = " --user" if scope == "user" else ""
    bridgectl = bridgectl_command()
    ctl = "sudo systemctl" if scope == "system" else "systemctl --user"
    return f"{sudo}{bridgectl} install-units{user}{where}, then {ctl} daemon-reload"


def _check_unit(
    name: str, unit: InstalledUnit | None, dirs: list[Path], scope: Scope, prefix: Path | None
) -> list[Check]:
    fix = _install_fix(scope, prefix)
    if unit is None:
        return [Check(f"unit {name}", "missing", "not found in " + ", ".join(map(str, dirs)), fix)]
    left = sorted(set(PLACEHOLDER.findall(unit.text)))
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
    version = HEADER_VERSION.search(unit.text)
    if version and version.group(1) != __version__:
        checks.append(
            Check(
                f"unit {name} version",
                "warn",
                f"written by bridgehost {version.group(1)}, this is {__version__}",
                fix,
            )
        )
    argv = exec_argv(unit)
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


def state_root(scope: Scope, env: Mapping[str, str] | None = None) -> Path:
    """Where ``StateDirectory=`` puts state: ``/var/lib`` or ``$XDG_STATE_HOME``."""
    env = os.environ if env is None else env
    if scope == "system":
        return Path("/var/lib")
    return Path(env.get("XDG_STATE_HOME") or home_dir(env) / ".local" / "state")


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


def _mcp_checks(config_path: Path) -> list[Check]:
    """Whether ``bridgehost mcp`` is registered in the configured Codex home."""
    from bridgehost.ctl.mcp_cmd import registration_check

    try:
        loaded = load_config(config_path)
    except ConfigError:
        return []
    return [registration_check(loaded.config.codex.home)]


def _merge(checks: list[Check]) -> list[Check]:
    """One line for the same finding about several units: ``credential X (a, b)``."""
    merged: dict[tuple[str, CheckStatus, str, str | None], list[str]] = {}
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
        or config_from_unit(units[GATEWAY])
        or config_from_unit(units[TELEGRAM])
        or default_config_path(scope)
    )
    checks += _config_checks(config_path.absolute(), scope, units[SOCKET])
    checks += _mcp_checks(config_path)
    needed = needed_secrets(config_path if config_path.is_file() else None)
    services = [unit for name in SERVICES if (unit := units[name]) is not None]
    if scope == "system":
        found = [c for unit in services for c in credential_checks(unit, needed[unit.name])]
        checks += _merge(found)
    for unit in services:
        checks += _state_checks(unit, scope)
    if (gateway := units[GATEWAY]) is not None and scope == "system":
        checks += _python_checks(gateway)
    return checks
