"""A real gateway on a loopback port, a stand-in bridge on its control channel, signed init data."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridgehost.config import LoadedConfig, load_config
from bridgehost.gateway.app import Gateway
from bridgehost.gateway.initdata import sign_init_data
from bridgehost.gateway.service import build_gateway, serve

BOT_TOKEN = "123456:TEST-bot-token-for-gateway"
CONTROL_SECRET = "control-secret-for-tests-0123456789"
OPENAI_KEY = "sk-test-gateway-openai-0123456789"
USER_ID = 4242


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(root: Path, port: int, **realtime: Any) -> Path:
    """A gateway config: echo backend, static loopback origin, short timers."""
    values: dict[str, Any] = {
        "enabled": True,
        "backend": "echo",
        "tunnel_mode": "static-public-url",
        "public_url": f"http://127.0.0.1:{port}",
        "gateway_port": port,
        "startup_timeout_ms": 3000,
        "finalize_grace_ms": 300,
        "launch_window_ms": 5000,
        "idle_warning_ms": 60_000,
        "idle_timeout_ms": 120_000,
        "max_call_ms": 300_000,
        "max_daily_call_ms": 600_000,
    }
    values.update(realtime)
    lines = ["[realtime]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    lines += [
        "[telegram]",
        f"authorized_chat_id = {USER_ID}",
        "[storage]",
        f'root = "{root / "state"}"',
        "[plugins.echo]",
        "delay_ms = 50",
    ]
    path = root / "bridge.config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def secrets_env() -> dict[str, str]:
    """The gateway's secrets."""
    return {
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "REALTIME_CONTROL_SECRET": CONTROL_SECRET,
        "OPENAI_API_KEY": OPENAI_KEY,
    }


def init_data(
    user_id: int = USER_ID, *, auth_date: int | None = None, token: str = BOT_TOKEN
) -> str:
    """Init data signed as Telegram signs it."""
    user = json.dumps({"id": user_id, "first_name": "Alice"}, separators=(",", ":"))
    return sign_init_data(
        {"user": user, "auth_date": str(auth_date or int(time.time())), "query_id": "AAE-test"},
        bot_token=token,
    )


@dataclass
class FakeBridge:
    """Stands in for bridge-telegram on ``/ws/bridge``: answers prepares, records events."""

    url: str
    allow: bool = True
    reason: str = "No Codex thread is bound. Run: bridgectl bind --latest"
    answer: bool = True
    answer_delay_s: float = 0.0
    ack: bool = True
    events: list[dict[str, Any]] = field(default_factory=list)
    prepares: list[dict[str, Any]] = field(default_factory=list)
    _ws: aiohttp.ClientWebSocketResponse | None = None
    _session: aiohttp.ClientSession | None = None
    _task: asyncio.Task[None] | None = None

    async def connect(self, secret: str = CONTROL_SECRET) -> None:
        """Connect and say hello."""
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(
            self.url, headers={"Authorization": f"Bearer {secret}"}
        )
        await self._ws.send_json(
            {"type": "bridge.hello", "bridge_id": "bridge", "status": {"owner": "telegram"}}
        )
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            data = json.loads(message.data)
            if data["type"] == "call.prepare":
                self.prepares.append(data)
                if self.answer_delay_s:
                    await asyncio.sleep(self.answer_delay_s)
                if self.answer:
                    await self._ws.send_json(
                        {
                            "type": "call.prepare.result",
                            "reply_to": data["id"],
                            "allowed": self.allow,
                            "reason": None if self.allow else self.reason,
                            "context": {"parts": [{"title": "Bound thread", "text": "Refactor X"}]},
                        }
                    )
            elif data["type"] == "call.event":
                self.events.append(data)
                if self.ack:
                    await self._ws.send_json(
                        {
                            "type": "call.ack",
                            "call_id": data["call_id"],
                            "seq": data["event"]["seq"],
                        }
                    )

    async def hangup(self, call_id: str | None = None) -> None:
        """``/hangup`` through the control channel."""
        assert self._ws is not None
        await self._ws.send_json(
            {"type": "call.hangup", "call_id": call_id, "reason": "telegram_hangup"}
        )

    async def wait_for(self, event_type: str, timeout: float = 5.0) -> dict[str, Any]:
        """The first forwarded event of that type (bounded wait)."""
        async with asyncio.timeout(timeout):
            while True:
                for item in self.events:
                    if item["event"]["type"] == event_type:
                        return item["event"]
                await asyncio.sleep(0.02)

    async def close(self) -> None:
        """Disconnect."""
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()


@dataclass
class RunningGateway:
    """A gateway serving on ``base`` in this test's event loop."""

    gateway: Gateway
    base: str
    http: aiohttp.ClientSession
    bridge: FakeBridge
    loaded: LoadedConfig
    stop: asyncio.Event
    task: asyncio.Task[None]

    def control_headers(self) -> dict[str, str]:
        """The control secret as bridgectl sends it."""
        return {"Authorization": f"Bearer {CONTROL_SECRET}"}

    async def arm(self) -> dict[str, Any]:
        """Arm through the control API; the final JSON line."""
        async with self.http.post(
            f"{self.base}/control/arm", headers=self.control_headers()
        ) as resp:
            lines = [json.loads(line) for line in (await resp.text()).splitlines()]
        return lines[-1]["result"]

    async def bootstrap(self, token: str, data: str | None = None) -> aiohttp.ClientResponse:
        """POST a bootstrap (the caller reads and releases the response)."""
        body = {"launch_token": token, "init_data": data if data is not None else init_data()}
        return await self.http.post(f"{self.base}/api/call/bootstrap", json=body)

    async def start_call(self) -> dict[str, Any]:
        """Arm, bootstrap, and return the bootstrap body."""
        armed = await self.arm()
        token = armed["launch_url"].split("launch=")[1]
        resp = await self.bootstrap(token)
        body = await resp.json()
        assert resp.status == 200, body
        return body


GatewayFactory = Callable[..., Any]


@pytest.fixture
async def gateway_factory(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """Start gateways with config overrides; everything is torn down after the test."""
    started: list[tuple[asyncio.Event, asyncio.Task[None], RunningGateway]] = []

    async def start(connect_bridge: bool = True, **realtime: Any) -> RunningGateway:
        port = free_port()
        path = write_config(tmp_path, port, **realtime)
        loaded = load_config(path, env=secrets_env())
        gateway = build_gateway(loaded)
        stop = asyncio.Event()
        ready = asyncio.Event()
        task = asyncio.create_task(serve(gateway, stop=stop, on_ready=lambda _a: ready.set()))
        async with asyncio.timeout(10):
            await ready.wait()
        base = f"http://127.0.0.1:{port}"
        bridge = FakeBridge(url=f"ws://127.0.0.1:{port}/ws/bridge")
        running = RunningGateway(gateway, base, aiohttp.ClientSession(), bridge, loaded, stop, task)
        started.append((stop, task, running))
        if connect_bridge:
            await bridge.connect()
            async with asyncio.timeout(5):
                while not gateway.hub.connected("bridge"):
                    await asyncio.sleep(0.01)
        return running

    yield start
    for stop, task, running in started:
        await running.bridge.close()
        await running.http.close()
        stop.set()
        async with asyncio.timeout(15):
            await task


@pytest.fixture
async def gw(gateway_factory: GatewayFactory) -> RunningGateway:
    """A running gateway with the stand-in bridge connected."""
    return await gateway_factory()
