"""Helpers for the bridge daemon's tests: config, fakes for the seams, waits.

(``tests/telegram`` cannot be a package: it would shadow python-telegram-bot's ``telegram``;
hence this uniquely named module instead of imports from ``conftest``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from structlog.testing import capture_logs

from bridgehost.config import LoadedConfig, load_config
from bridgehost.providers import ContextPart
from bridgehost.telegram.runtime import BridgeRuntime
from fakes.telegram_api import FakeBotApi
from gateway.conftest import (
    BOT_TOKEN,
    CONTROL_SECRET,
    free_port,
    init_data,
    secrets_env,
    write_config,
)

CHAT = 4242
__all__ = ["BOT_TOKEN", "CONTROL_SECRET", "free_port", "init_data"]


def dump_toml(data: dict[str, Any]) -> str:
    """Enough TOML for our configs: scalars, lists, and nested tables."""
    lines: list[str] = []

    def table(node: dict[str, Any], prefix: list[str]) -> None:
        scalars = {k: v for k, v in node.items() if not isinstance(v, dict)}
        if prefix and (scalars or not node):
            lines.append(f"[{'.'.join(prefix)}]")
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in scalars.items())
        for key, value in node.items():
            if isinstance(value, dict):
                table(value, [*prefix, key])

    table(data, [])
    return "\n".join(lines) + "\n"


def bridge_config(
    tmp_path: Path,
    api: FakeBotApi,
    *,
    gateway_raw: dict[str, Any] | None = None,
    port: int | None = None,
    secret: str = CONTROL_SECRET,
    **realtime: Any,
) -> LoadedConfig:
    """The bridge's config: the gateway's (or a fresh one on ``port``), plus the fake Bot API."""
    if gateway_raw is None:
        path = write_config(tmp_path, port or free_port(), **realtime)
        gateway_raw = load_config(path, env=secrets_env()).raw
    raw = json.loads(json.dumps(gateway_raw))
    raw["realtime"].update(realtime)
    raw.setdefault("telegram", {}).update(api_base_url=api.root, poll_timeout_s=5)
    path = tmp_path / "bridge-telegram.toml"
    path.write_text(dump_toml(raw))
    return load_config(
        path, env={"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "REALTIME_CONTROL_SECRET": secret}
    )


@dataclass
class RecordingHandoff:
    """A handoff pipeline that remembers which calls it was given."""

    calls: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def call_ended(self, call_id: str) -> None:
        """Remember ``call_id``."""
        self.calls.append(call_id)
        self.changed.set()

    async def wait(self, count: int = 1, timeout: float = 10.0) -> list[str]:
        """Until ``count`` calls were handed over (bounded)."""
        async with asyncio.timeout(timeout):
            while len(self.calls) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.calls


@dataclass
class StaticCodex:
    """The Codex seam, answering fixed parts (optionally slowly)."""

    parts: list[ContextPart] = field(
        default_factory=lambda: [
            ContextPart("Recent turns of the bound Codex thread", "user: refactor the parser", 90)
        ]
    )
    delay_s: float = 0.0
    asked: list[str] = field(default_factory=list)

    async def context_parts(self, thread_id: str) -> list[ContextPart]:
        """The fixed parts."""
        self.asked.append(thread_id)
        await asyncio.sleep(self.delay_s)
        return list(self.parts)

    async def close(self) -> None:
        """Nothing held."""


@dataclass
class RunningBridge:
    """A daemon running in this test's event loop."""

    rt: BridgeRuntime
    stop: asyncio.Event
    task: asyncio.Task[None]
    handoff: RecordingHandoff
    codex: StaticCodex

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Until the control channel has said hello (bounded)."""
        async with asyncio.timeout(timeout):
            while not self.rt.connected:
                await asyncio.sleep(0.02)

    async def shutdown(self) -> None:
        """Stop and wait (bounded)."""
        self.stop.set()
        async with asyncio.timeout(20):
            with contextlib.suppress(Exception):
                await self.task


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The inline buttons of a sent message."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return [button for row in rows for button in row]


def web_app_url(message: dict[str, Any]) -> str | None:
    """The Mini App URL of a message's ``web_app`` button, if it has one."""
    for button in buttons(message):
        if "web_app" in button:
            return str(button["web_app"]["url"])
    return None


async def wait_text(
    api: FakeBotApi, needle: str, *, chat: int = CHAT, timeout: float = 10.0
) -> dict[str, Any]:
    """The first message to ``chat`` whose text contains ``needle`` (bounded)."""
    return await api.wait_for_message(
        lambda m: m["chat"]["id"] == chat and needle in m["text"], timeout=timeout
    )


async def wait_button(api: FakeBotApi, timeout: float = 10.0) -> tuple[dict[str, Any], str]:
    """The first message with a ``web_app`` button, and its URL (bounded)."""
    message = await api.wait_for_message(lambda m: web_app_url(m) is not None, timeout=timeout)
    url = web_app_url(message)
    assert url is not None
    return message, url


async def bootstrap_from_button(gw: Any, tg: FakeBotApi) -> dict[str, Any]:
    """Take the Mini App URL from the bot's button and bootstrap a call with it."""
    _message, url = await wait_button(tg)
    resp = await gw.bootstrap(url.split("launch=")[1])
    body = await resp.json()
    assert resp.status == 200, body
    return body


async def browser(gw: Any, body: dict[str, Any]) -> Any:
    """The Mini App's call socket, authenticated."""
    ws = await gw.http.ws_connect(f"{gw.base}{body['ws_path']}")
    await ws.send_json({"type": "call.auth", "token": body["client_token"]})
    assert (await ws.receive_json(timeout=5))["type"] == "call.auth.ok"
    return ws


async def browser_event(ws: Any, event: dict[str, Any], event_id: int) -> dict[str, Any]:
    """Send one event as the Mini App does; its acknowledgement."""
    await ws.send_json({"type": "call.event", "id": event_id, "event": event})
    async with asyncio.timeout(5):
        while True:
            reply = await ws.receive()
            if reply.type.name == "TEXT" and json.loads(reply.data).get("id") == event_id:
                return json.loads(reply.data)


async def stored(store: Any, call_id: str, event_type: str, timeout: float = 5.0) -> None:
    """Until the bridge has stored an event of that type (bounded)."""
    async with asyncio.timeout(timeout):
        while not any(e["type"] == event_type for e in store.call_events(call_id)):
            await asyncio.sleep(0.02)


@contextlib.contextmanager
def captured_events() -> Iterator[list[dict[str, Any]]]:
    """Every structlog event at any level, whatever level an earlier test configured."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)
