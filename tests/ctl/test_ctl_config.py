"""``bridgectl config check`` and ``bridgectl config show``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridgehost.config import ConfigProblem, load_config
from bridgehost.ctl import config_cmd, main
from bridgehost.plugins import PluginHost

REAL_PLUGIN_PROBLEMS = config_cmd.plugin_problems

SECRET_VALUES = {
    "TELEGRAM_BOT_TOKEN": "123456:tg-token-MUST-NOT-APPEAR",
    "OPENAI_API_KEY": "sk-openai-MUST-NOT-APPEAR",
    "REALTIME_CONTROL_SECRET": "control-MUST-NOT-APPEAR",
}
GOOD = """\
[realtime]
enabled = true
gateway_port = 8899

[telegram]
authorized_chat_id = 4242
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean cwd and environment; no /etc config; the plugin host check stubbed out."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in [*SECRET_VALUES, "BRIDGE_CONFIG", "CREDENTIALS_DIRECTORY", "STATE_DIRECTORY"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("bridgehost.config._load.SYSTEM_CONFIG_PATH", tmp_path / "none.toml")
    monkeypatch.setattr(config_cmd, "plugin_problems", lambda loaded, host: [])
    return work


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def write_config(path: Path, text: str = GOOD) -> Path:
    path.write_text(text)
    return path


def set_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_VALUES.items():
        monkeypatch.setenv(name, value)


def test_check_ok(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(isolated / "bridge.config.toml")
    set_secrets(monkeypatch)
    result = run("config", "check")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"OK: {path} (3 keys set)\n"


def test_check_explicit_config_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "elsewhere.toml")
    set_secrets(monkeypatch)
    result = run("--config", str(path), "config", "check", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "ok": True,
        "path": str(path),
        "service": "all",
        "problems": [],
    }


def test_check_lists_every_problem_and_exits_1(isolated: Path) -> None:
    path = write_config(
        isolated / "bridge.config.toml",
        """\
        [realtime]
        gateway_port = 70000
        idle_warning_ms = 900000
        max_cal_ms = 1
        """.replace("        ", ""),
    )
    result = run("config", "check")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path} has 3 problems:"
    text = result.stdout
    assert "realtime.gateway_port: must be at most 65535, got 70000 — " in text
    assert "realtime.idle_warning_ms:" in text
    assert "did you mean realtime.max_call_ms?" in text
    assert "TELEGRAM_BOT_TOKEN" not in text  # service needs are checked once the file is valid


def test_check_json_shape(isolated: Path) -> None:
    write_config(isolated / "bridge.config.toml", "[realtime]\ngateway_port = 0\n")
    result = run("config", "check", "--json", "--service", "none")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert set(payload) == {"ok", "path", "service", "problems"}
    assert payload["ok"] is False
    assert payload["path"] == str(isolated / "bridge.config.toml")
    (problem,) = payload["problems"]
    assert set(problem) == {"key", "message", "fix"}
    assert problem["key"] == "realtime.gateway_port"


def test_check_services(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(isolated / "bridge.config.toml", "[realtime]\nenabled = true\n")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", SECRET_VALUES["TELEGRAM_BOT_TOKEN"])

    def keys(service: str) -> set[str]:
        result = run("config", "check", "--json", "--service", service)
        return {p["key"] for p in json.loads(result.stdout)["problems"]}

    expected = {"REALTIME_CONTROL_SECRET", "OPENAI_API_KEY", "telegram.authorized_chat_id"}
    assert keys("gateway") == expected
    assert keys("telegram") == expected
    assert keys("all") == expected  # one entry per key even when both services need it
    assert keys("none") == set()


def test_check_without_any_file_uses_defaults(isolated: Path) -> None:
    result = run("config", "check", "--service", "none")
    assert result.exit_code == 0
    assert result.stdout == "OK: no config file found, using the defaults (0 keys set)\n"
    result = run("config", "check")  # the telegram service needs a token and a chat
    assert result.exit_code == 1
    assert "TELEGRAM_BOT_TOKEN" in result.stdout
    assert "bridgectl telegram discover" in result.stdout


def test_check_missing_explicit_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = run("--config", str(missing), "config", "check", "--json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["problems"][0]["key"] == "--config"
    assert str(missing) in payload["problems"][0]["message"]


def test_check_toml_syntax_error(isolated: Path) -> None:
    path = write_config(isolated / "bridge.config.toml", "[realtime\n")
    result = run("config", "check")
    assert result.exit_code == 1
    assert f"{path}:1:" in result.stdout
    assert "TOML syntax error" in result.stdout


def test_usage_errors_exit_2() -> None:
    assert run("config", "check", "--service", "bogus").exit_code == 2
    assert run("config", "frobnicate").exit_code == 2


def fake_plugin_check(monkeypatch: pytest.MonkeyPatch, check) -> None:
    """Replace the plugin host's ``check_config_problems`` as ``config check`` sees it."""
    monkeypatch.setattr(config_cmd, "plugin_problems", REAL_PLUGIN_PROBLEMS)
    monkeypatch.setattr(config_cmd, "check_config_problems", check)


def test_check_includes_plugin_host_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_plugin_check(
        monkeypatch,
        lambda loaded, host: [
            ConfigProblem(
                "realtime.backend", "no realtime backend named 'x'", "choose one of: echo"
            )
        ],
    )
    result = run("config", "check", "--json", "--service", "none")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"] == [
        {
            "key": "realtime.backend",
            "message": "no realtime backend named 'x'",
            "fix": "choose one of: echo",
        }
    ]


def test_plugin_problems_reports_a_crashing_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(loaded: object, host: object) -> list[ConfigProblem]:
        raise RuntimeError("plugin exploded")

    fake_plugin_check(monkeypatch, boom)
    loaded = load_config(env={})
    (problem,) = REAL_PLUGIN_PROBLEMS(loaded, PluginHost.for_config(loaded.config))
    assert problem.key == "plugins"
    assert "plugin exploded" in problem.message


def test_show_text_masks_secrets(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(
        isolated / "bridge.config.toml",
        GOOD
        + """
[plugins.webhook]
url = "https://hooks.example.com/x"
auth_token = "plugin-token-MUST-NOT-APPEAR"
""",
    )
    set_secrets(monkeypatch)
    result = run("config", "show")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "MUST-NOT-APPEAR" not in result.output
    assert f"from {path}" in out.splitlines()[0]
    assert "[realtime]" in out and "gateway_port = 8899" in out
    assert 'tunnel_mode = "managed-quick-cloudflared"' in out
    assert "# thread_id = (unset)" in out
    assert 'TELEGRAM_BOT_TOKEN = "present (environment)"' in out
    assert 'url = "https://hooks.example.com/x"' in out
    assert 'auth_token = "***"' in out


def test_show_json_masks_secrets(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_config(isolated / "bridge.config.toml")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "OPENAI_API_KEY").write_text(SECRET_VALUES["OPENAI_API_KEY"] + "\n")
    (isolated / ".env").write_text(
        f"REALTIME_CONTROL_SECRET={SECRET_VALUES['REALTIME_CONTROL_SECRET']}\n"
    )
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", SECRET_VALUES["TELEGRAM_BOT_TOKEN"])
    result = run("config", "show", "--json")
    assert result.exit_code == 0
    assert "MUST-NOT-APPEAR" not in result.output
    payload = json.loads(result.stdout)
    assert payload["path"] == str(isolated / "bridge.config.toml")
    assert payload["config"]["realtime"]["gateway_port"] == 8899
    assert payload["config"]["telegram"]["authorized_chat_id"] == 4242
    assert payload["config"]["secrets"] == {
        "TELEGRAM_BOT_TOKEN": "present (environment)",
        "OPENAI_API_KEY": "present (credential)",
        "REALTIME_CONTROL_SECRET": "present (.env file)",
    }


def test_show_invalid_config_exits_1(isolated: Path) -> None:
    write_config(isolated / "bridge.config.toml", "[realtime]\ngateway_port = -5\n")
    result = run("config", "show")
    assert result.exit_code == 1
    assert "realtime.gateway_port" in result.stderr
    result = run("config", "show", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["ok"] is False


def test_check_notes_a_removed_key_and_still_passes(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_file = GOOD.replace("enabled = true\n", 'enabled = true\nsurface_mode = "manual-arm"\n')
    path = write_config(isolated / "bridge.config.toml", old_file)
    set_secrets(monkeypatch)
    result = run("config", "check")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"OK: {path} (4 keys set)"
    assert "note: realtime.surface_mode is ignored: it was removed" in result.stdout
    payload = json.loads(run("config", "check", "--json").stdout)
    assert payload["ok"] is True
    assert [item["key"] for item in payload["ignored"]] == ["realtime.surface_mode"]
    assert load_config(path, env={}).config.realtime.enabled is True
