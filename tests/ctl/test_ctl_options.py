"""``bridgectl``: --config, --log-level and --json before or after any command; lazy commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from bridgehost.ctl import COMMANDS, main

SHARED_FLAGS = ("--config FILE", "--log-level", "--json")


@pytest.fixture
def configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Three valid config files that differ in the gateway port, and a clean cwd."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("bridgehost.config._load.SYSTEM_CONFIG_PATH", tmp_path / "none.toml")
    files = {}
    for name, port in (("a", 8801), ("b", 8802), ("c", 8803)):
        files[name] = tmp_path / f"{name}.toml"
        files[name].write_text(f"[realtime]\ngateway_port = {port}\n")
    return files


def shown(*args: str) -> dict[str, Any]:
    """``bridgectl ARGS`` (a ``config show`` somewhere in them), its JSON output."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


@pytest.mark.parametrize(
    "args",
    [
        ["--config", "{a}", "config", "show", "--json"],
        ["config", "--config", "{a}", "show", "--json"],
        ["config", "show", "--config", "{a}", "--json"],
    ],
)
def test_config_before_or_after_the_command(configs: dict[str, Path], args: list[str]) -> None:
    payload = shown(*[arg.format(a=configs["a"]) for arg in args])
    assert payload["path"] == str(configs["a"])
    assert payload["config"]["realtime"]["gateway_port"] == 8801


def test_the_innermost_config_wins(configs: dict[str, Path]) -> None:
    a, b, c = (str(configs[name]) for name in "abc")
    every_level = shown("--config", a, "config", "--config", b, "show", "--config", c, "--json")
    assert every_level["path"] == c
    assert shown("--config", a, "config", "show", "--config", b, "--json")["path"] == b
    assert shown("--config", a, "config", "--config", b, "show", "--json")["path"] == b


@pytest.mark.parametrize(
    "args",
    [["--json", "config", "show"], ["config", "--json", "show"], ["config", "show", "--json"]],
)
def test_json_at_any_level(configs: dict[str, Path], args: list[str]) -> None:
    payload = shown("--config", str(configs["b"]), *args)
    assert payload["config"]["realtime"]["gateway_port"] == 8802


def test_without_json_the_output_is_text(configs: dict[str, Path]) -> None:
    result = CliRunner().invoke(main, ["config", "show", "--config", str(configs["a"])])
    assert result.exit_code == 0
    assert result.stdout.startswith("# Effective configuration from")


# --- as an operator runs it ------------------------------------------------------------------


def bridgectl(cli: Any, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BRIDGEHOST_LOAD_PLUGINS": ""}
    for name in ("REALTIME_CONTROL_SECRET", "BRIDGEHOST_LOG_LEVEL", "BRIDGE_CONFIG"):
        env.pop(name, None)
    result: subprocess.CompletedProcess[str] = cli(["bridgectl", *args], env=env, cwd=cwd)
    return result


def test_call_status_takes_config_after_the_command(cli: Any, tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = bridgectl(cli, "call", "status", "--config", str(missing), cwd=tmp_path)
    assert result.returncode == 2
    assert "No such option" not in result.stderr
    assert f"bridgectl: {missing}: --config: {missing} does not exist" in result.stderr


def test_json_after_a_subcommand_gives_the_json_error(cli: Any, tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    for args in (
        ["call", "status", "--config", str(missing), "--json"],
        ["--json", "call", "status", "--config", str(missing)],
        ["call", "--json", "status", "--config", str(missing)],
    ):
        result = bridgectl(cli, *args, cwd=tmp_path)
        assert result.returncode == 2, args
        error = json.loads(result.stdout)["error"]
        assert error["code"] == "config" and str(missing) in error["message"], args


def test_log_level_innermost_wins(cli: Any, tmp_path: Path) -> None:
    def debug(*args: str) -> list[str]:
        result = bridgectl(cli, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        json.loads(result.stdout)  # logs never reach stdout
        return [line for line in result.stderr.splitlines() if '"level": "debug"' in line]

    assert debug("plugins", "--json") == []  # WARNING by default
    assert debug("--log-level", "ERROR", "plugins", "--json", "--log-level", "DEBUG")
    assert debug("--log-level", "DEBUG", "plugins", "--json", "--log-level", "ERROR") == []


def all_commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command and group below ``group``, with the words that reach it."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*path, name))


def test_every_command_and_group_shows_the_shared_options() -> None:
    paths = [words for words, _command in all_commands(main)]
    assert ("call", "status") in paths and ("telegram", "discover") in paths
    for words in [(), *paths]:
        result = CliRunner().invoke(main, [*words, "--help"], catch_exceptions=False)
        assert result.exit_code == 0, words
        for flag in SHARED_FLAGS:
            assert flag in result.stdout, (words, flag)


def test_registered_help_and_names_match_the_commands() -> None:
    for name, lazy in COMMANDS.items():
        command = lazy.load()
        assert command.name == name
        assert lazy.short_help == command.get_short_help_str(limit=1000), name


def test_help_imports_no_command_and_no_sdk(tmp_path: Path) -> None:
    script = (
        "import json, sys\n"
        "from bridgehost.ctl import main\n"
        "try:\n    main(['--help'], prog_name='bridgectl')\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=True,
    )
    answer = json.loads(done.stdout.splitlines()[-1])
    modules = set(answer["modules"])
    assert answer["code"] == 0
    assert "install-units" in done.stdout  # the command list is there
    assert not {m for m in modules if m.startswith("bridgehost.ctl.")}
    assert not {"openai", "telegram", "aiortc", "aiohttp", "pydantic", "structlog"} & modules
