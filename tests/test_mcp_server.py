"""``bridgehost mcp`` as a real subprocess, driven by the official SDK's stdio client, against a
real bridge daemon and gateway and the fake Bot API: initialize, list the tools, call each."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path

import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from bridgehost.config import load_config
from bridgehost.state.bridge_store import BridgeStore
from bridgehost.telegram.daemon import serve_bridge
from fakes.telegram_api import FakeBotApi
from gateway.conftest import BOT_TOKEN, CONTROL_SECRET, USER_ID, gateway_factory

__all__ = ["gateway_factory"]
BRIDGEHOST = str(Path(sys.executable).with_name("bridgehost"))


def _toml(data: dict[str, dict[str, object]]) -> str:
    return "".join(
        f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())
        for name, table in data.items()
        if isinstance(table, dict) and all(not isinstance(v, dict) for v in table.values())
    )


@pytest.fixture
async def bridge_config(tmp_path: Path, gateway_factory):
    """A running gateway and bridge; the config file the MCP server gets."""
    async with FakeBotApi(token=BOT_TOKEN, max_poll_wait=5.0) as tg:
        gw = await gateway_factory(connect_bridge=False)
        store = BridgeStore.open(gw.loaded.config.storage.root)
        store.bind("thread-abc")
        store.close()
        raw = json.loads(json.dumps(gw.loaded.raw))
        raw["telegram"].update(api_base_url=tg.root, poll_timeout_s=5)
        raw["invites"] = {"decision_wait_s": 0.5, "ask_timeout_s": 1.0}
        path = tmp_path / "bridge.mcp.toml"
        path.write_text(_toml(raw))
        loaded = load_config(
            path, env={"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "REALTIME_CONTROL_SECRET": CONTROL_SECRET}
        )
        stop, ready = asyncio.Event(), asyncio.Event()
        holder = []

        def on_ready(rt):
            holder.append(rt)
            ready.set()

        task = asyncio.create_task(serve_bridge(loaded, stop=stop, on_ready=on_ready))
        async with asyncio.timeout(10):
            await ready.wait()
            while not holder[0].connected:
                await asyncio.sleep(0.02)
        try:
            yield path, tg, holder[0]
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(20):
                    await task


def text_of(result) -> str:
    assert not result.is_error, result
    return result.content[0].text


async def test_the_tools_reach_the_chat_through_the_bridge(bridge_config) -> None:
    path, tg, rt = bridge_config
    server = StdioServerParameters(command=BRIDGEHOST, args=["mcp", "--config", str(path)])
    async with asyncio.timeout(60):
        async with Client(server) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(tools) == {"request_call", "send_message", "ask_user"}
            assert "Telegram" in (tools["request_call"].description or "")
            assert tools["ask_user"].input_schema["required"] == ["question", "options"]

            sent = text_of(await client.call_tool("send_message", {"text": "Build finished."}))
            assert sent.startswith("sent:")
            await tg.wait_for_message(lambda m: m["text"] == "🤖 Build finished.")

            invited = text_of(
                await client.call_tool(
                    "request_call", {"reason": "Pick a database", "urgency": "high"}
                )
            )
            assert invited.startswith("sent:") and "expires_at" in invited
            invite = await tg.wait_for_message(lambda m: "Pick a database" in m["text"])
            assert any(
                "web_app" in b for row in invite["reply_markup"]["inline_keyboard"] for b in row
            )

            asking = asyncio.create_task(
                client.call_tool("ask_user", {"question": "Ship it?", "options": ["Yes", "No"]})
            )
            question = await tg.wait_for_message(lambda m: "Ship it?" in m["text"])
            tg.push_callback_query(
                USER_ID, question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            )
            assert text_of(await asking) == "answered: Yes"
            unanswered = text_of(
                await client.call_tool("ask_user", {"question": "Lunch?", "options": ["Sure"]})
            )
            assert unanswered.startswith("no_answer:")
            refused = text_of(await client.call_tool("ask_user", {"question": "?", "options": []}))
            assert refused.startswith("failed: invalid arguments")
    events = rt.invites.store.events()
    assert {e["origin"] for e in events} == {"agent"}
    assert [e["kind"] for e in events] == [
        "message.sent",
        "invite.sent",
        "ask.sent",
        "ask.answered",
        "ask.sent",
        "ask.unanswered",
    ]
