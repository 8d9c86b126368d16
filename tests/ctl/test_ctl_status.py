"""``bridgectl status`` and ``capabilities`` against a real gateway, and each failure mode."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ctl_harness import (
    RunningGateway,
    add_section,
    ctl_env,
    free_port,
    one_line_error,
    run,
    run_sync,
    variant,
    write_config,
)

from bridgehost.basics import today
from bridgehost.state.bridge_store import BridgeStore

THREAD = "019a0000-0000-7000-8000-000000000001"

pytest_plugins = ("ctl_fixtures",)  # the ctl_gateway fixture


def bind_in_store(gw: RunningGateway, thread_id: str = THREAD) -> None:
    """What the bridge would have stored after 'bind'."""
    store = BridgeStore.open(gw.loaded.config.storage.root)
    try:
        store.bind(thread_id)
    finally:
        store.close()


def check(result, name: str) -> dict:
    return next(c for c in result.json["checks"] if c["name"] == name)


async def test_everything_ready(ctl_gateway, cli) -> None:
    gw = await ctl_gateway()
    await gw.arm()
    bind_in_store(gw)
    config = gw.loaded.path

    caps = await run(cli, config, "capabilities")
    assert caps.code == 0, caps
    assert caps.stdout.startswith("Ready: /call will offer the Mini App.")
    assert "[ok]   TELEGRAM_BOT_TOKEN:" in caps.stdout
    assert "present (environment)" in caps.stdout
    assert BOT_TOKEN_FRAGMENT not in caps.stdout + caps.stderr
    assert "[FAIL]" not in caps.stdout and caps.stderr == ""

    data = (await run(cli, config, "capabilities", "--json")).json
    assert data["ready"] is True
    assert all(set(c) == {"name", "ok", "detail", "fix"} for c in data["checks"])
    names = [c["name"] for c in data["checks"]]
    for expected in (
        "Realtime calls",
        "TELEGRAM_BOT_TOKEN",
        "REALTIME_CONTROL_SECRET",
        "Authorized chat",
        "Gateway",
        "Control channel",
        "Call surface",
        "Public Mini App origin",
        "Session owner",
        "Bound Codex thread",
        "Call budget",
    ):
        assert expected in names

    status = await run(cli, config, "status")
    assert status.code == 0, status
    out = status.stdout
    assert f"Gateway:         reachable at {gw.base} (backend echo, relay)" in out
    assert "Call surface:    ready — armed at" in out and "invite valid until" in out
    assert "Bridge:          connected since" in out
    assert "Current call:    none" in out
    assert "Owner:           telegram" in out
    assert f"Bound thread:    {THREAD} (bound " in out
    assert (
        "Budget:          0 calls today, 0s used of 600s, 600s left; next call capped at 300s"
        in out
    )
    assert "Ready for /call: yes" in out

    data = (await run(cli, config, "status", "--json")).json
    assert data["gateway"]["reachable"] is True and data["ready"] is True
    assert data["bridge"]["connected"] is True and data["bridge"]["thread_id"] == THREAD
    assert data["surface"]["armed"] is True and "token_hash" not in data["surface"]
    assert data["budget"]["next_call_cap_ms"] == 300_000 and data["call"] is None


BOT_TOKEN_FRAGMENT = "TEST-bot-token"


async def test_gateway_down(tmp_path: Path, cli) -> None:
    config = write_config(tmp_path, free_port())
    add_section(config, '[plugins]\ndisabled = ["openai"]')  # see ctl_fixtures
    status, data, caps, armed, armed_json, hangup = await asyncio.gather(
        run(cli, config, "status"),
        run(cli, config, "status", "--json"),
        run(cli, config, "capabilities"),
        run(cli, config, "call", "arm"),
        run(cli, config, "call", "arm", "--json"),
        run(cli, config, "call", "hangup"),
    )
    assert status.code == 3, status
    error = one_line_error(status)
    assert "is not answering" in error and "systemctl start bridge-gateway" in error
    assert "Gateway:         not answering at http://127.0.0.1:" in status.stdout
    assert data.code == 3 and data.json["gateway"]["reachable"] is False

    assert caps.code == 1, caps
    assert "[FAIL] Gateway:" in caps.stdout
    assert "fix: start it: systemctl start bridge-gateway (or bridgehost gateway)" in caps.stdout

    for result in (armed, hangup):
        assert result.code == 3, result
        assert "systemctl start bridge-gateway" in one_line_error(result)
    assert armed_json.code == 3 and armed_json.json["error"]["code"] == "unreachable"


async def test_control_channel_not_connected(ctl_gateway, cli) -> None:
    gw = await ctl_gateway(connect_bridge=False)
    caps = await run(cli, gw.loaded.path, "capabilities")
    assert caps.code == 1, caps
    assert "[FAIL] Control channel:" in caps.stdout and "bridge not connected" in caps.stdout
    assert "fix: start bridge-telegram (systemctl start bridge-telegram)" in caps.stdout
    assert "Control channel: bridge not connected" in one_line_error(caps)

    status = await run(cli, gw.loaded.path, "status")
    assert status.code == 0, status
    assert "Bridge:          not connected — start bridge-telegram" in status.stdout
    assert "Ready for /call: no — " in status.stdout


async def test_missing_control_secret(ctl_gateway, cli) -> None:
    gw = await ctl_gateway()
    env = ctl_env(REALTIME_CONTROL_SECRET=None)
    caps = await run(cli, gw.loaded.path, "capabilities", env=env)
    assert caps.code == 1, caps
    assert "[FAIL] REALTIME_CONTROL_SECRET:" in caps.stdout
    assert "missing: the bridge's control channel needs it" in caps.stdout
    assert "REALTIME_CONTROL_SECRET" in one_line_error(caps)

    status, armed = (
        await run(cli, gw.loaded.path, "status", env=env),
        await run(cli, gw.loaded.path, "call", "arm", env=env),
    )
    for result in (status, armed):
        assert result.code == 2, result
        assert "REALTIME_CONTROL_SECRET is not set" in one_line_error(result)
    assert f"Gateway:         {gw.base} could not be asked (no_secret; see below)" in status.stdout
    data = await run(cli, gw.loaded.path, "status", "--json", env=env)
    assert data.code == 2 and data.json["gateway"]["reachable"] is None
    assert data.json["gateway"]["error"]["code"] == "no_secret"

    wrong = await run(
        cli, gw.loaded.path, "call", "status", env=ctl_env(REALTIME_CONTROL_SECRET="not-the-secret")
    )
    assert wrong.code == 2 and "control secret is missing or wrong" in one_line_error(wrong)


async def test_missing_openai_key_with_openai_backend(gateway_factory, cli) -> None:
    gw = await gateway_factory()  # the config keeps the openai builtin enabled
    config = variant(gw.loaded.path, "openai.toml", backend="openai")
    caps = await run(cli, config, "capabilities", "--json")
    assert caps.code == 1
    key = check(caps, "OPENAI_API_KEY")
    assert (
        key["ok"] is False
        and key["detail"] == "missing: the gateway opens OpenAI realtime sessions with it"
    )
    assert "OPENAI_API_KEY=" in key["fix"]
    human = await run(cli, config, "capabilities")
    assert "[FAIL] OPENAI_API_KEY:" in human.stdout and "fix: put OPENAI_API_KEY=" in human.stdout

    present = await run(
        cli, config, "capabilities", "--json", env=ctl_env(OPENAI_API_KEY="sk-test-not-shown")
    )
    assert check(present, "OPENAI_API_KEY")["detail"] == "present (environment)"
    assert "sk-test-not-shown" not in present.stdout


async def test_budget_exhausted(ctl_gateway, cli) -> None:
    gw = await ctl_gateway()
    await gw.arm()
    bind_in_store(gw)
    gw.gateway.store.charge("earlier-call", today(), 600_000)
    caps = await run(cli, gw.loaded.path, "capabilities")
    assert caps.code == 1, caps
    assert "[FAIL] Call budget:" in caps.stdout and "next call capped at 0s" in caps.stdout
    assert "the daily budget is used up; it resets at midnight" in caps.stdout
    assert "Call budget" in one_line_error(caps)

    status = await run(cli, gw.loaded.path, "status")
    assert "600s used of 600s, 0s left" in status.stdout and "exhausted" in status.stdout


def test_invalid_config_is_exit_2(tmp_path: Path, cli) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[realtime]\ngateway_port = 99999\n")
    for args in (["capabilities"], ["claim"]):
        result = run_sync(cli, config, *args)
        assert result.code == 2, (args, result)
        error = one_line_error(result)
        assert "gateway_port" in error and "bridgectl config check" in error
    data = run_sync(cli, config, "status", "--json")
    assert data.code == 2 and data.json["error"]["code"] == "config"
