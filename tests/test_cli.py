"""``bridgehost``: shared options at any level, lazy commands, quiet ``plugins``.

The shared-option machinery (``bridgehost._cli_common``) is checked on a small program of its
own; the real command line runs as a process, as an operator or systemd runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from bridgehost._cli_common import LazyCommand, program_group, settings, shared_options

# --- the mechanism, on a program of its own -------------------------------------------------

seen: list[dict[str, Any]] = []
prepared: list[dict[str, Any]] = []


@program_group(
    "toy",
    lazy_commands={"lazy": LazyCommand("tests_toy_commands:lazy", "A lazily imported command.")},
    prepare=lambda values: prepared.append(dict(values)),
    options=("config", "log_level", "json"),
    overrides={"log_level": {"default": "WARNING", "envvar": "TOY_LOG_LEVEL"}},
)
def toy() -> None:
    """A program with a group and a command below it."""


@toy.group()
@shared_options("config", "log_level", "json")
def inner() -> None:
    """A group between the program and the command."""


@inner.command()
@shared_options("config", "log_level", "json")
@click.pass_context
def leaf(ctx: click.Context, as_json: bool) -> None:
    """Record what the command sees."""
    seen.append({**settings(ctx), "received_as_json": as_json})


def run_toy(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    seen.clear()
    prepared.clear()
    result = CliRunner().invoke(toy, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(seen) == 1
    return seen[0]


def test_defaults_come_from_the_program_group() -> None:
    got = run_toy("inner", "leaf")
    assert got == {
        "config_path": None,
        "log_level": "WARNING",
        "as_json": False,
        "received_as_json": False,
    }


@pytest.mark.parametrize(
    "args",
    [
        ["--config", "a.toml", "inner", "leaf"],
        ["inner", "--config", "a.toml", "leaf"],
        ["inner", "leaf", "--config", "a.toml"],
    ],
)
def test_an_option_works_at_every_level(args: list[str]) -> None:
    assert run_toy(*args)["config_path"] == "a.toml"


def test_the_innermost_given_value_wins() -> None:
    got = run_toy(
        "--config", "a.toml", "--log-level", "ERROR",
        "inner", "--config", "b.toml",
        "leaf", "--config", "c.toml",
    )  # fmt: skip
    assert got["config_path"] == "c.toml"
    assert got["log_level"] == "ERROR"  # given only at the top: still in force below
    assert (
        run_toy("--config", "a.toml", "inner", "--config", "b.toml", "leaf")["config_path"]
        == "b.toml"
    )


def test_a_command_line_value_beats_the_environment_at_any_level() -> None:
    env = {"TOY_LOG_LEVEL": "DEBUG"}
    assert run_toy("inner", "leaf", env=env)["log_level"] == "DEBUG"
    assert run_toy("inner", "leaf", "--log-level", "INFO", env=env)["log_level"] == "INFO"


@pytest.mark.parametrize(
    "args", [["--json", "inner", "leaf"], ["inner", "--json", "leaf"], ["inner", "leaf", "--json"]]
)
def test_json_reaches_the_command_from_any_level(args: list[str]) -> None:
    got = run_toy(*args)
    assert got["received_as_json"] is True and got["as_json"] is True


def test_prepare_runs_once_with_the_settled_values() -> None:
    run_toy("--log-level", "ERROR", "inner", "leaf", "--log-level", "DEBUG")
    assert [p["log_level"] for p in prepared] == ["DEBUG"]


def test_lazy_command_is_imported_on_first_use_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tests_toy_commands.py").write_text(
        "import click\n\n@click.command()\ndef lazy():\n"
        '    """A lazily imported command."""\n    click.echo("lazy ran")\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tests_toy_commands", raising=False)
    toy.commands.pop("lazy", None)

    listing = CliRunner().invoke(toy, ["--help"], catch_exceptions=False)
    assert "lazy" in listing.output and "A lazily imported command." in listing.output
    assert "tests_toy_commands" not in sys.modules

    ran = CliRunner().invoke(toy, ["lazy"], catch_exceptions=False)
    assert ran.output == "lazy ran\n"
    assert "tests_toy_commands" in sys.modules
    toy.commands.pop("lazy", None)


def test_lazy_path_that_is_not_a_command_is_refused() -> None:
    with pytest.raises(TypeError, match="os:sep is not a click command"):
        LazyCommand("os:sep", "not a command").load()


# --- the real bridgehost ---------------------------------------------------------------------


def bridgehost(
    cli: Any, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "BRIDGEHOST_LOAD_PLUGINS": ""}
    base.pop("BRIDGEHOST_LOG_LEVEL", None)
    result: subprocess.CompletedProcess[str] = cli(
        ["bridgehost", *args], env={**base, **(env or {})}, cwd=cwd
    )
    return result


def debug_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "debug" in line.lower()]


@pytest.mark.parametrize(
    "args",
    [
        ["--config", "{missing}", "gateway"],
        ["gateway", "--config", "{missing}"],
        ["--config", "elsewhere.toml", "gateway", "--config", "{missing}"],
    ],
)
def test_config_before_or_after_gateway(cli: Any, tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "missing.toml"
    result = bridgehost(cli, *[a.format(missing=missing) for a in args], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "No such option" not in result.stderr
    assert f"config file not found: {missing}" in result.stderr  # the innermost --config


def test_config_after_telegram(cli: Any, tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = bridgehost(cli, "telegram", "--config", str(missing), cwd=tmp_path)
    assert result.returncode == 2
    assert f"config file not found: {missing}" in result.stderr


def test_plugins_prints_no_debug_lines(cli: Any, tmp_path: Path) -> None:
    human = bridgehost(cli, "plugins", cwd=tmp_path)
    assert human.returncode == 0, human.stderr
    assert "echo" in human.stdout
    assert debug_lines(human.stdout + human.stderr) == []

    as_json = bridgehost(cli, "plugins", "--json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    assert {p["name"] for p in json.loads(as_json.stdout)["plugins"]} >= {"echo", "file"}
    assert debug_lines(as_json.stderr) == []


def test_log_level_innermost_wins_and_beats_the_environment(cli: Any, tmp_path: Path) -> None:
    louder = bridgehost(
        cli, "--log-level", "ERROR", "plugins", "--log-level", "DEBUG", cwd=tmp_path
    )
    assert louder.returncode == 0
    assert any('"plugins enabled"' in line for line in debug_lines(louder.stderr)), louder.stderr
    assert debug_lines(louder.stdout) == []  # logs never go to stdout

    quiet = bridgehost(
        cli, "plugins", "--log-level", "INFO", cwd=tmp_path, env={"BRIDGEHOST_LOG_LEVEL": "DEBUG"}
    )
    assert debug_lines(quiet.stderr) == []
    from_env = bridgehost(cli, "plugins", cwd=tmp_path, env={"BRIDGEHOST_LOG_LEVEL": "DEBUG"})
    assert debug_lines(from_env.stderr) != []


def test_help_shows_the_options_where_they_apply(cli: Any, tmp_path: Path) -> None:
    for command in ("gateway", "telegram", "plugins"):
        text = bridgehost(cli, command, "--help", cwd=tmp_path).stdout
        assert "--config FILE" in text and "--log-level" in text, command
    assert "--json" in bridgehost(cli, "plugins", "--help", cwd=tmp_path).stdout
    demo = bridgehost(cli, "demo", "--help", cwd=tmp_path).stdout
    assert "--state-dir" in demo and "--config" not in demo
    top = bridgehost(cli, "--help", cwd=tmp_path).stdout
    assert "BRIDGEHOST_LOG_LEVEL" in top and "default: INFO" in top
    for command in ("demo", "gateway", "plugins", "telegram"):
        assert f"  {command} " in top


IMPORTS_AFTER = """
import json, sys
from bridgehost.cli import main
try:
    main({args!r}, prog_name="bridgehost")
except SystemExit as exit:
    code = exit.code
print(json.dumps({{"code": code, "modules": sorted(sys.modules)}}))
"""


def modules_after(tmp_path: Path, *args: str) -> tuple[Any, set[str]]:
    """Run ``bridgehost ARGS`` in a fresh interpreter; its exit code and what it imported."""
    env = {**os.environ, "BRIDGEHOST_LOAD_PLUGINS": ""}
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS_AFTER.format(args=list(args))],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=True,
    )
    answer = json.loads(done.stdout.splitlines()[-1])
    return answer["code"], set(answer["modules"])


def test_gateway_does_not_import_the_operator_commands(tmp_path: Path) -> None:
    # The command really runs: it imports the gateway, then stops at the missing config.
    code, modules = modules_after(tmp_path, "gateway", "--config", str(tmp_path / "none.toml"))
    assert code == 2
    assert "bridgehost.gateway.service" in modules
    assert not {m for m in modules if m == "bridgehost.ctl" or m.startswith("bridgehost.ctl.")}
    assert not {"telegram", "aiortc"} & modules

    code, modules = modules_after(tmp_path, "gateway", "--help")
    assert code == 0
    assert not {m for m in modules if m.startswith("bridgehost.ctl")}
    assert not {"bridgehost.gateway", "bridgehost.config", "structlog", "pydantic"} & modules


def test_help_imports_no_command(tmp_path: Path) -> None:
    code, modules = modules_after(tmp_path, "--help")
    assert code == 0
    assert not {m for m in modules if m.startswith(("bridgehost.ctl", "bridgehost.gateway"))}
    assert not {"structlog", "pydantic", "openai", "telegram", "aiortc"} & modules


def test_service_start_pauses_the_collector_then_freezes_what_it_built():
    import gc

    from bridgehost.cli import _starting

    assert gc.isenabled()
    try:
        with _starting():
            assert not gc.isenabled()
            built = [object() for _ in range(10)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(built)
    finally:
        gc.unfreeze()
