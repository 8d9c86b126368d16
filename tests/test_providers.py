"""Providers declare what they need; the host reads the declarations and never their names.

A third-party backend (``tests/fakes/acme_voice_plugin.py``) that needs ``ACME_VOICE_KEY`` gets
that key checked by ``config check``, loaded by ``install-units`` through ``LoadCredential=`` and
required by ``doctor``, and its readiness check joins the others, exactly like a builtin's.
"""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridgehost.config import load_config
from bridgehost.ctl import main
from bridgehost.ctl._credstore import needed_secrets, unit_credentials
from bridgehost.ctl._installed_units import parse_unit
from bridgehost.ctl._units_render import GATEWAY, TELEGRAM
from bridgehost.plugins import PluginHost
from bridgehost.providers import SecretNeed
from bridgehost.readiness import evaluate
from fakes import acme_voice_plugin as acme

CONFIG = f"""\
[realtime]
enabled = true
backend = "{acme.NAME}"
tunnel_mode = "static-public-url"
public_url = "http://127.0.0.1:18998"

[telegram]
authorized_chat_id = 4242

[handoff]
sinks = ["file"]
"""


def _with_acme() -> list[EntryPoint]:
    return [*entry_points(group="bridgehost"), acme.ENTRY_POINT]


@pytest.fixture(autouse=True)
def acme_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install the Acme plugin beside the builtins, as its distribution would."""
    monkeypatch.setattr("bridgehost.plugins._installed_entry_points", _with_acme)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("REALTIME_CONTROL_SECRET", "s" * 32)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.config.toml"
    path.write_text(CONFIG)
    return path


def check(config: Path, *extra: str) -> dict[str, list[dict[str, str]]]:
    args = ["--config", str(config), "config", "check", "--json", "--service", "gateway", *extra]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return json.loads(result.stdout)


def test_a_secret_name_is_checked_when_declared() -> None:
    with pytest.raises(ValueError, match="invalid secret name"):
        SecretNeed("../etc/passwd", {"gateway": "no"})
    with pytest.raises(ValueError, match="which service needs it"):
        SecretNeed("ACME_VOICE_KEY", {})


def test_config_check_asks_for_the_declared_secret(config: Path) -> None:
    problems = check(config)["problems"]
    (problem,) = [p for p in problems if p["key"] == acme.KEY]
    assert problem["message"] == "missing: the gateway opens Acme voice sessions with it"
    assert f"export {acme.KEY}=" in problem["fix"]
    assert not any(p["key"] == "OPENAI_API_KEY" for p in problems)  # openai is not selected


def test_config_check_is_satisfied_by_the_declared_secret(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(acme.KEY, "acme-secret")
    assert check(config)["problems"] == []


def test_the_providers_settings_table_is_validated(config: Path) -> None:
    config.write_text(CONFIG + f'\n[plugins.{acme.NAME}]\nregio = "eu"\n')
    keys = [p["key"] for p in check(config)["problems"]]
    assert f"plugins.{acme.NAME}.regio" in keys


def test_install_units_loads_the_declared_credential(tmp_path: Path, config: Path) -> None:
    prefix = tmp_path / "units"
    args = ["--config", str(config), "install-units", "--prefix", str(prefix)]
    result = CliRunner().invoke(main, [*args, "--bridge-user", "root"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    gateway = parse_unit((prefix / GATEWAY).read_text())["Service.LoadCredential"]
    telegram = parse_unit((prefix / TELEGRAM).read_text())["Service.LoadCredential"]
    core = ["TELEGRAM_BOT_TOKEN", "REALTIME_CONTROL_SECRET"]
    assert gateway[:2] == core and sorted(gateway[2:]) == [acme.KEY, "OPENAI_API_KEY"]
    assert telegram == [*core, "OPENAI_API_KEY"]
    assert f"/etc/credstore/{acme.KEY}" in result.output  # the command that stores it


def test_doctor_needs_exactly_what_the_selection_declares(config: Path) -> None:
    needed = needed_secrets(config)
    assert needed[GATEWAY] == {"TELEGRAM_BOT_TOKEN", "REALTIME_CONTROL_SECRET", acme.KEY}
    assert needed[TELEGRAM] == {"TELEGRAM_BOT_TOKEN", "REALTIME_CONTROL_SECRET"}
    assert acme.KEY in unit_credentials()[GATEWAY]


async def test_the_providers_readiness_check_runs_while_selected(config: Path) -> None:
    loaded = load_config(config)
    host = PluginHost.for_config(loaded.config)
    names = [(plugin, c.name) for plugin, c in host.readiness_checks(loaded.config)]
    assert (acme.NAME, "Acme region") in names
    (check,) = [c for _, c in host.readiness_checks(loaded.config) if c.name == "Acme region"]
    assert (await check.run()).ok
    other = loaded.config.model_copy(
        update={"realtime": loaded.config.realtime.model_copy(update={"backend": "echo"})}
    )
    assert "Acme region" not in [c.name for _, c in host.readiness_checks(other)]


def test_capabilities_list_the_declared_secret(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_config(config)
    checks = {c.name: c for c in evaluate(loaded.config, loaded.secrets, gateway=None).checks}
    assert checks[acme.KEY].ok is False
    assert checks[acme.KEY].detail == "missing: the gateway opens Acme voice sessions with it"
    assert "OPENAI_API_KEY" not in checks
    monkeypatch.setenv(acme.KEY, "acme-secret")
    loaded = load_config(config)
    checks = {c.name: c for c in evaluate(loaded.config, loaded.secrets, gateway=None).checks}
    assert checks[acme.KEY].ok is True
