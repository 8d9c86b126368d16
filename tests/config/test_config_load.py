"""Finding, reading and validating bridge.config.toml; requirements; masking."""

from __future__ import annotations

import json
import re
import textwrap
from inspect import isclass
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from bridgehost.config import (
    BridgeConfig,
    ConfigError,
    Secrets,
    _load,
    find_config_path,
    load_config,
    mask_config,
    requirements_problems,
    validate_config,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "bridge.config.toml.example"


@pytest.fixture(autouse=True)
def no_system_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never read the real /etc/bridgehost/bridge.config.toml."""
    monkeypatch.setattr(_load, "SYSTEM_CONFIG_PATH", tmp_path / "etc" / "bridge.config.toml")


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def leaf_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()):
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isclass(annotation) and issubclass(annotation, BaseModel):
            yield from leaf_paths(annotation, (*prefix, name))
        else:
            yield (*prefix, name)


def documented_keys(text: str) -> set[tuple[str, ...]]:
    """(section..., key) for every ``key =`` line, commented out or not."""
    keys: set[tuple[str, ...]] = set()
    section: tuple[str, ...] = ()
    for line in text.splitlines():
        if header := re.match(r"^\[([a-z_.]+)\]\s*$", line):
            section = tuple(header.group(1).split("."))
        elif key := re.match(r"^#?\s*([a-z_][a-z0-9_]*)\s*=", line):
            keys.add((*section, key.group(1)))
    return keys


# --- find_config_path ---------------------------------------------------------------------


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    system = _load.SYSTEM_CONFIG_PATH
    assert find_config_path(None, {}) is None
    system.parent.mkdir()
    system.write_text("")
    assert find_config_path(None, {}) == system
    local = work / "bridge.config.toml"
    local.write_text("")
    assert find_config_path(None, {}) == local
    from_env = write(tmp_path / "env.toml", "")
    assert find_config_path(None, {"BRIDGE_CONFIG": str(from_env)}) == from_env
    explicit = write(tmp_path / "explicit.toml", "")
    assert find_config_path(explicit, {"BRIDGE_CONFIG": str(from_env)}) == explicit
    monkeypatch.chdir(tmp_path)
    assert find_config_path("explicit.toml", {}) == explicit


def test_explicit_path_that_does_not_exist_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "bridge.config.toml", "")
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        find_config_path(missing, {})
    assert str(missing) in str(info.value)
    assert info.value.problems[0].key == "--config"
    with pytest.raises(ConfigError) as info:
        find_config_path(None, {"BRIDGE_CONFIG": str(missing)})
    assert info.value.problems[0].key == "BRIDGE_CONFIG"
    with pytest.raises(ConfigError, match="is a directory"):
        find_config_path(tmp_path, {})


def test_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = load_config(env={})
    assert loaded.path is None
    assert loaded.keys_set == 0
    assert loaded.config == validate_config({}, env={})


# --- the example file ---------------------------------------------------------------------


def test_example_loads_clean_with_the_defaults() -> None:
    loaded = load_config(EXAMPLE, env={})
    assert loaded.config == validate_config({}, env={})
    assert loaded.keys_set > 40


def test_example_documents_every_field() -> None:
    documented = documented_keys(EXAMPLE.read_text())
    missing = [".".join(p) for p in leaf_paths(BridgeConfig) if p not in documented]
    assert missing == []


def test_example_has_a_comment_before_every_key() -> None:
    lines = EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[a-z_]+\s*=", line):
            assert lines[number - 1].startswith("#"), line
            assert "Default:" in "\n".join(lines[max(0, number - 5) : number]), line


# --- problems -----------------------------------------------------------------------------


def test_a_file_with_several_mistakes_lists_all_of_them(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bridge.config.toml",
        """\
        [realtime]
        enabled = true
        gateway_port = 70000
        idle_warning_ms = 700000
        idle_timeout_ms = 600000
        max_cal_ms = 100
        tunnel_mode = "static-public-url"
        public_url = "http://example.com"
        trusted_proxies = ["127.0.0.1", "10.0.0.300"]

        [telegram]
        authorized_chat_id = "12345"
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    error = info.value
    by_key = {p.key: p for p in error.problems}
    assert set(by_key) == {
        "realtime.gateway_port",
        "realtime.idle_warning_ms",
        "realtime.max_cal_ms",
        "realtime.public_url",
        "realtime.trusted_proxies[1]",
    }
    assert by_key["realtime.max_cal_ms"].message == (
        "unknown key realtime.max_cal_ms; did you mean realtime.max_call_ms?"
    )
    assert "70000" in by_key["realtime.gateway_port"].message
    assert "65535" in by_key["realtime.gateway_port"].message
    assert "1 to 65535" in (by_key["realtime.gateway_port"].fix or "")
    assert "https" in by_key["realtime.public_url"].message
    assert "10.0.0.300" in by_key["realtime.trusted_proxies[1]"].message
    text = str(error)
    assert text.splitlines()[0] == f"{path} has 5 problems:"
    for key in by_key:
        assert key in text


def test_field_errors_do_not_hide_cross_field_errors_in_the_same_section() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config({"realtime": {"gateway_port": "x", "max_call_ms": 99_000_000}}, env={})
    assert {p.key for p in info.value.problems} == {"realtime.gateway_port", "realtime.max_call_ms"}


def test_cross_field_errors_about_a_broken_key_are_not_reported() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(
            {"realtime": {"idle_timeout_ms": "soon", "idle_warning_ms": 400_000}}, env={}
        )
    assert [p.key for p in info.value.problems] == ["realtime.idle_timeout_ms"]


def test_messages_are_human() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(
            {
                "realtime": {"gateway_port": "8890", "enabled": "true", "voice": 3},
                "handoff": {"codex_mode": "append", "sinks": "file"},
            },
            env={},
        )
    by_key = {p.key: p for p in info.value.problems}
    port = by_key["realtime.gateway_port"]
    assert port.message == 'expected a whole number, got "8890"'
    assert "8890" in (port.fix or "")
    assert by_key["realtime.enabled"].message == 'expected true or false, got "true"'
    assert by_key["realtime.voice"].message == "expected a string in quotes, got 3"
    assert by_key["handoff.codex_mode"].message == "must be 'turn' or 'inject', got \"append\""
    assert "expected a list" in by_key["handoff.sinks"].message
    for problem in info.value.problems:
        assert "Input should be" not in problem.message


def test_unknown_sections_and_keys_suggest_the_closest() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(
            {
                "realtme": {"enabled": True},
                "extras": {"x": 1},
                "codex": {"bin": "codex", "xyzzy": 1},
            },
            env={},
        )
    by_key = {p.key: p for p in info.value.problems}
    assert by_key["realtme"].message == "unknown section [realtme]; did you mean [realtime]?"
    assert by_key["extras"].message == "unknown section [extras]"
    assert "[realtime]" in (by_key["extras"].fix or "")
    assert by_key["codex.bin"].message == "unknown key codex.bin; did you mean codex.binary?"
    assert by_key["codex.xyzzy"].message == "unknown key codex.xyzzy"
    assert "binary" in (by_key["codex.xyzzy"].fix or "")


def test_keys_of_the_original_bridge_are_named_as_such() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(
            {"branding": {"realtime_badge": "x"}, "codex": {"app_server_port": 1}}, env={}
        )
    by_key = {p.key: p.message for p in info.value.problems}
    assert by_key == {
        "branding": "[branding] is a section of the original bridge that bridgehost does not use",
        "codex.app_server_port": "codex.app_server_port is a key of the original bridge that "
        "bridgehost does not use",
    }


def test_a_whole_section_of_the_wrong_type() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config({"realtime": 5}, env={})
    assert [p.key for p in info.value.problems] == ["realtime"]
    assert "table" in info.value.problems[0].message


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bridge.config.toml",
        """\
        [realtime]
        enabled = true
        gateway_port 8890
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    (problem,) = info.value.problems
    assert problem.key == f"{path}:3:14"
    assert problem.message.startswith("TOML syntax error: ")
    assert "line 3" in (problem.fix or "")
    assert str(path) in str(info.value).splitlines()[0]


def test_toml_error_at_end_of_document(tmp_path: Path) -> None:
    path = write(tmp_path / "bridge.config.toml", '[realtime]\nvoice = "marin')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.problems[0].key.startswith(str(path) + ":")


def test_keys_set_counts_leaves(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bridge.config.toml",
        """\
        [realtime]
        enabled = true
        trusted_proxies = ["127.0.0.1", "::1"]
        [handoff.prices]
        audio_input_usd_per_minute = 0.1
        [plugins.webhook]
        url = "https://x"
        """,
    )
    loaded = load_config(path, env={})
    assert loaded.keys_set == 4
    assert loaded.config.plugins.table("webhook") == {"url": "https://x"}
    assert loaded.raw["realtime"]["enabled"] is True


# --- requirements -------------------------------------------------------------------------


def loaded_with(tmp_path: Path, toml: str, env: dict[str, str]):
    path = write(tmp_path / "bridge.config.toml", toml)
    return load_config(path, env=env)


ENABLED = "[realtime]\nenabled = true\n"
ALL_SECRETS = {"TELEGRAM_BOT_TOKEN": "t", "OPENAI_API_KEY": "o", "REALTIME_CONTROL_SECRET": "c"}


def test_requirements_when_enabled(tmp_path: Path) -> None:
    loaded = loaded_with(tmp_path, ENABLED, {})
    backend_key = [("OPENAI_API_KEY", "the gateway opens OpenAI realtime sessions with it")]
    gateway = {p.key: p for p in requirements_problems(loaded, "gateway", backend_key)}
    assert set(gateway) == {
        "TELEGRAM_BOT_TOKEN",
        "REALTIME_CONTROL_SECRET",
        "OPENAI_API_KEY",
        "telegram.authorized_chat_id",
    }
    assert gateway["OPENAI_API_KEY"].message == f"missing: {backend_key[0][1]}"
    fix = gateway["OPENAI_API_KEY"].fix or ""
    assert "/etc/credstore/OPENAI_API_KEY" in fix and ".env" in fix
    assert "/etc/bridgehost/credentials" not in fix
    assert "bridgectl telegram discover" in (gateway["telegram.authorized_chat_id"].fix or "")
    assert {p.key for p in requirements_problems(loaded, "ctl")} == {"REALTIME_CONTROL_SECRET"}
    assert {p.key for p in requirements_problems(loaded, "telegram")} == {
        "TELEGRAM_BOT_TOKEN",
        "REALTIME_CONTROL_SECRET",
        "telegram.authorized_chat_id",
    }


def test_requirements_when_disabled(tmp_path: Path) -> None:
    loaded = loaded_with(tmp_path, "", {})
    assert requirements_problems(loaded, "gateway") == []
    assert requirements_problems(loaded, "ctl") == []
    assert {p.key for p in requirements_problems(loaded, "telegram")} == {
        "TELEGRAM_BOT_TOKEN",
        "telegram.authorized_chat_id",
    }


def test_requirements_met(tmp_path: Path) -> None:
    loaded = loaded_with(tmp_path, ENABLED + "[telegram]\nauthorized_chat_id = 7\n", ALL_SECRETS)
    for service in ("gateway", "telegram", "ctl"):
        assert requirements_problems(loaded, service) == []


def test_openai_key_only_for_the_openai_backend(tmp_path: Path) -> None:
    loaded = loaded_with(tmp_path, ENABLED + 'backend = "echo"\n', {})
    assert "OPENAI_API_KEY" not in {p.key for p in requirements_problems(loaded, "gateway")}


# --- masking ------------------------------------------------------------------------------


def test_mask_config_has_derived_values_and_no_secret() -> None:
    config = validate_config(
        {
            "realtime": {"public_url": "https://b.example.com"},
            "plugins": {
                "webhook": {
                    "url": "https://h",
                    "auth_token": "tok-VISIBLE-1",
                    "nested": {"password": "pw-VISIBLE-2"},
                }
            },
        },
        env={"CODEX_HOME": "/opt/codex"},
    )
    secrets = Secrets(
        env={"OPENAI_API_KEY": "sk-VISIBLE-3"}, dotenv={"REALTIME_CONTROL_SECRET": "ctl-VISIBLE-4"}
    )
    data = mask_config(config, secrets)
    text = json.dumps(data)
    assert "VISIBLE" not in text
    assert data["realtime"]["tunnel_mode"] == "static-public-url"
    assert data["realtime"]["control_url"] == "ws://127.0.0.1:8890/ws/bridge"
    assert data["codex"]["home"] == "/opt/codex"
    assert data["plugins"]["webhook"]["url"] == "https://h"
    assert data["plugins"]["webhook"]["auth_token"] == "***"
    assert data["secrets"] == {
        "TELEGRAM_BOT_TOKEN": "missing",
        "OPENAI_API_KEY": "present (environment)",
        "REALTIME_CONTROL_SECRET": "present (.env file)",
    }
    assert isinstance(secrets.openai_api_key, SecretStr)
