"""``/call`` and friends through the real daemon, the fake Bot API and a real gateway."""

from __future__ import annotations

import aiohttp
from tg_harness import CHAT, bridge_config, wait_button, wait_text, web_app_url

from bridgehost.basics import today
from bridgehost.state.bridge_store import BridgeStore


async def _setup(
    tmp_path,
    tg,
    gateway_factory,
    bridge_factory,
    *,
    bind=True,
    owner=None,
    secret=None,
    **bridge_kwargs,
):
    gw = await gateway_factory(connect_bridge=False)
    if bind or owner:
        store = BridgeStore.open(gw.loaded.config.storage.root)
        if bind:
            store.bind("thread-abc")
        if owner:
            store.set_owner(owner)
        store.close()
    kwargs = {"secret": secret} if secret else {}
    loaded = bridge_config(tmp_path, tg, gateway_raw=gw.loaded.raw, **kwargs)
    bridge = await bridge_factory(loaded, **bridge_kwargs)
    if secret is None:
        await bridge.wait_connected()
    return gw, bridge


async def test_call_when_ready_sends_a_fresh_mini_app_button(
    tmp_path, tg, gateway_factory, bridge_factory
):
    gw, _bridge = await _setup(tmp_path, tg, gateway_factory, bridge_factory)
    old_invite = (await gw.arm())["launch_url"]
    assert {c["command"] for c in tg.commands} >= {"call", "hangup", "status", "capabilities"}

    tg.push_message(CHAT, "/call")
    message, url = await wait_button(tg)
    assert message["chat"]["id"] == CHAT
    assert url.startswith(f"{gw.base}/miniapp?launch=") and url != old_invite
    assert "Tap the button" in message["text"] and "Budget:" in message["text"]
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
        async with http.get(old_invite) as resp:
            assert resp.status == 404, "every /call mints a fresh invite"
    assert not [m for m in tg.sent_messages(CHAT) if "Arming" in m["text"]]


async def test_call_arms_a_disarmed_surface_then_sends_the_button(
    tmp_path, tg, gateway_factory, bridge_factory
):
    gw, _bridge = await _setup(tmp_path, tg, gateway_factory, bridge_factory)
    assert not gw.gateway.surface.state.armed

    tg.push_message(CHAT, "call me please")
    message, url = await wait_button(tg)
    assert "edit_date" in message, "the progress message was edited into the invite"
    edits = [c for c in tg.calls if c.method == "editMessageText"]
    assert edits and edits[-1].params["message_id"] == str(message["message_id"])
    sends = [c.params["text"] for c in tg.calls if c.method == "sendMessage"]
    assert sends[0].startswith("Arming…")
    assert gw.gateway.surface.state.armed
    assert gw.gateway.surface.state.armed_by == "telegram"
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200


async def test_gateway_down(tmp_path, tg, bridge_factory):
    loaded = bridge_config(tmp_path, tg)
    await bridge_factory(loaded)
    tg.push_message(CHAT, "/call")
    message = await wait_text(tg, "Can't start a call yet")
    assert "❌ Gateway" in message["text"] and "systemctl start bridge-gateway" in message["text"]
    assert web_app_url(message) is None


async def test_realtime_disabled(tmp_path, tg, bridge_factory):
    bridge = await bridge_factory(bridge_config(tmp_path, tg, enabled=False))
    assert bridge.rt.channel is None
    assert bridge.rt.status_line().startswith("serving the bot; live calls disabled")
    tg.push_message(CHAT, "/call")
    message = await wait_text(tg, "Can't start a call yet")
    assert "❌ Realtime calls: realtime.enabled is false" in message["text"]
    assert "set enabled = true under [realtime]" in message["text"]
    tg.push_message(CHAT, "/hangup")
    await wait_text(tg, "Live calls are switched off")


async def test_wrong_control_secret(tmp_path, tg, gateway_factory, bridge_factory):
    gw, bridge = await _setup(
        tmp_path, tg, gateway_factory, bridge_factory, secret="not-the-gateway-secret-0123456789"
    )
    tg.push_message(CHAT, "/call")
    message = await wait_text(tg, "Can't start a call yet")
    assert (
        "❌ Gateway: the gateway refused this bridge's REALTIME_CONTROL_SECRET" in message["text"]
    )
    assert "control channel" in message["text"]
    assert "401" in (bridge.rt.channel.last_error or "")
    assert not gw.gateway.hub.connected("bridge")
    assert web_app_url(message) is None


async def test_not_bound(tmp_path, tg, gateway_factory, bridge_factory):
    await _setup(tmp_path, tg, gateway_factory, bridge_factory, bind=False)
    tg.push_message(CHAT, "/call")
    message = await wait_text(tg, "Can't start a call yet")
    assert "❌ Bound Codex thread" in message["text"] and "bridgectl bind" in message["text"]


async def test_desktop_owner_blocks_call_and_prepare(tmp_path, tg, gateway_factory, bridge_factory):
    gw, _bridge = await _setup(tmp_path, tg, gateway_factory, bridge_factory, owner="desktop")
    tg.push_message(CHAT, "/call")
    message = await wait_text(tg, "Can't start a call yet")
    assert "❌ Session owner" in message["text"] and "bridgectl claim" in message["text"]

    armed = await gw.arm()
    resp = await gw.bootstrap(armed["launch_url"].split("launch=")[1])
    body = await resp.json()
    assert resp.status == 409
    assert body["error"]["message"] == "The desktop owns the session. Run: bridgectl claim"


async def test_budget_exhausted_is_checked_before_any_invite(
    tmp_path, tg, gateway_factory, bridge_factory
):
    gw, _bridge = await _setup(tmp_path, tg, gateway_factory, bridge_factory)
    gw.gateway.store.charge("earlier-call", today(), 600_000)
    tg.push_message(CHAT, "/call")
    message = await wait_text(tg, "Can't start a call yet")
    assert "❌ Call budget" in message["text"] and "used up" in message["text"]
    assert not gw.gateway.surface.state.armed
    assert not [e for e in gw.gateway.surface.state.recent_events if e["action"] == "arm"]
    assert web_app_url(message) is None


async def test_intents_in_the_chat(tmp_path, tg, gateway_factory, bridge_factory):
    _gw, bridge = await _setup(tmp_path, tg, gateway_factory, bridge_factory)
    tg.push_message(CHAT, "this API call fails")
    await wait_text(tg, "I kept your message")  # outside a call, text is a Codex turn
    assert not [m for m in tg.sent_messages(CHAT) if web_app_url(m)]
    tg.push_message(CHAT, "Can you call me?")
    await wait_button(tg)
    assert (
        '"this API call fails"'
        in bridge.rt.store.db.query_one("SELECT payload FROM chat_inbox WHERE status = 'pending'")[
            "payload"
        ]
    )


async def test_informational_commands(tmp_path, tg, gateway_factory, bridge_factory):
    await _setup(tmp_path, tg, gateway_factory, bridge_factory)
    tg.push_message(CHAT, "/capabilities")
    caps = await wait_text(tg, "Live calls:")
    assert "✅ Control channel" in caps["text"] and "❌ Call surface" in caps["text"]
    assert "bridgectl call arm" in caps["text"]
    tg.push_message(CHAT, "/call status")
    status = await wait_text(tg, "Current call:")
    assert "Current call: none" in status["text"] and "Budget:" in status["text"]
    tg.push_message(CHAT, "/status")
    await wait_text(tg, "thread thread-abc bound")
    tg.push_message(CHAT, "/help")
    await wait_text(tg, "/hangup: end the live call")
    tg.push_message(CHAT, "/start")
    await wait_text(tg, "Hi, Alice! I connect you by voice")
    tg.push_message(CHAT, "/frobnicate")
    await wait_text(tg, "I don't know that command")
