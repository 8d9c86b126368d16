"""Finding, reading and validating ``bridge.config.toml``."""

from __future__ import annotations

import copy
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bridgehost.config._errors import Loc, dotted, translate
from bridgehost.config._models import BridgeConfig
from bridgehost.config._problems import ConfigError, ConfigProblem
from bridgehost.config._secrets import Secrets

CONFIG_FILE_NAME = "bridge.config.toml"
SYSTEM_CONFIG_PATH = Path("/etc/bridgehost/bridge.config.toml")
"""The last place :func:`find_config_path` looks."""

_MAX_PASSES = 25


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration, the secrets around it, and where it came from.

    :param path: the file read, or ``None`` when none was found (all defaults).
    :param raw: the TOML document as read (``{}`` without a file).
    """

    config: BridgeConfig
    secrets: Secrets
    path: Path | None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def keys_set(self) -> int:
        """How many keys the file sets (leaves of the TOML document)."""
        return _count_leaves(self.raw)


def _count_leaves(node: Any) -> int:
    if isinstance(node, Mapping):
        return sum(_count_leaves(value) for value in node.values())
    return 1


def _existing_file(path: Path, origin: str) -> Path:
    path = path.expanduser().absolute()
    if path.is_file():
        return path
    reason = "is a directory" if path.is_dir() else "does not exist"
    raise ConfigError(
        [
            ConfigProblem(
                origin,
                f"{path} {reason}",
                "check the path, or leave it out to search ./bridge.config.toml and "
                f"{SYSTEM_CONFIG_PATH}",
            )
        ],
        path,
        summary=f"config file not found: {path} ({origin})",
    )


def find_config_path(
    explicit: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Path | None:
    """The config file to read: ``--config``, ``$BRIDGE_CONFIG``, ``./bridge.config.toml``,
    then ``/etc/bridgehost/bridge.config.toml``; ``None`` when there is none (all defaults).

    :raises ConfigError: when ``explicit`` or ``$BRIDGE_CONFIG`` names a file that does not
        exist.
    """
    env = os.environ if env is None else env
    if explicit is not None and str(explicit) != "":
        return _existing_file(Path(explicit), "--config")
    from_env = env.get("BRIDGE_CONFIG", "").strip()
    if from_env:
        return _existing_file(Path(from_env), "BRIDGE_CONFIG")
    local = Path.cwd() / CONFIG_FILE_NAME
    if local.is_file():
        return local
    if SYSTEM_CONFIG_PATH.is_file():
        return SYSTEM_CONFIG_PATH
    return None


def read_toml(path: Path) -> dict[str, Any]:
    """Parse ``path``; syntax errors become a :class:`ConfigError` with file:line:column."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(
            [
                ConfigProblem(
                    str(path),
                    f"cannot read the file: {exc.strerror or exc}",
                    "check that it exists and that this user may read it",
                )
            ],
            path,
            summary=f"{path} cannot be read:",
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                ConfigProblem(
                    str(path),
                    f"is not UTF-8 text ({exc.reason} at byte {exc.start})",
                    "save the file as UTF-8",
                )
            ],
            path,
            summary=f"{path} is not valid TOML:",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if where:
            line, column = where.group(1), where.group(2)
            message = message[: where.start()]
            key, fix = f"{path}:{line}:{column}", f"fix the TOML syntax at line {line}"
        else:
            message = re.sub(r"\s*\(at end of document\)$", "", message)
            key, fix = f"{path}:end", "fix the TOML syntax at the end of the file"
        raise ConfigError(
            [ConfigProblem(key, f"TOML syntax error: {message}", fix)],
            path,
            summary=f"{path} is not valid TOML:",
        ) from None


def _delete(data: dict[str, Any], loc: Loc) -> str | None:
    """Delete the deepest existing key along ``loc``; return its dotted name."""
    node: Any = data
    parent: dict[str, Any] | None = None
    path: list[int | str] = []
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            break
        parent, node = node, node[part]
        path.append(part)
    if parent is None or not path:
        return None
    del parent[str(path[-1])]
    return dotted(path)


def _touches(keys: frozenset[str], removed: set[str]) -> bool:
    return any(k == r or k.startswith((r + ".", r + "[")) for k in keys for r in removed)


def validate_config(
    raw: Mapping[str, Any], *, env: Mapping[str, str] | None = None, path: Path | None = None
) -> BridgeConfig:
    """Validate a TOML document, reporting every problem at once.

    Field errors hide the models' cross-field checks, so each pass drops the keys that failed
    and validates again (with their defaults) until only cross-field problems remain;
    cross-field problems about a dropped key are not reported.

    :raises ConfigError: listing every problem.
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = copy.deepcopy(dict(raw))
    problems: list[ConfigProblem] = []
    removed: set[str] = set()
    config: BridgeConfig | None = None
    for _ in range(_MAX_PASSES):
        try:
            config = BridgeConfig.model_validate(data, context={"env": env})
            break
        except ValidationError as exc:
            progress = False
            for found in translate(exc.errors(include_url=False)):
                if found.remove is None and _touches(found.involved, removed):
                    continue
                if found.problem not in problems:
                    problems.append(found.problem)
                if found.remove is not None and (key := _delete(data, found.remove)):
                    removed.add(key)
                    progress = True
            if not progress:
                break
    if problems or config is None:
        raise ConfigError(problems, path)
    return config


def load_config(
    path: str | Path | None = None, *, env: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Find, read and validate the configuration, and gather the secrets around it.

    :param path: ``--config``; ``None`` searches (see :func:`find_config_path`).
    :param env: the environment (default ``os.environ``): ``BRIDGE_CONFIG``,
        ``CREDENTIALS_DIRECTORY``, ``STATE_DIRECTORY``, ``CODEX_HOME`` and the secrets.
    :raises ConfigError: the file is missing, unreadable, not TOML, or invalid.
    """
    env = os.environ if env is None else env
    config_path = find_config_path(path, env)
    raw = read_toml(config_path) if config_path is not None else {}
    config = validate_config(raw, env=env, path=config_path)
    secrets = Secrets.load(env=env, config_path=config_path)
    return LoadedConfig(config=config, secrets=secrets, path=config_path, raw=raw)
