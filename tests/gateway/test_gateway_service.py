"""``bridgehost gateway`` refuses to start, clearly, when what it selects is missing or broken."""

from __future__ import annotations

import asyncio
import os

from .conftest import free_port, secrets_env, write_config

BROKEN_BACKEND = "raise ImportError('libportaudio.so.2: cannot open shared object file')"


def _env(site_packages=None) -> dict[str, str]:
    base = site_packages.env() if site_packages else dict(os.environ)
    return {**base, **secrets_env()}


def test_unknown_backend_names_the_choices(cli, tmp_path):
    config = write_config(tmp_path, free_port(), backend="nope")
    result = cli(["bridgehost", "--config", str(config), "gateway"], env=_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "bridge-gateway cannot start" in result.stderr
    assert "no realtime backend named 'nope'. Choose one of: echo" in result.stderr


def test_broken_selected_plugin_names_plugin_version_and_error(cli, tmp_path, site_packages):
    site_packages.install(
        "bridgehost-voice", "0.3.1", {"voice_plugin": BROKEN_BACKEND}, {"voice": "voice_plugin"}
    )
    config = write_config(tmp_path, free_port(), backend="voice")
    result = cli(
        ["bridgehost", "--config", str(config), "gateway"], env=_env(site_packages), cwd=tmp_path
    )
    assert result.returncode == 2
    assert "plugin voice 0.3.1, which failed to load" in result.stderr
    assert "libportaudio.so.2" in result.stderr


def test_broken_unselected_plugin_does_not_stop_the_gateway_check(cli, tmp_path, site_packages):
    site_packages.install(
        "bridgehost-voice", "0.3.1", {"voice_plugin": BROKEN_BACKEND}, {"voice": "voice_plugin"}
    )
    config = write_config(tmp_path, free_port())
    config.write_text(config.read_text() + '[handoff]\nsinks = ["file"]\n')
    result = cli(
        ["bridgectl", "--config", str(config), "config", "check", "--service", "gateway"],
        env=_env(site_packages),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_secrets_are_all_listed(cli, tmp_path):
    config = write_config(tmp_path, free_port())
    env = {k: v for k, v in os.environ.items() if k not in secrets_env()}
    result = cli(["bridgehost", "--config", str(config), "gateway"], env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "TELEGRAM_BOT_TOKEN" in result.stderr
    assert "REALTIME_CONTROL_SECRET" in result.stderr


async def test_systemd_notifications_and_a_clean_stop_ending_the_call(
    notify_socket, gateway_factory
):
    gw = await gateway_factory()
    ready = await notify_socket.wait_for_async("READY", "1")
    assert ready
    statuses = [m["STATUS"] for m in notify_socket.messages() if "STATUS" in m]
    assert any("disarmed" in s for s in statuses)
    body = await gw.start_call()
    gw.stop.set()
    ended = await gw.bridge.wait_for("call.ended")
    assert (ended["reason"], ended["ended_by"]) == ("gateway_stop", "gateway")
    await asyncio.wait_for(gw.task, 10)
    assert await notify_socket.wait_for_async("STOPPING", "1")
    assert body["call_id"]
