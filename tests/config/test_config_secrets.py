"""Secrets: credential files, environment, .env — precedence, safety, no leaks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridgehost.config import Secrets, load_config, validate_secret_name

TOKEN = "TELEGRAM_BOT_TOKEN"


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    path = tmp_path / "creds"
    path.mkdir()
    return path


def test_precedence_credential_then_environment_then_dotenv(tmp_path: Path, creds: Path) -> None:
    (tmp_path / "bridge.config.toml").write_text("")
    (tmp_path / ".env").write_text(
        "TELEGRAM_BOT_TOKEN=from-dotenv\nOPENAI_API_KEY=key-dotenv\nREALTIME_CONTROL_SECRET=c-dot\n"
    )
    (creds / TOKEN).write_text("from-credential\n")
    env = {"CREDENTIALS_DIRECTORY": str(creds), TOKEN: "from-env", "OPENAI_API_KEY": "key-env"}
    secrets = Secrets.load(env=env, config_path=tmp_path / "bridge.config.toml")
    assert secrets.telegram_bot_token is not None
    assert secrets.telegram_bot_token.get_secret_value() == "from-credential"
    assert secrets.openai_api_key is not None
    assert secrets.openai_api_key.get_secret_value() == "key-env"
    assert secrets.realtime_control_secret is not None
    assert secrets.realtime_control_secret.get_secret_value() == "c-dot"
    assert secrets.source(TOKEN) == "credential"
    assert secrets.source("OPENAI_API_KEY") == "environment"
    assert secrets.source("REALTIME_CONTROL_SECRET") == ".env file"
    assert secrets.get("UNKNOWN_THING") is None


def test_dotenv_does_not_modify_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRIDGEHOST_TEST_DOTENV_ONLY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("BRIDGEHOST_TEST_DOTENV_ONLY=dotenv-value\n")
    before = dict(os.environ)
    secrets = Secrets.load(env=os.environ)
    value = secrets.get("BRIDGEHOST_TEST_DOTENV_ONLY")
    assert value is not None and value.get_secret_value() == "dotenv-value"
    assert "BRIDGEHOST_TEST_DOTENV_ONLY" not in os.environ
    assert dict(os.environ) == before


def test_dotenv_is_next_to_the_config_file_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc, cwd = tmp_path / "etc", tmp_path / "cwd"
    etc.mkdir()
    cwd.mkdir()
    (etc / "bridge.config.toml").write_text("")
    (etc / ".env").write_text("OPENAI_API_KEY=next-to-config\n")
    (cwd / ".env").write_text("OPENAI_API_KEY=in-cwd\n")
    monkeypatch.chdir(cwd)
    loaded = load_config(etc / "bridge.config.toml", env={})
    assert loaded.secrets.dotenv_path == etc / ".env"
    assert loaded.secrets.openai_api_key is not None
    assert loaded.secrets.openai_api_key.get_secret_value() == "next-to-config"
    monkeypatch.setattr("bridgehost.config._load.SYSTEM_CONFIG_PATH", tmp_path / "none.toml")
    without_file = load_config(env={})
    assert without_file.path is None
    assert without_file.secrets.openai_api_key is not None
    assert without_file.secrets.openai_api_key.get_secret_value() == "in-cwd"


def test_credential_file_strips_exactly_one_trailing_newline(creds: Path) -> None:
    (creds / "ONE").write_text("value\n")
    (creds / "CRLF").write_text("value\r\n")
    (creds / "TWO").write_text("value\n\n")
    (creds / "NONE").write_text("  value  ")
    secrets = Secrets(env={}, credentials_dir=creds)
    assert secrets.get("ONE").get_secret_value() == "value"  # type: ignore[union-attr]
    assert secrets.get("CRLF").get_secret_value() == "value"  # type: ignore[union-attr]
    assert secrets.get("TWO").get_secret_value() == "value\n"  # type: ignore[union-attr]
    assert secrets.get("NONE").get_secret_value() == "  value  "  # type: ignore[union-attr]


def test_empty_values_fall_through_to_the_next_source(creds: Path) -> None:
    (creds / TOKEN).write_text("\n")
    secrets = Secrets(
        env={"CREDENTIALS_DIRECTORY": str(creds), TOKEN: ""},
        credentials_dir=creds,
        dotenv={TOKEN: "from-dotenv"},
    )
    assert secrets.source(TOKEN) == ".env file"
    assert Secrets(env={TOKEN: ""}).get(TOKEN) is None


def test_credentials_directory_that_does_not_exist(tmp_path: Path) -> None:
    secrets = Secrets.load(
        env={"CREDENTIALS_DIRECTORY": str(tmp_path / "gone"), TOKEN: "e"}, cwd=tmp_path
    )
    assert secrets.source(TOKEN) == "environment"


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "", ".", "..", "A B", "X\n", "ä/x"])
def test_invalid_secret_names_are_refused(name: str, creds: Path) -> None:
    secrets = Secrets(env={}, credentials_dir=creds)
    with pytest.raises(ValueError, match="invalid secret name"):
        secrets.get(name)
    with pytest.raises(ValueError):
        validate_secret_name(name)


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "webhook.token", "my-plugin_KEY2"])
def test_valid_secret_names(name: str, creds: Path) -> None:
    (creds / name).write_text("v")
    assert Secrets(env={}, credentials_dir=creds).source(name) == "credential"


def test_describe_and_repr_never_leak(creds: Path) -> None:
    (creds / TOKEN).write_text("cred-SHOULD-NOT-LEAK")
    secrets = Secrets(
        env={"OPENAI_API_KEY": "env-SHOULD-NOT-LEAK"},
        credentials_dir=creds,
        dotenv={"REALTIME_CONTROL_SECRET": "dot-SHOULD-NOT-LEAK"},
    )
    described = secrets.describe()
    assert described == {
        TOKEN: {"present": True, "source": "credential"},
        "OPENAI_API_KEY": {"present": True, "source": "environment"},
        "REALTIME_CONTROL_SECRET": {"present": True, "source": ".env file"},
    }
    assert secrets.describe(["OTHER"]) == {"OTHER": {"present": False, "source": None}}
    for text in (
        str(described),
        repr(secrets),
        str(secrets.masked()),
        str(secrets.telegram_bot_token),
        repr(secrets.openai_api_key),
    ):
        assert "SHOULD-NOT-LEAK" not in text
    assert secrets.masked()[TOKEN] == "present (credential)"


def test_load_config_reads_credentials_from_env(tmp_path: Path, creds: Path) -> None:
    (creds / "REALTIME_CONTROL_SECRET").write_text("s3cret\n")
    config = tmp_path / "bridge.config.toml"
    config.write_text("")
    loaded = load_config(config, env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert loaded.secrets.credentials_dir == creds
    assert loaded.secrets.realtime_control_secret is not None
    assert loaded.secrets.realtime_control_secret.get_secret_value() == "s3cret"
