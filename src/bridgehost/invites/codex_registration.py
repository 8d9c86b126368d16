"""Registering ``bridgehost mcp`` in the Codex home's ``config.toml``.

The table is ``[mcp_servers.bridgehost]``. A new table is appended as text after one blank line;
an existing one is replaced in place through tomlkit, which keeps the rest of the file
(comments, order, spacing) byte for byte. Uninstalling removes exactly those lines again, so
install then uninstall gives back the original file. Installing twice changes nothing.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from bridgehost.basics import write_atomically

SERVER_KEY = "bridgehost"
TABLE = "mcp_servers"
STARTUP_TIMEOUT_SEC = 20
HEADER = re.compile(r"^\[mcp_servers\.bridgehost\][ \t]*(#.*)?$")
ANY_HEADER = re.compile(r"^[ \t]*\[")
TOOL_SLACK_SEC = 30


class RegistrationError(RuntimeError):
    """The Codex config cannot be read or written; the message names the fix."""


@dataclass(frozen=True)
class Registration:
    """What ``[mcp_servers.bridgehost]`` holds, or should."""

    command: str
    args: list[str]
    tool_timeout_sec: int

    def table(self) -> Any:
        """As a TOML table."""
        table = tomlkit.table()
        table.add("command", self.command)
        table.add("args", self.args)
        table.add("startup_timeout_sec", STARTUP_TIMEOUT_SEC)
        table.add("tool_timeout_sec", self.tool_timeout_sec)
        return table


def bridgehost_executable() -> str:
    """The absolute path of this installation's ``bridgehost`` (beside the interpreter)."""
    beside = Path(sys.executable).absolute().with_name("bridgehost")
    if beside.is_file():
        return str(beside)
    found = shutil.which("bridgehost")
    if found:
        return str(Path(found).absolute())
    raise RegistrationError(
        f"cannot find the bridgehost command beside {sys.executable} or on PATH; reinstall "
        "bridgehost (pip install .) into this environment"
    )


def wanted(config_path: Path, longest_wait_s: float) -> Registration:
    """The registration for this installation and config."""
    return Registration(
        bridgehost_executable(),
        ["mcp", "--config", str(config_path.absolute())],
        int(longest_wait_s) + TOOL_SLACK_SEC,
    )


def config_file(codex_home: Path) -> Path:
    """``{codex_home}/config.toml``."""
    return Path(codex_home).expanduser() / "config.toml"


def _read(path: Path) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(_text(path))
    except TOMLKitError as exc:
        raise RegistrationError(
            f"{path} is not valid TOML ({exc}); fix it (codex reads it too) and try again"
        ) from exc


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8") if path.exists() else ""
    except OSError as exc:
        raise RegistrationError(f"cannot read {path}: {exc}") from exc


def _write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
    except OSError as exc:
        raise RegistrationError(f"cannot write {path}: {exc}") from exc


def registered(codex_home: Path) -> dict[str, Any] | None:
    """The current ``[mcp_servers.bridgehost]`` table as plain data, or None."""
    servers = _read(config_file(codex_home)).get(TABLE)
    if not isinstance(servers, dict) or SERVER_KEY not in servers:
        return None
    entry = servers[SERVER_KEY]
    return dict(entry.unwrap()) if hasattr(entry, "unwrap") else dict(entry)


def install(codex_home: Path, registration: Registration) -> bool:
    """Write the table; False when it was already exactly this (nothing written)."""
    path = config_file(codex_home)
    document = _read(path)
    current = registered(codex_home)
    fresh = registration.table()
    if current == fresh.unwrap():
        return False
    servers = document.get(TABLE)
    if servers is not None and not isinstance(servers, dict):
        raise RegistrationError(f"{path}: {TABLE} is not a table; fix it and try again")
    if servers is not None and SERVER_KEY in servers:
        servers[SERVER_KEY] = fresh
        _write_text(path, tomlkit.dumps(document))
        return True
    text = _text(path)
    if text and not text.endswith("\n"):
        text += "\n"
    lines = [f"[{TABLE}.{SERVER_KEY}]", *tomlkit.dumps(fresh).splitlines()]
    _write_text(path, text + ("\n" if text else "") + "\n".join(lines) + "\n")
    return True


def uninstall(codex_home: Path) -> bool:
    """Remove the table; False when it was not there."""
    path = config_file(codex_home)
    document = _read(path)
    servers = document.get(TABLE)
    if not isinstance(servers, dict) or SERVER_KEY not in servers:
        return False
    lines = _text(path).splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if HEADER.match(line.rstrip("\r\n"))), None)
    if start is None:  # written inline or as a dotted key: let tomlkit remove it
        del servers[SERVER_KEY]
        _write_text(path, tomlkit.dumps(document))
        return True
    end = next((i for i in range(start + 1, len(lines)) if ANY_HEADER.match(lines[i])), len(lines))
    if end == len(lines) and start > 0 and not lines[start - 1].strip():
        start -= 1
    _write_text(path, "".join(lines[:start] + lines[end:]))
    return True
