"""Reading installed unit files the way systemd does: search path, drop-ins, list semantics."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ._units_render import SYSTEM_UNIT_DIR, Scope, unit_dir

SYSTEM_SEARCH = (
    SYSTEM_UNIT_DIR,
    Path("/run/systemd/system"),
    Path("/usr/local/lib/systemd/system"),
    Path("/usr/lib/systemd/system"),
    Path("/lib/systemd/system"),
)


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


def exec_argv(unit: InstalledUnit) -> list[str]:
    """The effective ``ExecStart=`` command line, split (prefixes and ``%%`` undone)."""
    value = unit.last("Service.ExecStart")
    if not value:
        return []
    try:
        argv = shlex.split(value.lstrip("-@:+!"))
    except ValueError:
        argv = value.split()
    return [arg.replace("%%", "%") for arg in argv]


def config_from_unit(unit: InstalledUnit | None) -> Path | None:
    """The ``--config PATH`` the unit's ``ExecStart=`` passes, if any."""
    argv = exec_argv(unit) if unit else []
    for index, arg in enumerate(argv):
        if arg == "--config" and index + 1 < len(argv):
            return Path(argv[index + 1])
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1])
    return None
