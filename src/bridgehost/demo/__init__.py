"""``bridgehost demo``: one real call through a real gateway, offline, in a few seconds.

Everything runs on loopback with generated secrets: the gateway with the ``echo`` backend and a
static ``http://127.0.0.1`` origin, a minimal bridge on the control channel, and a scripted caller
that does what the Mini App does. ``--serve`` then keeps everything up and prints a URL a
browser on this machine can open to talk to the echo backend itself, until Ctrl-C or SIGTERM:
either one stops the demo at any step, and the gateway and bridge shut down cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from bridgehost.config import LoadedConfig, load_config
from bridgehost.demo._bridge import DemoBridge
from bridgehost.demo._caller import place_call
from bridgehost.gateway.initdata import sign_init_data
from bridgehost.gateway.service import build_gateway, serve
from bridgehost.gateway_api import GatewayApi
from bridgehost.systemd import stop_on_signals

DEMO_USER = 1

T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def demo_config(
    state_dir: Path, port: int, extra_realtime: str = ""
) -> tuple[LoadedConfig, dict[str, str]]:
    """The embedded demo configuration and its generated secrets (``extra_realtime``: more
    ``[realtime]`` lines, e.g. for benchmarks)."""
    env = {
        "TELEGRAM_BOT_TOKEN": f"{DEMO_USER}0000:demo-{secrets.token_hex(8)}",
        "REALTIME_CONTROL_SECRET": secrets.token_urlsafe(24),
    }
    path = state_dir / "bridge.config.toml"
    path.write_text(
        '[realtime]\nenabled = true\nbackend = "echo"\n'
        f'tunnel_mode = "static-public-url"\npublic_url = "http://127.0.0.1:{port}"\n'
        f"gateway_port = {port}\n{extra_realtime}"
        f"[telegram]\nauthorized_chat_id = {DEMO_USER}\n"
        f'[storage]\nroot = "{state_dir / "state"}"\n'
        '[handoff]\nsinks = ["file"]\n[plugins.echo]\ndelay_ms = 200\n'
    )
    return load_config(path, env=env), env


def demo_init_data(bot_token: str) -> str:
    """Mini App init data for the demo user, signed as Telegram would sign it."""
    user = json.dumps({"id": DEMO_USER, "first_name": "Demo"}, separators=(",", ":"))
    return sign_init_data({"user": user, "auth_date": str(int(time.time()))}, bot_token=bot_token)


def _say(text: str) -> None:
    """Print one step at once, also when stdout is a pipe (``demo --serve | tee``)."""
    print(text, flush=True)


async def _unless_stopped(
    stop: asyncio.Event, server: asyncio.Task[None], work: Awaitable[T]
) -> T | None:
    """``work``'s result, or ``None`` when ``stop`` is set (SIGINT, SIGTERM) first.

    :raises Exception: what the gateway failed with, when it ended before ``work``.
    """
    job = asyncio.ensure_future(work)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({job, stopped, server}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not job.done():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
    if not job.cancelled():
        return job.result()
    if server.done():
        server.result()
    return None


async def run_demo(
    *,
    serve_forever: bool = False,
    state_dir: Path | None = None,
    say: Callable[[str], None] = _say,
) -> dict[str, object]:
    """Run the demo; returns what happened (call id, echo count, handoff path).

    SIGINT (Ctrl-C) and SIGTERM stop it at any step: with ``serve_forever`` that is the normal
    end; before the scripted call finished the result is ``{"interrupted": True, ...}``.
    """
    state_dir = state_dir or Path(tempfile.mkdtemp(prefix="bridgehost-demo-"))
    port = _free_port()
    loaded, env = demo_config(state_dir, port)
    gateway = build_gateway(loaded)
    stop, ready = asyncio.Event(), asyncio.Event()
    stop_on_signals(stop)
    server = asyncio.create_task(serve(gateway, stop=stop, on_ready=lambda _a: ready.set()))
    bridge = DemoBridge(loaded, f"ws://127.0.0.1:{port}/ws/bridge", env["REALTIME_CONTROL_SECRET"])
    try:
        call = await _unless_stopped(
            stop, server, _scripted_call(loaded, env, state_dir, ready, bridge, say)
        )
        if call is None:
            say("stopped before the call finished")
            return {"interrupted": True, "state_dir": str(state_dir)}
        if serve_forever:
            async with GatewayApi(loaded.config, loaded.secrets) as api:
                armed = await api.arm()
            say(
                "\nOpen this in a browser on this machine to talk to the echo backend "
                "(Ctrl-C stops):\n  "
                + armed["launch_url"]
                + "#tgWebAppData="
                + _quote(demo_init_data(env["TELEGRAM_BOT_TOKEN"]))
            )
            await _unless_stopped(stop, server, asyncio.get_running_loop().create_future())
        return {**call, "state_dir": str(state_dir)}
    finally:
        await bridge.close()
        stop.set()
        await server


async def _scripted_call(
    loaded: LoadedConfig,
    env: dict[str, str],
    state_dir: Path,
    ready: asyncio.Event,
    bridge: DemoBridge,
    say: Callable[[str], None],
) -> dict[str, object]:
    """Gateway up, bridge connected, surface armed, one scripted call, its handoff file."""
    base = f"http://127.0.0.1:{loaded.config.realtime.gateway_port}"
    async with asyncio.timeout(15):
        await ready.wait()
    say(f" 1. gateway listening on {base} (state in {state_dir})")
    await bridge.start()
    say(" 2. bridge connected over /ws/bridge")
    async with GatewayApi(loaded.config, loaded.secrets) as api:
        armed = await api.arm(lambda line: say(f"    … {line}"))
    token = armed["launch_url"].split("launch=")[1]
    say(f" 3. surface armed: {armed['launch_url']}")
    steps = iter(range(4, 20))
    call = await place_call(
        base,
        token,
        demo_init_data(env["TELEGRAM_BOT_TOKEN"]),
        say=lambda text: say(f"{next(steps):2d}. {text}"),
    )
    async with asyncio.timeout(10):
        call_id = await bridge.ended.get()
    ended = bridge.store.call(call_id) or {}
    say(f"{next(steps):2d}. hung up: call.ended reason={ended.get('end_reason')}")
    say(f"{next(steps):2d}. handoff written: {bridge.handoffs[call_id]}")
    return {**call, "handoff": bridge.handoffs[call_id]}


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
