"""The ``managed-quick-cloudflared`` tunnel mode against the fake ``cloudflared`` (loopback only).

The public ``*.trycloudflare.com`` hostname cannot resolve here, so every test maps it to a
local stand-in gateway through the provider's probe seam (``tunnel.probe``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web

import bridgehost.builtin.cloudflared as cloudflared
from bridgehost.builtin._probe import probe_public_origin
from bridgehost.builtin.cloudflared import NAME, CloudflaredSettings, ManagedQuickCloudflared
from bridgehost.builtin.cloudflared._process import URL_PATTERN, summarize, tunnel_target
from bridgehost.config import load_config
from bridgehost.plugins import PluginHost
from bridgehost.providers import Health, ProviderContext, ProviderStartError, Tunnel

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "cloudflared"
DNS_FAILURE = "DNS lookup failed: Name or service not known"


# --- helpers -----------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (an orphan's zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def gone_within(pid: int, seconds: float) -> bool:
    """Wait (bounded) for ``pid`` to disappear."""
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


class MappedProbe:
    """The probe seam: maps the public URL to the local gateway; fails the first K attempts."""

    def __init__(self, gateway_url: str, *, fail_first: int = 0) -> None:
        self.gateway_url = gateway_url
        self.fail_first = fail_first
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None  # when set, probes wait for it

    async def __call__(self, public_url: str) -> Health:
        assert URL_PATTERN.fullmatch(public_url), public_url
        self.calls.append(public_url)
        if self.gate is not None:
            await self.gate.wait()
        if len(self.calls) <= self.fail_first:
            return Health(
                ok=False,
                detail=f"public origin {public_url} did not answer /healthz ({DNS_FAILURE})",
            )
        health = await probe_public_origin(self.gateway_url)
        return Health(
            ok=health.ok,
            detail=health.detail.replace(self.gateway_url, public_url),
            checked_at=health.checked_at,
        )


@pytest.fixture
async def gateway() -> AsyncIterator[str]:
    """A stand-in gateway on loopback answering ``/healthz`` like the real one."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[dict[str, Any]]]:
    """Every fake cloudflared run records its argv and environment; this lists them in order."""
    record = tmp_path / "runs"
    record.mkdir()
    monkeypatch.setenv("FAKE_CLOUDFLARED_RECORD", str(record))
    for knob in ("MODE", "URL", "CRASH_AFTER_S", "CRASH_ONCE", "READY_AFTER_S"):
        monkeypatch.delenv(f"FAKE_CLOUDFLARED_{knob}", raising=False)

    def load() -> list[dict[str, Any]]:
        found = [json.loads(p.read_text()) for p in record.glob("*.json")]
        return sorted(found, key=lambda r: os.stat(record / f"{r['pid']}.json").st_mtime_ns)

    return load


def write_config(
    tmp_path: Path,
    gateway_url: str,
    *,
    tunnel_bin: str | Path = FAKE,
    startup_timeout_ms: int = 5000,
    **settings: object,
) -> Path:
    """A small bridge.config.toml selecting the managed tunnel."""
    port = int(gateway_url.rsplit(":", 1)[1])
    table = "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    path = tmp_path / "bridge.config.toml"
    path.write_text(
        textwrap.dedent(f"""\
        [realtime]
        tunnel_mode = "{NAME}"
        tunnel_bin = "{tunnel_bin}"
        gateway_host = "127.0.0.1"
        gateway_port = {port}
        startup_timeout_ms = {startup_timeout_ms}

        [storage]
        root = "{tmp_path / "state"}"

        [plugins.{NAME}]
        """)
        + table
    )
    return path


def build_tunnel(
    tmp_path: Path, gateway_url: str, *, fail_first: int = 0, **config: Any
) -> ManagedQuickCloudflared:
    """Build the provider the way the gateway does: config → plugin host → factory."""
    loaded = load_config(write_config(tmp_path, gateway_url, **config), env={})
    host = PluginHost()
    host.register(cloudflared, NAME)
    tunnel = host.build(host.select("tunnel_modes", NAME), loaded.config, loaded.secrets)
    assert isinstance(tunnel, ManagedQuickCloudflared)
    tunnel.probe = MappedProbe(gateway_url, fail_first=fail_first)
    return tunnel


@pytest.fixture
async def tunnels() -> AsyncIterator[list[ManagedQuickCloudflared]]:
    """Tunnels to stop at the end of the test, whatever happened."""
    made: list[ManagedQuickCloudflared] = []
    yield made
    for tunnel in made:
        await tunnel.stop()


# --- pure pieces -------------------------------------------------------------------------------


def test_url_is_the_last_trycloudflare_match_in_the_box():
    lines = [
        "2026-05-29T09:25:38Z INF |  https://old-name-one-two.trycloudflare.com   |",
        "2026-05-29T09:25:38Z INF |  https://oklahoma-solo-younger-truck.trycloudflare.com  |",
    ]
    found = [m for line in lines for m in URL_PATTERN.findall(line)]
    assert found[-1] == "https://oklahoma-solo-younger-truck.trycloudflare.com"
    assert not URL_PATTERN.search("https://developers.cloudflare.com/cloudflare-one")
    error = 'ERR failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": x'
    assert not URL_PATTERN.search(error)


def test_target_and_summary():
    assert tunnel_target("0.0.0.0", 8890) == "http://127.0.0.1:8890"
    assert tunnel_target("::1", 8890) == "http://[::1]:8890"
    text = summarize(["2026-05-29T09:25:34Z INF fine", "2026-05-29T09:25:34Z ERR   it  broke"])
    assert text == "ERR it broke"


def test_registered_with_its_settings_model():
    ep = EntryPoint(NAME, "bridgehost.builtin.cloudflared", "bridgehost")
    host = PluginHost.load(env={}, entry_points=[ep])
    plugin = host.record(NAME)
    assert plugin is not None and plugin.error is None
    assert plugin.provides["tunnel_modes"] == [NAME]
    record = host.select("tunnel_modes", NAME).record
    assert record.settings_model is CloudflaredSettings
    assert cloudflared.bridgehost_register_tunnel_modes.__doc__


# --- starting ----------------------------------------------------------------------------------


async def test_start_finds_url_waits_for_ready_and_probes(
    tmp_path, gateway, runs, tunnels, monkeypatch
):
    url = "https://oklahoma-solo-younger-truck.trycloudflare.com"
    monkeypatch.setenv("FAKE_CLOUDFLARED_URL", url)
    tunnel = build_tunnel(tmp_path, gateway)
    tunnels.append(tunnel)
    progress: list[str] = []
    tunnel.on_progress = progress.append
    assert isinstance(tunnel, Tunnel)
    assert tunnel.public_url is None

    await tunnel.start()

    assert tunnel.public_url == url
    assert tunnel.pid is not None and alive(tunnel.pid)
    (run,) = runs()
    argv = run["argv"]
    assert argv[:2] == ["tunnel", "--no-autoupdate"]
    assert argv[argv.index("--url") + 1] == gateway
    assert re.fullmatch(r"127\.0\.0\.1:\d+", argv[argv.index("--metrics") + 1])
    assert any(f"cloudflared issued {url}" in p for p in progress)
    assert any("reaches the gateway" in p for p in progress)
    health = await tunnel.health()
    assert health.ok and health.checked_at is not None
    assert tunnel.probe.calls == [url]


async def test_child_environment_has_no_systemd_variables(
    tmp_path, gateway, runs, tunnels, monkeypatch
):
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("BRIDGEHOST_MARKER", "kept")
    tunnel = build_tunnel(tmp_path, gateway)
    tunnels.append(tunnel)
    await tunnel.start()
    env = runs()[0]["env"]
    assert "NOTIFY_SOCKET" not in env and "WATCHDOG_USEC" not in env and "LISTEN_FDS" not in env
    assert env["BRIDGEHOST_MARKER"] == "kept"


async def test_slow_dns_is_retried_with_backoff(tmp_path, gateway, runs, tunnels):
    tunnel = build_tunnel(tmp_path, gateway, fail_first=3)
    tunnels.append(tunnel)
    progress: list[str] = []
    tunnel.on_progress = progress.append
    await tunnel.start()
    assert len(tunnel.probe.calls) == 4
    assert sum("not reachable yet" in p for p in progress) == 3
    assert any("attempt 3" in p and DNS_FAILURE in p for p in progress)
    assert (await tunnel.health()).ok


async def test_probe_waits_for_metrics_ready(tmp_path, gateway, runs, tunnels, monkeypatch):
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "slow_ready")
    monkeypatch.setenv("FAKE_CLOUDFLARED_READY_AFTER_S", "0.8")
    tunnel = build_tunnel(tmp_path, gateway)
    tunnels.append(tunnel)
    probe = tunnel.probe
    ready_seen: list[int] = []

    async def probe_checking_ready(public_url: str) -> Health:
        argv = runs()[-1]["argv"]
        metrics = argv[argv.index("--metrics") + 1]
        reader, writer = await asyncio.open_connection(*metrics.split(":"))
        writer.write(b"GET /ready HTTP/1.0\r\nHost: x\r\n\r\n")
        status = int((await reader.readline()).split()[1])
        writer.close()
        ready_seen.append(status)
        return await probe(public_url)

    tunnel.probe = probe_checking_ready
    started = time.monotonic()
    await tunnel.start()
    assert time.monotonic() - started >= 0.7
    assert ready_seen == [200]


async def test_never_ready_fails_with_the_protocol_hint(tmp_path, gateway, runs, monkeypatch):
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "slow_ready")
    monkeypatch.setenv("FAKE_CLOUDFLARED_READY_AFTER_S", "30")
    tunnel = build_tunnel(tmp_path, gateway, startup_timeout_ms=800)
    with pytest.raises(ProviderStartError, match="did not connect to Cloudflare") as info:
        await tunnel.start()
    assert "http2" in (info.value.fix or "")
    assert not alive(runs()[0]["pid"])


async def test_probe_that_never_succeeds_fails_within_the_timeout(tmp_path, gateway, runs):
    tunnel = build_tunnel(tmp_path, gateway, startup_timeout_ms=1200, fail_first=10**6)
    started = time.monotonic()
    with pytest.raises(ProviderStartError, match=r"did not reach the gateway within 1\.2 s"):
        await tunnel.start()
    assert time.monotonic() - started < 4
    assert len(tunnel.probe.calls) >= 2
    assert not alive(runs()[0]["pid"])


# --- failures and cooldowns --------------------------------------------------------------------


async def test_missing_binary_names_the_fix(tmp_path, gateway):
    missing = tmp_path / "bin" / "cloudflared"
    tunnel = build_tunnel(tmp_path, gateway, tunnel_bin=missing)
    for _ in range(2):  # no cooldown: fixing the install must work at once
        with pytest.raises(ProviderStartError) as info:
            await tunnel.start()
        message = str(info.value)
        assert f"cloudflared not found at '{missing}'" in message
        assert "install it (https://developers.cloudflare.com/" in message
        assert 'set realtime.tunnel_mode = "static-public-url"' in message


async def test_rate_limit_starts_a_long_cooldown(tmp_path, gateway, runs, monkeypatch):
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "rate_limit")
    tunnel = build_tunnel(tmp_path, gateway)
    with pytest.raises(ProviderStartError) as info:
        await tunnel.start()
    assert "rate-limited" in str(info.value) and "error code: 1015" in str(info.value)
    assert "Not retrying for 600 s" in str(info.value)

    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "ok")
    with pytest.raises(
        ProviderStartError,
        match=r"cooling down after Cloudflare rate-limited"
        r".*retry after \d\d:\d\d:\d\d UTC \(in \d+ s\)",
    ):
        await tunnel.start()
    assert len(runs()) == 1  # nothing was spawned during the cooldown
    health = await tunnel.health()
    assert not health.ok and "cooling down" in health.detail


async def test_crash_before_url_reports_its_output_and_a_short_cooldown(
    tmp_path, gateway, runs, monkeypatch
):
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "crash_before_url")
    tunnel = build_tunnel(tmp_path, gateway)
    with pytest.raises(ProviderStartError) as info:
        await tunnel.start()
    message = str(info.value)
    assert "cloudflared exited with code 1 before printing a public URL" in message
    assert "failed to request quick Tunnel" in message and "no such host" in message
    assert "Not retrying for 60 s" in message  # shorter than the 600 s after a rate limit


async def test_no_url_times_out_with_the_last_lines(tmp_path, gateway, runs, monkeypatch):
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "no_url")
    tunnel = build_tunnel(tmp_path, gateway, startup_timeout_ms=700)
    started = time.monotonic()
    with pytest.raises(ProviderStartError) as info:
        await tunnel.start()
    assert time.monotonic() - started < 3
    message = str(info.value)
    assert "cloudflared printed no public URL within 0.7 s" in message
    assert "Requesting new quick Tunnel on trycloudflare.com" in message
    assert not alive(runs()[0]["pid"])


async def test_cooldown_expires_on_the_clock(tmp_path, gateway, runs, tunnels, monkeypatch):
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "rate_limit")
    loaded = load_config(write_config(tmp_path, gateway), env={})
    now = [1000.0]
    context = ProviderContext(
        config=loaded.config,
        settings=None,
        secrets=loaded.secrets,
        log=structlog.get_logger("test"),
        plugin="test",
    )
    tunnel = ManagedQuickCloudflared(context, probe=MappedProbe(gateway), clock=lambda: now[0])
    tunnels.append(tunnel)
    with pytest.raises(ProviderStartError, match="rate-limited"):
        await tunnel.start()
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "ok")
    now[0] += 599
    with pytest.raises(ProviderStartError, match=r"\(in 1 s\)"):
        await tunnel.start()
    now[0] += 1
    await tunnel.start()
    assert tunnel.public_url is not None


# --- running, restarting, stopping -------------------------------------------------------------


async def test_crash_while_running_restarts_and_reports_the_new_url(
    tmp_path, gateway, runs, tunnels, monkeypatch, captured_logs
):
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "crash_after")
    monkeypatch.setenv("FAKE_CLOUDFLARED_CRASH_AFTER_S", "0.3")
    monkeypatch.setenv("FAKE_CLOUDFLARED_CRASH_ONCE", str(tmp_path / "crashed"))
    tunnel = build_tunnel(tmp_path, gateway)
    tunnels.append(tunnel)
    changes: asyncio.Queue[tuple[str | None, str]] = asyncio.Queue()

    async def on_url_change(url: str | None, reason: str) -> None:
        await changes.put((url, reason))

    tunnel.on_url_change = on_url_change
    await tunnel.start()
    first_url, first_pid = tunnel.public_url, tunnel.pid
    assert first_pid is not None

    new_url, reason = await asyncio.wait_for(changes.get(), 10)
    assert new_url is not None and new_url != first_url
    assert f"pid {first_pid}) exited with code 1" in reason and "restarted at" in reason
    assert tunnel.public_url == new_url
    assert tunnel.pid not in (None, first_pid) and not alive(first_pid)
    assert len(runs()) == 2
    assert (await tunnel.health()).ok
    events = {e["event"]: e for e in captured_logs}
    assert events["tunnel.exited"]["pid"] == first_pid
    assert events["tunnel.exited"]["plugin"] == NAME
    assert events["tunnel.restarted"]["url"] == new_url


async def test_restarts_are_bounded(tmp_path, gateway, runs, tunnels, monkeypatch):
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "crash_after")
    monkeypatch.setenv("FAKE_CLOUDFLARED_CRASH_AFTER_S", "0.6")
    tunnel = build_tunnel(tmp_path, gateway, max_restarts=1)
    tunnels.append(tunnel)
    changes: list[tuple[str | None, str]] = []
    done = asyncio.Event()

    def on_url_change(url: str | None, reason: str) -> None:
        changes.append((url, reason))
        if url is None:
            done.set()

    tunnel.on_url_change = on_url_change
    await tunnel.start()
    await asyncio.wait_for(done.wait(), 10)
    assert [url is None for url, _ in changes] == [False, True]
    assert "gave up after 1 restart in 10 min" in changes[-1][1]
    assert tunnel.public_url is None and tunnel.pid is None
    health = await tunnel.health()
    assert not health.ok and "gave up" in health.detail
    assert not any(alive(run["pid"]) for run in runs())


async def test_stop_leaves_no_child(tmp_path, gateway, runs):
    tunnel = build_tunnel(tmp_path, gateway)
    await tunnel.start()
    pid = tunnel.pid
    assert pid is not None and alive(pid)
    await tunnel.stop()
    assert not alive(pid)
    assert tunnel.public_url is None and tunnel.pid is None
    await tunnel.stop()  # twice is fine
    assert not (await tunnel.health()).ok


async def test_stop_during_start_kills_the_child_without_a_cooldown(
    tmp_path, gateway, runs, tunnels, monkeypatch
):
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "slow_ready")
    monkeypatch.setenv("FAKE_CLOUDFLARED_READY_AFTER_S", "30")
    tunnel = build_tunnel(tmp_path, gateway)
    tunnels.append(tunnel)
    starting = asyncio.create_task(tunnel.start())
    async with asyncio.timeout(5):
        while not runs():
            await asyncio.sleep(0.02)
    await tunnel.stop()
    with pytest.raises(ProviderStartError, match="stopped while it was starting"):
        await asyncio.wait_for(starting, 5)
    assert not alive(runs()[0]["pid"])
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "ok")
    await tunnel.start()  # no cooldown after a stop
    assert tunnel.public_url is not None


async def test_health_is_cached_and_refreshed_in_the_background(tmp_path, gateway, runs, tunnels):
    tunnel = build_tunnel(tmp_path, gateway, probe_interval_s=0.2)
    tunnels.append(tunnel)
    await tunnel.start()
    first = await tunnel.health()
    assert first.ok and len(tunnel.probe.calls) == 1

    await asyncio.sleep(0.25)
    tunnel.probe.gate = asyncio.Event()  # the next probe hangs until released
    cached = await asyncio.wait_for(tunnel.health(), 0.1)
    assert cached == first
    await asyncio.sleep(0.05)
    assert len(tunnel.probe.calls) == 2  # one refresh scheduled…
    await tunnel.health()
    assert len(tunnel.probe.calls) == 2  # …and not a second while it runs
    tunnel.probe.gate.set()
    for _ in range(50):
        if (latest := await tunnel.health()).checked_at != first.checked_at:
            break
        await asyncio.sleep(0.02)
    assert latest.ok and latest.checked_at > first.checked_at


DRIVER = """\
import asyncio, sys
import bridgehost.builtin.cloudflared as cf
from bridgehost.config import load_config
from bridgehost.plugins import PluginHost
from bridgehost.providers import Health

async def mapped(url):
    return Health(ok=True, detail="mapped to the local gateway")

async def main():
    loaded = load_config(sys.argv[1], env={})
    host = PluginHost()
    host.register(cf, cf.NAME)
    tunnel = host.build(host.select("tunnel_modes", cf.NAME), loaded.config, loaded.secrets)
    tunnel.probe = mapped
    await tunnel.start()
    print("CHILD_PID", tunnel.pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_no_orphan_when_the_owner_is_sigkilled(tmp_path, gateway, runs):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    config = write_config(tmp_path, gateway)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(driver),
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    child_pid = None
    try:
        async with asyncio.timeout(15):
            while child_pid is None and (line := await proc.stdout.readline()):
                if line.startswith(b"CHILD_PID"):
                    child_pid = int(line.split()[1])
        assert child_pid is not None, "the driver never reported its cloudflared pid"
        assert alive(child_pid)
        proc.kill()  # SIGKILL: the driver gets no chance to stop its child
        await asyncio.wait_for(proc.wait(), 5)
        assert await gone_within(child_pid, 5), "cloudflared outlived its SIGKILLed owner"
    finally:
        if proc.returncode is None:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 5)
        if child_pid is not None and alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)


async def test_rate_limit_cooldown_is_reported_and_survives_a_restart(
    tmp_path, gateway, runs, monkeypatch
):
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "rate_limit")
    tunnel = build_tunnel(tmp_path, gateway)
    assert tunnel.cooldown_status() == dict.fromkeys(
        ("cooldown_until", "cooldown_s", "cooldown_reason", "rate_limited")
    )
    with pytest.raises(ProviderStartError, match="rate-limited"):
        await tunnel.start()
    status = tunnel.cooldown_status()
    until = datetime.fromisoformat(status["cooldown_until"])
    assert until.tzinfo is not None
    assert 595 <= (until - datetime.now(UTC)).total_seconds() <= 601
    assert 595 <= status["cooldown_s"] <= 600 and status["rate_limited"] is True
    assert "Cloudflare rate-limited" in status["cooldown_reason"]
    saved = json.loads((tmp_path / "state" / "tunnel-cooldown.json").read_text())
    assert saved["rate_limited"] is True and saved["until"] == status["cooldown_until"]

    # A new gateway process: the same state directory, a fresh provider object.
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "ok")
    restarted = build_tunnel(tmp_path, gateway)
    assert restarted.cooldown_status()["cooldown_until"] == status["cooldown_until"]
    with pytest.raises(ProviderStartError, match=r"cooling down after Cloudflare rate-limited"):
        await restarted.start()
    assert len(runs()) == 1  # the restarted gateway spawned nothing during the cooldown


async def test_a_passed_cooldown_is_forgotten_at_start_up(tmp_path, gateway, runs, tunnels):
    state = tmp_path / "state"
    state.mkdir()
    stale = {"until": "2020-01-01T00:00:00+00:00", "reason": "x", "detail": "", "rate_limited": 1}
    (state / "tunnel-cooldown.json").write_text(json.dumps(stale))
    tunnel = build_tunnel(tmp_path, gateway)
    tunnels.append(tunnel)
    assert tunnel.cooldown_status()["cooldown_until"] is None
    assert not (state / "tunnel-cooldown.json").exists()
    await tunnel.start()
    assert tunnel.public_url is not None


async def test_an_unreadable_cooldown_file_means_no_cooldown(tmp_path, gateway):
    state = tmp_path / "state"
    state.mkdir()
    (state / "tunnel-cooldown.json").write_text("{not json")
    assert build_tunnel(tmp_path, gateway).cooldown_status()["cooldown_s"] is None
