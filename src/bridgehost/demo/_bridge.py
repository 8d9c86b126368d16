"""A minimal bridge for the demo: answers prepares, stores events, writes the handoff files.

It speaks the real ``/ws/bridge`` protocol to the real gateway, but needs no Telegram and no
Codex: the call context is a fixed demo note, and the handoff goes to the ``file`` sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp

from bridgehost.bridge_state import BridgeStore
from bridgehost.config import LoadedConfig
from bridgehost.plugins import PluginHost


class DemoBridge:
    """Connects to the gateway's control channel and hands finished calls to the file sink."""

    def __init__(self, loaded: LoadedConfig, url: str, secret: str) -> None:
        self.loaded = loaded
        self.url = url
        self.secret = secret
        self.store = BridgeStore.open(loaded.config.storage.root)
        self.store.bind("demo-thread")
        self.handoffs: dict[str, str] = {}
        self.ended = asyncio.Queue[str]()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and say hello."""
        self._session = aiohttp.ClientSession()
        ws = await self._session.ws_connect(
            self.url, headers={"Authorization": f"Bearer {self.secret}"}
        )
        binding = self.store.binding().to_json()
        await ws.send_json({"type": "bridge.hello", "bridge_id": "bridge", "status": binding})
        self._task = asyncio.create_task(self._run(ws))

    async def _run(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            data = json.loads(message.data)
            if data["type"] == "call.prepare":
                await ws.send_json(
                    {
                        "type": "call.prepare.result",
                        "reply_to": data["id"],
                        "allowed": True,
                        "context": {
                            "parts": [{"title": "Demo", "text": "This is an offline demo."}]
                        },
                    }
                )
            elif data["type"] == "call.event":
                event = data["event"]
                self.store.record_event(data["call_id"], event)
                await ws.send_json(
                    {"type": "call.ack", "call_id": data["call_id"], "seq": event["seq"]}
                )
                if event["type"] == "call.ended":
                    await self._hand_off(data["call_id"])

    async def _hand_off(self, call_id: str) -> None:
        events = self.store.call_events(call_id)
        ended = events[-1]
        lines = [
            f"bridgehost-handoff: {call_id}",
            "",
            f"# Demo call {call_id}",
            "",
            f"- ended: {ended['reason']} (by {ended['ended_by']})",
            f"- duration: {ended['duration_ms'] / 1000:.1f} s",
            f"- events logged: {len(events)}",
            "",
        ]
        lines += [
            f"- {e['type']}: {e.get('text') or e.get('reason') or ''}".rstrip(": ") for e in events
        ]
        artifact: dict[str, Any] = {
            "call_id": call_id,
            "end_reason": ended["reason"],
            "events": events,
            "markdown": "\n".join(lines) + "\n",
        }
        host = PluginHost.for_config(self.loaded.config)
        sink = host.build(
            host.select("handoff_sinks", "file"), self.loaded.config, self.loaded.secrets
        )
        await sink.start()
        self.handoffs[call_id] = await sink.deliver(artifact)
        await self.ended.put(call_id)

    async def close(self) -> None:
        """Disconnect and close the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()
        self.store.close()
