"""Where systemd finds credentials (``LoadCredential=``), and which ones each service needs."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from pathlib import Path

from bridgehost.config import ConfigError, Service, core_secrets, load_config
from bridgehost.plugins import PluginHost

from ._doctor_check import Check
from ._installed_units import InstalledUnit
from ._units_render import GATEWAY, TELEGRAM

CREDSTORE = (Path("/etc/credstore"), Path("/run/credstore"), Path("/usr/lib/credstore"))
CREDSTORE_ENCRYPTED = (
    Path("/run/credstore.encrypted"),
    Path("/etc/credstore.encrypted"),
    Path("/usr/lib/credstore.encrypted"),
)


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


UNIT_SERVICES: tuple[tuple[str, Service], ...] = ((GATEWAY, "gateway"), (TELEGRAM, "telegram"))
"""Each service unit and the service it runs."""


def unit_credentials(host: PluginHost | None = None) -> dict[str, list[str]]:
    """Per service unit, the credentials it loads: bridgehost's own, then every one an
    installed provider declares for that service."""
    host = host or PluginHost.load()
    return {
        unit: list(dict.fromkeys([*core_secrets(True, service), *host.declared_secrets(service)]))
        for unit, service in UNIT_SERVICES
    }


def needed_secrets(config_path: Path | None) -> dict[str, set[str]]:
    """Per service unit, the secrets it needs with this config (all it loads when unreadable)."""
    try:
        config = load_config(config_path, env={}).config if config_path else None
    except ConfigError:
        config = None
    if config is None:
        return {unit: set(names) for unit, names in unit_credentials().items()}
    host = PluginHost.for_config(config)
    needed: dict[str, set[str]] = {}
    for unit, service in UNIT_SERVICES:
        core = core_secrets(config.realtime.enabled, service)
        needed[unit] = {*core, *(name for name, _ in host.secret_needs(config, service))}
    return needed


def credential_sources(unit: InstalledUnit) -> dict[str, tuple[bool, str]]:
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


def environment_names(unit: InstalledUnit) -> set[str]:
    """Variable names the unit sets with ``Environment=`` or reads from ``EnvironmentFile=``."""
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


def find_credential(encrypted: bool, source: str) -> tuple[Path | None, list[Path], bool]:
    """Look for credential ``source`` as systemd would: (found, places looked, permission
    denied somewhere)."""
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


def credential_checks(unit: InstalledUnit, needed: set[str]) -> list[Check]:
    """Doctor's findings for each secret in ``needed`` that service ``unit`` should load."""
    sources = credential_sources(unit)
    from_env = environment_names(unit)
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
        found, looked, denied = find_credential(encrypted, source)
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
