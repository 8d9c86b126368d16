"""``bridgehost gateway`` refuses to start, clearly, when what it selects is missing or broken."""

from __future__ import annotations

import asyncio
import logging
import os
from types import SimpleNamespace

import aiohttp

from bridgehost.gateway import service

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


async def test_requests_are_logged_at_debug_only(gw, caplog, monkeypatch):
    """No access line per request at INFO (health probes would fill the journal); at DEBUG one
    event per request, without the query string (a launch token can be in it)."""
    logged: list[tuple[str, dict[str, object]]] = []
    recorder = SimpleNamespace(debug=lambda event, **fields: logged.append((event, fields)))
    monkeypatch.setattr(service, "access_log", recorder)

    caplog.set_level(logging.INFO, logger="aiohttp.access")
    async with aiohttp.ClientSession() as http, http.get(f"{gw.base}/healthz") as resp:
        assert resp.status == 200
    assert logged == [] and not [r for r in caplog.records if r.name == "aiohttp.access"]

    caplog.set_level(logging.DEBUG, logger="aiohttp.access")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gw.base}/healthz") as resp:
            assert resp.status == 200
        async with http.get(f"{gw.base}/miniapp?launch=not-a-real-token") as resp:
            assert resp.status == 404
    assert [(event, f["method"], f["path"], f["status"]) for event, f in logged] == [
        ("http request", "GET", "/healthz", 200),
        ("http request", "GET", "/miniapp", 404),
    ]
    assert "not-a-real-token" not in repr(logged)
