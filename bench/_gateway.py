"""A real ``bridgehost gateway`` process on loopback, a bridge on its ``/ws/bridge``, and a
scripted caller doing what the Mini App does: the stand-ins every call benchmark shares.

The gateway runs as its own process (so its memory is its own) with the ``echo`` backend
answering at once (``delay_ms = 0``: a relayed frame's round trip is all gateway), a static
``http://127.0.0.1`` origin, generous rate limits and a short finalize grace. The bridge is the
demo's (the real control-channel client, event store and handoff pipeline with the ``file``
sink) in the benchmark's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from _procs import notify_socket, rss_mib

ROOT = Path(__file__).resolve().parent.parent
BRIDGEHOST = str(Path(sys.executable).with_name("bridgehost"))
USER_ID = 1
START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 20.0


def codex_binary() -> str:
    """The codex CLI for the benchmarks that drive a real Codex (the one the tests pin)."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))  # fakes.*: the loopback stand-ins
    from fakes.codex_model import find_codex_binary

    binary = find_codex_binary()
    if binary is None:
        raise RuntimeError("no codex binary: set BRIDGEHOST_CODEX_BIN or run scripts/test.sh")
    return binary


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def service_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A hermetic environment for a service: its own HOME and XDG dirs, no systemd variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local/state"),
        XDG_CACHE_HOME=str(home / ".cache"),
        CODEX_HOME=str(home / ".codex"),
        BRIDGEHOST_LOG_LEVEL="WARNING",
    )
    env.update(extra or {})
    return env


def write_gateway_config(root: Path, port: int, *, backend: str = "echo", extra: str = "") -> Path:
    """The benchmark gateway's ``bridge.config.toml`` under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "bridge.config.toml"
    path.write_text(
        "[realtime]\nenabled = true\n"
        f'backend = "{backend}"\ntunnel_mode = "static-public-url"\n'
        f'public_url = "http://127.0.0.1:{port}"\ngateway_port = {port}\n'
        "finalize_grace_ms = 1\nidle_warning_ms = 240000\nidle_timeout_ms = 300000\n"
        "max_call_ms = 600000\nmax_daily_call_ms = 86400000\n"
        "bootstrap_rate_limit_per_user = 100000\nbootstrap_rate_limit_per_ip = 100000\n"
        f"bootstrap_rate_limit_per_bridge = 100000\n{extra}"
        f"[telegram]\nauthorized_chat_id = {USER_ID}\n"
        f'[storage]\nroot = "{root / "state"}"\n'
        '[handoff]\nsinks = ["file"]\n[plugins.echo]\ndelay_ms = 0\n'
    )
    return path


def new_secrets() -> dict[str, str]:
    """Fresh secrets for one gateway (no OpenAI key: nothing may leave loopback, so the bridge's
    summarizer is off and handoffs carry the transcript alone)."""
    return {
        "TELEGRAM_BOT_TOKEN": f"{USER_ID}0000:bench-{secrets.token_hex(8)}",
        "REALTIME_CONTROL_SECRET": secrets.token_urlsafe(24),
    }


@dataclass
class CallHandle:
    """One bootstrapped call with its authenticated call socket."""

    call_id: str
    client_token: str
    ws: aiohttp.ClientWebSocketResponse
    bootstrap_ms: float


@dataclass
class Gateway:
    """A running gateway process, its bridge and a caller's HTTP session."""

    root: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    loaded: Any
    bridge: Any = None
    http: aiohttp.ClientSession | None = None
    api: Any = None
    _event_id: int = field(default=0)

    @property
    def base(self) -> str:
        """The gateway's loopback origin."""
        return f"http://127.0.0.1:{self.port}"

    def rss_mib(self) -> float:
        """The gateway process's resident memory."""
        return rss_mib(self.proc.pid)

    def init_data(self) -> str:
        """Mini App init data for the authorized user, signed with this gateway's bot token."""
        from bridgehost.gateway.initdata import sign_init_data

        user = json.dumps({"id": USER_ID, "first_name": "Bench"}, separators=(",", ":"))
        return sign_init_data(
            {"user": user, "auth_date": str(int(time.time()))},
            bot_token=self.env["TELEGRAM_BOT_TOKEN"],
        )

    async def open_call(self) -> CallHandle:
        """Arm, bootstrap, open and authenticate the call socket, log ``call.started``."""
        assert self.http is not None
        armed = await self.api.arm()
        launch = armed["launch_url"].split("launch=")[1]
        begin = time.perf_counter()
        async with self.http.post(
            f"{self.base}/api/call/bootstrap",
            json={"launch_token": launch, "init_data": self.init_data()},
        ) as resp:
            body = await resp.json()
        bootstrap_ms = (time.perf_counter() - begin) * 1000
        if resp.status != 200:
            raise RuntimeError(f"bootstrap failed: {body}")
        ws = await self.http.ws_connect(f"{self.base}{body['ws_path']}")
        await ws.send_json({"type": "call.auth", "token": body["client_token"]})
        await ws.receive_json(timeout=10)
        call = CallHandle(body["call_id"], body["client_token"], ws, bootstrap_ms)
        await self.event(call, {"type": "call.started"})
        return call

    async def event(self, call: CallHandle, event: dict[str, Any]) -> float:
        """Send one call event; return the milliseconds until its acknowledgement."""
        self._event_id += 1
        begin = time.perf_counter()
        await call.ws.send_json({"type": "call.event", "id": self._event_id, "event": event})
        async with asyncio.timeout(CALL_TIMEOUT_S):
            while True:
                reply = await call.ws.receive()
                if reply.type is aiohttp.WSMsgType.TEXT:
                    if json.loads(reply.data).get("type") == "call.event.ack":
                        return (time.perf_counter() - begin) * 1000
                elif reply.type is not aiohttp.WSMsgType.BINARY:
                    raise RuntimeError(f"call socket closed: {reply}")

    async def hang_up(self, call: CallHandle) -> None:
        """Hang up from the page and wait (bounded) until the bridge has the handoff."""
        assert self.http is not None
        async with self.http.post(
            f"{self.base}/api/call/hangup",
            json={"call_id": call.call_id, "client_token": call.client_token},
        ) as resp:
            await resp.read()
        await call.ws.close()
        async with asyncio.timeout(CALL_TIMEOUT_S):
            while await self.bridge.ended.get() != call.call_id:
                pass

    async def stop(self) -> None:
        """Close the bridge and the session, SIGTERM the gateway (SIGKILL after 10 s)."""
        if self.bridge is not None:
            with contextlib.suppress(Exception):
                await self.bridge.close()
        if self.api is not None:
            await self.api.__aexit__(None, None, None)
        if self.http is not None:
            await self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)


async def _wait_ready(sock: socket.socket, proc: subprocess.Popen[bytes]) -> None:
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    while loop.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode} before READY=1")
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            await asyncio.sleep(0.01)
            continue
        if b"READY=1" in data.split(b"\n"):
            return
    raise RuntimeError("gateway: no READY=1 within the start timeout")


@contextlib.asynccontextmanager
async def running_gateway(
    root: Path,
    *,
    backend: str = "echo",
    extra: str = "",
    env_extra: dict[str, str] | None = None,
    tables: str = "",
    sinks: tuple[str, ...] = ("file",),
    thread_id: str | None = None,
) -> AsyncIterator[Gateway]:
    """Start a gateway process under ``root`` and its bridge; stop both afterwards.

    ``tables`` is appended to the config both read (e.g. ``[codex]``), ``sinks`` replaces the
    handoff sinks (``file`` must stay: the demo bridge reads its receipt) and ``thread_id`` is
    the Codex thread the bridge binds.
    """
    from bridgehost.config import load_config
    from bridgehost.demo._bridge import DemoBridge
    from bridgehost.gateway_api import GatewayApi

    port = free_port()
    config = write_gateway_config(root, port, backend=backend, extra=extra)
    listed = ", ".join(f'"{sink}"' for sink in sinks)
    config.write_text(
        config.read_text().replace('sinks = ["file"]\n', f"sinks = [{listed}]\n") + tables
    )
    secret_env = new_secrets()
    env = service_env(root, {**secret_env, **(env_extra or {})})
    loaded = load_config(config, env=secret_env)
    with notify_socket() as (sock, path), (root / "gateway.log").open("wb") as log:
        proc = subprocess.Popen(
            [BRIDGEHOST, "--config", str(config), "gateway"],
            env={**env, "NOTIFY_SOCKET": path},
            stdout=log,
            stderr=log,
        )
        gateway = Gateway(root, port, env, proc, loaded)
        try:
            await _wait_ready(sock, proc)
            gateway.http = aiohttp.ClientSession()
            gateway.api = await GatewayApi(loaded.config, loaded.secrets).__aenter__()
            gateway.bridge = DemoBridge(
                loaded, f"ws://127.0.0.1:{port}/ws/bridge", secret_env["REALTIME_CONTROL_SECRET"]
            )
            if thread_id is not None:
                gateway.bridge.store.bind(thread_id)
            await gateway.bridge.start()
            yield gateway
        finally:
            await gateway.stop()
