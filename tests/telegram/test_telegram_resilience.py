"""The daemon survives what Telegram and the network throw at it: 429, 403, dropped connections."""

from __future__ import annotations

import asyncio
import time

import pytest
from tg_harness import CHAT, bridge_config, captured_events, wait_button, wait_text

from bridgehost.state.bridge_store import BridgeStore
from bridgehost.telegram import views
from bridgehost.telegram.daemon import BridgeStartError


async def _bridge(tmp_path, tg, gateway_factory, bridge_factory):
    gw = await gateway_factory(connect_bridge=False)
    store = BridgeStore.open(gw.loaded.config.storage.root)
    store.bind("thread-abc")
    store.close()
    loaded = bridge_config(tmp_path, tg, gateway_raw=gw.loaded.raw)
    bridge = await bridge_factory(loaded)
    await bridge.wait_connected()
    return gw, loaded, bridge


async def test_rate_limited_send_waits_retry_after_then_delivers(
    tmp_path, tg, gateway_factory, bridge_factory
):
    await _bridge(tmp_path, tg, gateway_factory, bridge_factory)
    tg.fail_rate_limit("sendMessage", retry_after=1)
    started = time.monotonic()
    tg.push_message(CHAT, "/help")
    await wait_text(tg, "/hangup", timeout=10)
    assert time.monotonic() - started >= 1.0
    sends = [c for c in tg.calls if c.method == "sendMessage"]
    assert len(sends) == 2, "one refused with 429, one delivered"


async def test_blocked_bot_and_broken_network_do_not_stop_the_daemon(
    tmp_path, tg, gateway_factory, bridge_factory
):
    _gw, _loaded, bridge = await _bridge(tmp_path, tg, gateway_factory, bridge_factory)
    tg.fail_blocked("sendMessage")
    tg.push_message(CHAT, "/help")
    async with asyncio.timeout(10):
        while not any(c.method == "sendMessage" for c in tg.calls):
            await asyncio.sleep(0.02)
    assert tg.sent_messages(CHAT) == []

    tg.fail_rate_limit("getUpdates", retry_after=1)
    tg.fail_network("getUpdates")
    tg.fail_network("sendMessage")
    tg.push_message(CHAT, "/status")
    await wait_text(tg, "Control channel: connected", timeout=15)
    assert not bridge.task.done()
    tg.push_message(CHAT, "/call")
    await wait_button(tg)


async def test_telegram_down_at_start_is_waited_for(tmp_path, tg, gateway_factory, bridge_factory):
    gw = await gateway_factory(connect_bridge=False)
    tg.fail("getMe", code=502, times=2)
    bridge = await bridge_factory(bridge_config(tmp_path, tg, gateway_raw=gw.loaded.raw))
    assert len([c for c in tg.calls if c.method == "getMe"]) == 3
    tg.push_message(CHAT, "/help")
    await wait_text(tg, "/hangup")
    assert not bridge.task.done()


async def test_a_call_request_that_waited_while_offline_is_not_acted_on(
    tmp_path, tg, gateway_factory, bridge_factory
):
    gw = await gateway_factory(connect_bridge=False)
    update = tg.push_message(CHAT, "/call")
    update["message"]["date"] = int(time.time()) - 3600
    await bridge_factory(bridge_config(tmp_path, tg, gateway_raw=gw.loaded.raw))
    message = await wait_text(tg, "reached me only now")
    assert "/call" in message["text"]
    assert not gw.gateway.surface.state.armed


async def test_a_rejected_bot_token_stops_the_daemon_with_the_fix(tmp_path, tg, bridge_factory):
    tg.fail("getMe", code=401)
    with pytest.raises(BridgeStartError, match="TELEGRAM_BOT_TOKEN"):
        await bridge_factory(bridge_config(tmp_path, tg))


async def test_a_failing_handler_is_logged_and_the_daemon_goes_on(
    tmp_path, tg, gateway_factory, bridge_factory, monkeypatch
):
    await _bridge(tmp_path, tg, gateway_factory, bridge_factory)

    async def broken(_rt):
        raise RuntimeError("boom")

    monkeypatch.setattr(views, "snapshot", broken)
    with captured_events() as logs:
        tg.push_message(CHAT, "/status")
        tg.push_message(CHAT, "/help")
        await wait_text(tg, "/hangup")
    failed = [e for e in logs if e["event"] == "telegram handler failed"]
    assert failed and "RuntimeError: boom" in failed[0]["error"]
