"""Unit templates, ``bridgectl install-units`` and ``bridgectl doctor``, with no systemd running.

``systemd-analyze verify`` and ``systemd-analyze security --offline`` run wherever
``systemd-analyze`` exists. Both start a throw-away test manager that leaves
``/run/systemd/systemd-units-load`` behind; as root they therefore run in a private mount namespace
with a tmpfs on ``/run/systemd`` (a non-root user cannot write there anyway).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from bridgehost.ctl import _credstore, _units_install, _units_render, main
from bridgehost.ctl import _doctor as doctor_checks
from bridgehost.ctl._installed_units import parse_unit
from bridgehost.ctl._units_install import plan_install
from bridgehost.ctl._units_render import (
    GATEWAY,
    PYTHON_DROPIN,
    UNIT_NAMES,
    UnitValues,
    render_unit,
    template_text,
)
from bridgehost.ctl.units_cmd import doctor, install_units

REPO = Path(__file__).resolve().parents[2]
EXPOSURE_LIMIT = 2.0
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")

CONFIG = """\
[realtime]
enabled = true
backend = "echo"
tunnel_mode = "static-public-url"
public_url = "http://127.0.0.1:18999"
gateway_port = 18999

[telegram]
authorized_chat_id = 4242
"""


def analyze(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``systemd-analyze ARGS`` without leaving files in the host's /run/systemd."""
    argv = [str(ANALYZE), *args]
    if os.geteuid() == 0 and shutil.which("unshare"):
        script = 'mount -t tmpfs tmpfs /run/systemd && exec "$@"'
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)


def invoke(command: click.Command, args: list[str], config: Path | None = None) -> Result:
    """Run a bridgectl command through the ``bridgectl`` group, as a person types it."""
    options = ["--config", str(config)] if config else []
    return CliRunner().invoke(main, [command.name or "", *args, *options], catch_exceptions=False)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A gateway config on port 18999 (echo backend, so no OPENAI_API_KEY needed)."""
    path = tmp_path / "etc" / "bridge.config.toml"
    path.parent.mkdir()
    path.write_text(CONFIG)
    path.chmod(0o644)
    return path


@pytest.fixture
def installed(tmp_path: Path, config: Path) -> Path:
    """The units as ``install-units --prefix`` writes them; returns the unit directory."""
    prefix = tmp_path / "units"
    result = invoke(install_units, ["--prefix", str(prefix), "--bridge-user", "root"], config)
    assert result.exit_code == 0, result.output
    return prefix


# --- the templates -------------------------------------------------------------------------------


def test_packaging_copies_match_the_shipped_templates() -> None:
    for name in UNIT_NAMES:
        copy = REPO / "packaging" / "systemd" / name
        assert copy.read_text() == template_text(name), (
            f"packaging/systemd/{name} differs from src/bridgehost/packaging_data/systemd/{name} "
            "(the source of truth): cp src/bridgehost/packaging_data/systemd/bridge* "
            "packaging/systemd/"
        )


def _settings(name: str) -> dict[str, list[str]]:
    return parse_unit(template_text(name))


def test_service_conventions() -> None:
    for name in ("bridge-gateway.service", "bridge-telegram.service"):
        unit = _settings(name)
        assert unit["Service.Type"] == ["notify"], name
        assert unit["Service.NotifyAccess"] == ["main"], name
        assert unit["Service.Restart"] == ["on-failure"], name
        assert unit["Service.KillMode"] == ["mixed"], name
        assert unit["Service.RestartPreventExitStatus"] == ["2"], name
        for key in (
            "WatchdogSec",
            "RestartSec",
            "TimeoutStopSec",
            "StateDirectory",
            "ConfigurationDirectory",
            "SyslogIdentifier",
        ):
            assert unit.get(f"Service.{key}"), f"{name} lacks {key}="
        assert unit["Unit.PartOf"] == ["bridge.target"], name
        assert "\n@CREDENTIALS@\n" in template_text(name), f"{name}: no credentials placeholder"
        assert "\n#EnvironmentFile=" in template_text(name), f"{name}: document EnvironmentFile="
    gateway = _settings("bridge-gateway.service")
    assert gateway["Service.DynamicUser"] == ["yes"]
    assert gateway["Unit.Requires"] == ["bridge-gateway.socket"]
    assert "bridge-gateway.socket" in gateway["Unit.After"][0].split()
    assert gateway["Service.MemoryDenyWriteExecute"] == ["yes"]
    assert _settings("bridge-telegram.service")["Service.User"] == ["@USER@"]
    socket = _settings("bridge-gateway.socket")
    assert socket["Socket.ListenStream"] == ["@LISTEN@"]
    assert socket["Socket.Accept"] == ["no"] and socket["Socket.NoDelay"] == ["true"]
    assert socket["Unit.PartOf"] == ["bridge.target"]
    target = _settings("bridge.target")["Unit.Wants"][0].split()
    assert target == ["bridge-gateway.socket", "bridge-gateway.service", "bridge-telegram.service"]


def _hardening_block(name: str) -> list[str]:
    lines = template_text(name).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# --- Hardening"))
    end = next(i for i, line in enumerate(lines) if line == "[Install]")
    return lines[start + 1 : end]


def test_every_gateway_hardening_setting_is_explained() -> None:
    block = _hardening_block("bridge-gateway.service")
    commented = False
    settings = 0
    for line in block:
        if line.startswith("#"):
            commented = True
        elif line.strip():
            assert commented, f"bridge-gateway.service: {line!r} has no comment above it"
            settings += 1
        else:
            commented = False
    assert settings >= 25
    assert sum("Relax" in line for line in block) >= 10


def test_telegram_hardening_block_is_all_comments() -> None:
    block = _hardening_block("bridge-telegram.service")
    assert all(not line.strip() or line.startswith("#") for line in block)
    assert sum(line.startswith("#") and "=" in line for line in block) >= 10


# --- systemd-analyze -----------------------------------------------------------------------------


@needs_analyze
def test_units_verify_without_any_message(installed: Path) -> None:
    for path in sorted(installed.glob("bridge*")):
        if path.is_dir():
            continue
        result = analyze("verify", str(path))
        assert result.returncode == 0, f"{path.name}: {result.stderr}"
        assert result.stderr == "", f"{path.name}: systemd-analyze verify said:\n{result.stderr}"


@needs_analyze
def test_user_units_verify_without_any_message(tmp_path: Path) -> None:
    prefix = tmp_path / "user-units"
    config = tmp_path / "bridge.config.toml"
    config.write_text(CONFIG)
    assert invoke(install_units, ["--user", "--prefix", str(prefix)], config).exit_code == 0
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    for path in sorted(prefix.glob("bridge*")):
        result = analyze("--user", "verify", str(path), env=env)
        assert (result.returncode, result.stderr) == (0, ""), f"{path.name}: {result.stderr}"


def _exposure(output: str) -> float:
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", output)
    assert match, output
    return float(match.group(1))


@needs_analyze
def test_gateway_exposure_is_at_most_two(installed: Path) -> None:
    unit = str(installed / GATEWAY)
    # --threshold is the exposure times ten (exposure 0.0-10.0, threshold 0-100, default 100)
    limit = round(EXPOSURE_LIMIT * 10)
    result = analyze("security", "--offline=true", f"--threshold={limit}", "--no-pager", unit)
    exposure = _exposure(result.stdout)
    assert result.returncode == 0 and exposure <= EXPOSURE_LIMIT, result.stdout
    tighter = analyze(
        "security", "--offline=true", f"--threshold={round(exposure * 10) - 1}", "--no-pager", unit
    )
    assert tighter.returncode != 0, "--threshold is not exposure x 10 any more"


# --- install-units -------------------------------------------------------------------------------


def test_installed_units_load_every_credential(installed: Path) -> None:
    for name in ("bridge-gateway.service", "bridge-telegram.service"):
        unit = parse_unit((installed / name).read_text())
        assert unit["Service.LoadCredential"] == [
            "TELEGRAM_BOT_TOKEN",
            "REALTIME_CONTROL_SECRET",
            "OPENAI_API_KEY",
        ], name


def test_dry_run_json_fills_every_placeholder(tmp_path: Path, config: Path) -> None:
    prefix = tmp_path / "units"
    result = invoke(
        install_units,
        ["--prefix", str(prefix), "--bridge-user", "root", "--dry-run", "--json"],
        config,
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert not prefix.exists(), "a dry run must not write anything"
    bridgehost = Path(sys.executable).absolute().with_name("bridgehost")
    assert plan["scope"] == "system" and plan["dry_run"] is True
    assert plan["bridgehost"] == str(bridgehost)
    assert plan["config"] == str(config) and plan["listen"] == "127.0.0.1:18999"
    units = {Path(item["path"]).name: item["text"] for item in plan["files"]}
    assert set(UNIT_NAMES) <= set(units)
    for name in UNIT_NAMES:
        assert not re.search(r"@[A-Z]+@", units[name]), name
        assert units[name].startswith("# Written by `bridgectl install-units`")
    assert f"ExecStart={bridgehost} --config {config} gateway\n" in units[GATEWAY]
    assert f"AssertPathExists={config}\n" in units[GATEWAY]
    assert "ListenStream=127.0.0.1:18999\n" in units["bridge-gateway.socket"]
    assert "User=root\n" in units["bridge-telegram.service"]
    commands = [c for step in plan["next"] for c in step["commands"]]
    assert "sudo systemctl daemon-reload" in commands
    assert "sudo systemctl enable --now bridge.target" in commands
    assert any("/etc/credstore/OPENAI_API_KEY" in c for c in commands)


def test_human_output_lists_files_and_next_commands(tmp_path: Path, config: Path) -> None:
    result = invoke(
        install_units, ["--prefix", str(tmp_path / "u"), "--bridge-user", "root"], config
    )
    assert result.exit_code == 0, result.output
    assert "Wrote " in result.output and str(tmp_path / "u" / GATEWAY) in result.output
    assert "sudo systemctl enable --now bridge.target" in result.output
    assert "sudo install -d -m 0700 /etc/credstore" in result.output
    for name in UNIT_NAMES:
        path = tmp_path / "u" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_listen_address_follows_the_config(tmp_path: Path) -> None:
    path = tmp_path / "bridge.config.toml"
    path.write_text('[realtime]\ngateway_host = "::1"\ngateway_port = 9001\n')
    plan = plan_install("system", tmp_path / "u", path, "root")
    assert plan.values.listen == "[::1]:9001"
    path.write_text('[realtime]\ngateway_host = "gateway.example"\n')
    with pytest.raises(Exception, match="not an IP address"):
        plan_install("system", tmp_path / "u", path, "root")
    missing = plan_install("system", tmp_path / "u", tmp_path / "none.toml", "root")
    assert missing.values.listen == "127.0.0.1:8890"
    assert any("does not exist yet" in note for note in missing.notes)


def test_python_under_a_home_directory_gets_a_dropin(
    tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_units_install, "python_home_paths", lambda: [Path("/home/alice/.pyenv")])
    prefix = tmp_path / "units"
    assert (
        invoke(install_units, ["--prefix", str(prefix), "--bridge-user", "root"], config).exit_code
        == 0
    )
    dropin = prefix / f"{GATEWAY}.d" / PYTHON_DROPIN
    text = dropin.read_text()
    assert "ProtectHome=tmpfs\n" in text and "BindReadOnlyPaths=/home/alice/.pyenv\n" in text
    monkeypatch.setattr(_units_install, "python_home_paths", lambda: [])
    result = invoke(install_units, ["--prefix", str(prefix), "--bridge-user", "root"], config)
    assert "removed" in result.output and not dropin.exists()


def test_user_units_have_no_accounts_or_credentials(tmp_path: Path, config: Path) -> None:
    result = invoke(
        install_units, ["--user", "--dry-run", "--json", "--prefix", str(tmp_path)], config
    )
    plan = json.loads(result.output)
    assert plan["scope"] == "user" and plan["bridge_user"] is None
    for item in plan["files"]:
        settings = parse_unit(item["text"])
        for key in ("Service.DynamicUser", "Service.User", "Service.LoadCredential"):
            assert key not in settings, (key, item["path"])
        for key in ("Unit.Wants", "Unit.After", "Install.WantedBy"):
            value = " ".join(settings.get(key, []))
            assert "network-online.target" not in value and "multi-user" not in value, key
    usage = invoke(install_units, ["--user", "--bridge-user", "alice"], config)
    assert usage.exit_code == 2 and "--bridge-user is for system units" in usage.output


def test_render_refuses_unknown_placeholders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_units_render, "template_text", lambda name: "[Unit]\nX=@NOPE@\n")
    values = UnitValues(Path("/x/bridgehost"), Path("/etc/b.toml"), "127.0.0.1:1", "u", None)
    with pytest.raises(ValueError, match="@NOPE@"):
        render_unit("bridge.target", values)


def test_paths_with_spaces_and_percent_are_escaped() -> None:
    values = UnitValues(
        Path("/opt/my env/bin/bridgehost"), Path("/etc/50%/b.toml"), "127.0.0.1:1", "u", None
    )
    text = render_unit(GATEWAY, values)
    assert 'ExecStart="/opt/my env/bin/bridgehost" /etc/50%%/b.toml' not in text
    assert 'ExecStart="/opt/my env/bin/bridgehost" --config /etc/50%%/b.toml gateway' in text
    assert "AssertPathExists=/etc/50%%/b.toml\n" in text


# --- doctor --------------------------------------------------------------------------------------


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Private credstore and /var/lib stand-ins: (credstore, state root)."""
    credstore, state = tmp_path / "credstore", tmp_path / "var-lib"
    credstore.mkdir(mode=0o700)
    state.mkdir()
    monkeypatch.setattr(_credstore, "CREDSTORE", (credstore,))
    monkeypatch.setattr(doctor_checks, "state_root", lambda scope, env=None: state)
    monkeypatch.setattr(doctor_checks, "python_home_paths", lambda: [])
    return credstore, state


def _doctor(prefix: Path, config: Path | None = None) -> tuple[int, dict[str, dict[str, object]]]:
    result = invoke(doctor, ["--prefix", str(prefix), "--json"], config)
    report = json.loads(result.output)
    assert report["ok"] is (result.exit_code == 0)
    return result.exit_code, {check["name"]: check for check in report["checks"]}


def test_doctor_names_what_is_missing_with_fixes(
    installed: Path, stores: tuple[Path, Path]
) -> None:
    credstore, state = stores
    code, checks = _doctor(installed)
    assert code == 1
    assert checks["unit bridge-gateway.service"]["status"] == "ok"
    assert checks["config"]["status"] == "ok"
    token = checks["credential TELEGRAM_BOT_TOKEN (bridge-gateway, bridge-telegram)"]
    assert token["status"] == "missing" and str(credstore) in str(token["detail"])
    assert f"{credstore}/TELEGRAM_BOT_TOKEN" not in str(token["fix"])  # fixes name the real store
    assert "/etc/credstore/TELEGRAM_BOT_TOKEN" in str(token["fix"])
    assert not any("OPENAI_API_KEY" in name for name in checks), "echo backend needs no key"
    gateway_state = checks[f"state {state / 'bridge-gateway'}"]
    assert gateway_state["status"] == "missing"
    assert gateway_state["fix"] == "sudo systemctl start bridge-gateway.service creates it"

    for name in ("TELEGRAM_BOT_TOKEN", "REALTIME_CONTROL_SECRET"):
        (credstore / name).write_text("value-" + name)
    for name in ("bridge-gateway", "bridge-telegram"):
        (state / name).mkdir()
    code, checks = _doctor(installed)
    assert code == 0, checks
    mcp = checks.pop("codex mcp server")  # optional: a warning with its fix, never a failure
    assert mcp["status"] == "warn" and "bridgectl mcp install" in str(mcp["fix"])
    assert all(check["status"] == "ok" for check in checks.values())


def test_doctor_human_output(installed: Path, stores: tuple[Path, Path]) -> None:
    result = invoke(doctor, ["--prefix", str(installed)])
    assert result.exit_code == 1
    assert re.search(r"^MISSING +credential REALTIME_CONTROL_SECRET", result.output, re.M)
    assert "fix: sudo install -d -m 0700 /etc/credstore" in result.output
    assert "things missing; see the fixes above." in result.output


def test_doctor_missing_units_and_config(tmp_path: Path, stores: tuple[Path, Path]) -> None:
    code, checks = _doctor(tmp_path / "empty", tmp_path / "nowhere.toml")
    assert code == 1
    unit = checks["unit bridge-gateway.service"]
    assert unit["status"] == "missing" and "install-units" in str(unit["fix"])
    config = checks["config"]
    assert config["status"] == "missing" and "config check" in str(config["fix"])


def test_doctor_spots_raw_templates_and_stale_paths(
    tmp_path: Path, config: Path, installed: Path, stores: tuple[Path, Path]
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    telegram = "bridge-telegram.service"
    shutil.copy(REPO / "packaging" / "systemd" / telegram, raw / telegram)
    (raw / GATEWAY).write_text(
        (installed / GATEWAY)
        .read_text()
        .replace(
            str(Path(sys.executable).absolute().with_name("bridgehost")), "/gone/bin/bridgehost"
        )
    )
    shutil.copy(installed / "bridge-gateway.socket", raw / "bridge-gateway.socket")
    _, checks = _doctor(raw, config)
    raw_unit = checks["unit bridge-telegram.service"]
    assert raw_unit["status"] == "missing" and "raw template" in str(raw_unit["detail"])
    assert "@BRIDGEHOST@" in str(raw_unit["detail"]) and "install-units" in str(raw_unit["fix"])
    assert checks["unit bridge.target"]["status"] == "missing"
    assert checks["unit bridge-gateway.service executable"]["status"] == "missing"
    assert "/gone/bin/bridgehost" in str(checks["unit bridge-gateway.service executable"]["detail"])


def test_doctor_checks_the_config_against_the_units(
    installed: Path, config: Path, stores: tuple[Path, Path]
) -> None:
    config.write_text(CONFIG.replace("18999", "18998") + '\n[storage]\nroot = "/srv/bridge"\n')
    config.chmod(0o600)
    _, checks = _doctor(installed)
    assert checks["socket address"]["status"] == "missing"
    assert "127.0.0.1:18998" in str(checks["socket address"]["detail"])
    assert checks["config readable"]["status"] == "missing"
    assert checks["config storage.root"]["status"] == "warn"
    config.write_text(CONFIG.replace('backend = "echo"', 'backend = "openai"'))
    _, checks = _doctor(installed)
    assert (
        checks["credential OPENAI_API_KEY (bridge-gateway, bridge-telegram)"]["status"] == "missing"
    )


def test_doctor_accepts_secrets_from_an_environment_file(
    tmp_path: Path, installed: Path, stores: tuple[Path, Path]
) -> None:
    env_file = tmp_path / "secrets.env"
    env_file.write_text("TELEGRAM_BOT_TOKEN=x\nREALTIME_CONTROL_SECRET=y\n")
    dropin = installed / f"{GATEWAY}.d" / "10-env.conf"
    dropin.parent.mkdir(exist_ok=True)
    dropin.write_text(f"[Service]\nLoadCredential=\nEnvironmentFile={env_file}\n")
    _, checks = _doctor(installed)
    assert checks["credential TELEGRAM_BOT_TOKEN (bridge-gateway)"]["status"] == "ok"
    assert checks["credential TELEGRAM_BOT_TOKEN (bridge-telegram)"]["status"] == "missing"


def test_parse_unit_follows_systemd_list_semantics() -> None:
    parsed = parse_unit(
        "[Service]\n# LoadCredential=IGNORED\nLoadCredential=A\nLoadCredential=B\n"
        "LoadCredential=\nLoadCredential=C:/etc/c\nExecStart=/bin/x \\\n  --flag\n"
    )
    assert parsed["Service.LoadCredential"] == ["C:/etc/c"]
    assert parsed["Service.ExecStart"] == ["/bin/x  --flag"]
