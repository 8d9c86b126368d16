"""Helpers for the operator-command tests: run ``bridgectl`` as a process next to a real gateway.

The gateway comes from ``tests/gateway/conftest.py``; test modules get its ``gateway_factory``
fixture with ``pytest_plugins = ("ctl_fixtures",)``. The CLI runs in a worker thread
(``asyncio.to_thread``) because the gateway serves from the test's own event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.conftest import (  # noqa: F401  (re-exported for the test modules)
    BOT_TOKEN,
    CONTROL_SECRET,
    RunningGateway,
    free_port,
    write_config,
)

_SCRUB = (
    "TELEGRAM_BOT_TOKEN",
    "OPENAI_API_KEY",
    "REALTIME_CONTROL_SECRET",
    "BRIDGE_CONFIG",
    "CREDENTIALS_DIRECTORY",
    "STATE_DIRECTORY",
    "OPENAI_BASE_URL",
    "JOURNAL_STREAM",
)

Cli = Callable[..., subprocess.CompletedProcess[str]]


def ctl_env(**overrides: str | None) -> dict[str, str]:
    """A clean environment for bridgectl: bot token and control secret (no OpenAI key: the
    test gateways use the echo backend), builtin plugins only.

    Pass ``NAME=None`` to leave a variable out.
    """
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update({"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "REALTIME_CONTROL_SECRET": CONTROL_SECRET})
    env["BRIDGEHOST_LOAD_PLUGINS"] = ""
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@dataclass
class Result:
    """One finished bridgectl process."""

    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        """stdout parsed as the one JSON object."""
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


def run_sync(
    cli: Cli,
    config: Path | None,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Result:
    """``bridgectl [--config CONFIG] ARGS`` (blocking; for tests without a gateway)."""
    prefix = ["--config", str(config)] if config is not None else []
    done = cli(["bridgectl", *prefix, *args], env=env if env is not None else ctl_env(), cwd=cwd)
    return Result(done.returncode, done.stdout, done.stderr)


async def run(
    cli: Cli,
    config: Path | None,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Result:
    """:func:`run_sync` off the event loop (the gateway keeps serving meanwhile)."""
    return await asyncio.to_thread(run_sync, cli, config, *args, env=env, cwd=cwd)


def variant(config: Path, name: str, **realtime: Any) -> Path:
    """A copy of ``config`` with some ``[realtime]`` keys replaced (what bridgectl reads)."""
    lines = config.read_text().splitlines()
    out, section = [], ""
    for line in lines:
        if line.startswith("["):
            section = line.strip()
        key = line.split("=", 1)[0].strip()
        if section == "[realtime]" and key in realtime:
            continue
        out.append(line)
        if line.strip() == "[realtime]":
            out += [f"{k} = {json.dumps(v)}" for k, v in realtime.items()]
    path = config.with_name(name)
    path.write_text("\n".join(out) + "\n")
    return path


def add_section(config: Path, text: str) -> None:
    """Append TOML (e.g. a ``[codex]`` table) to a config file."""
    config.write_text(config.read_text() + text.strip() + "\n")


def one_line_error(result: Result) -> str:
    """The error line on stderr (asserting there is exactly one ``bridgectl:`` line)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("bridgectl:")]
    assert len(lines) == 1, str(result)
    return lines[0]
