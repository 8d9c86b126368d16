"""Unit templates and the values ``install-units`` fills into them.

The templates ship in ``bridgehost/packaging_data/systemd/``; this module finds them, works out
the values of their ``@PLACEHOLDER@``s (console script, config path, listen address, bridge user)
and renders the unit files and the gateway's Python-paths drop-in.
"""

from __future__ import annotations

import importlib.resources
import ipaddress
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import click

from bridgehost import __version__
from bridgehost.config import SYSTEM_CONFIG_PATH, ConfigError, load_config

Scope = Literal["system", "user"]
"""System units (``/etc/systemd/system``) or user units (``systemctl --user``)."""

GATEWAY = "bridge-gateway.service"
SOCKET = "bridge-gateway.socket"
TELEGRAM = "bridge-telegram.service"
TARGET = "bridge.target"
UNIT_NAMES: tuple[str, ...] = (GATEWAY, SOCKET, TELEGRAM, TARGET)
SERVICES: dict[str, str] = {GATEWAY: "gateway", TELEGRAM: "telegram"}
PYTHON_DROPIN = "50-python-paths.conf"
DEFAULT_LISTEN = "127.0.0.1:8890"
HOME_ROOTS = (Path("/home"), Path("/root"), Path("/run/user"))
TMP_ROOTS = (Path("/tmp"), Path("/var/tmp"))  # PrivateTmp= (implied by DynamicUser=) hides them
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
PLACEHOLDER = re.compile(r"@[A-Z]+@")
_HEADER = (
    "# Written by `bridgectl install-units` (bridgehost {version}) from its template.\n"
    "# Reinstalling overwrites this file: put changes in a drop-in "
    "(`systemctl edit {unit}`).\n"
)
HEADER_VERSION = re.compile(r"^# Written by `bridgectl install-units` \(bridgehost ([^)]+)\)")


def template_text(name: str) -> str:
    """The shipped template of unit ``name`` (placeholders unfilled)."""
    resource = importlib.resources.files("bridgehost") / "packaging_data" / "systemd" / name
    return resource.read_text(encoding="utf-8")


def home_dir(env: Mapping[str, str]) -> Path:
    """``$HOME`` from ``env``, else the current user's home."""
    return Path(env.get("HOME") or Path.home())


def unit_dir(scope: Scope, env: Mapping[str, str] | None = None) -> Path:
    """Where ``install-units`` writes by default: ``/etc/systemd/system`` or the user unit dir."""
    env = os.environ if env is None else env
    if scope == "system":
        return SYSTEM_UNIT_DIR
    config_home = env.get("XDG_CONFIG_HOME") or str(home_dir(env) / ".config")
    return Path(config_home) / "systemd" / "user"


def default_config_path(scope: Scope, env: Mapping[str, str] | None = None) -> Path:
    """``/etc/bridgehost/bridge.config.toml``, or ``~/.config/bridgehost/…`` for user units."""
    env = os.environ if env is None else env
    if scope == "system":
        return SYSTEM_CONFIG_PATH
    config_home = env.get("XDG_CONFIG_HOME") or str(home_dir(env) / ".config")
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
    /run/user, which ``ProtectHome=yes`` hides, or under /tmp and /var/tmp, which
    ``PrivateTmp=`` hides; the outermost of each, sorted."""
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
    roots = HOME_ROOTS + TMP_ROOTS
    found = {path.absolute() for path in candidates if _under(path.absolute(), roots)}
    outermost = [p for p in found if not any(o != p and o in p.parents for o in found)]
    return sorted(p for p in outermost if p not in roots)


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
    credentials: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Per unit name, the credentials it loads (``LoadCredential=NAME`` lines)."""

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
        if line.strip() == "@CREDENTIALS@":
            lines += [f"LoadCredential={c}\n" for c in values.credentials.get(name, ())]
            continue
        command_line = line.startswith(("ExecStart=", "#ExecStart="))
        for placeholder, value in values.placeholders(command_line=command_line).items():
            line = line.replace(placeholder, value)
        lines.append(line)
    text = "".join(lines)
    if scope == "user":
        text = _user_mode(text)
    left = sorted(set(PLACEHOLDER.findall(text)))
    if left:
        raise ValueError(f"template {name} has unknown placeholders: {', '.join(left)}")
    return _HEADER.format(version=__version__, unit=name.split(".")[0]) + text


def render_python_dropin(paths: list[Path]) -> str:
    """The gateway drop-in that shows ``paths`` despite ``ProtectHome=``."""
    binds = "\n".join(f"BindReadOnlyPaths={_unit_value(str(p))}" for p in paths)
    under_home = any(_under(p, HOME_ROOTS) for p in paths)
    protect = "ProtectHome=tmpfs\n" if under_home else ""
    return (
        _HEADER.format(version=__version__, unit="bridge-gateway")
        + "# Python or bridgehost lives under a home directory (hidden by ProtectHome=yes) or a\n"
        "# temporary directory (hidden by PrivateTmp=): show just these paths, read-only.\n"
        f"[Service]\n{protect}{binds}\n"
    )


def bridgectl_command() -> str:
    """``bridgectl``, by absolute path when it is not the one on PATH (sudo's PATH differs)."""
    path = Path(sys.executable).absolute().with_name("bridgectl")
    on_path = shutil.which("bridgectl")
    return "bridgectl" if not path.is_file() or (on_path and Path(on_path) == path) else str(path)
