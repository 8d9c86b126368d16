"""The bridge side of ``/ws/bridge`` with a real gateway: prepare, events, hang-up, restarts."""

from __future__ import annotations

import asyncio

import pytest
from tg_harness import (
    CHAT,
    StaticCodex,
    bootstrap_from_button,
    bridge_config,
    browser,
    browser_event,
    stored,
    wait_text,
)

from bridgehost import hookimpl
from bridgehost.plugins import PluginHost
from bridgehost.providers import ContextPart
from bridgehost.state import CallLog
from bridgehost.state.bridge_store import BridgeStore
from bridgehost.telegram import prepare
from bridgehost.telegram.control_channel import Backoff
from bridgehost.telegram.daemon import build_bridge
from bridgehost.telegram.handover import LogOnlyHandoff


def _bind(gw, thread="thread-abc"):
    store = BridgeStore.open(gw.loaded.config.storage.root)
    store.bind(thread)
    store.close()


async def _ready_bridge(tmp_path, tg, gateway_factory, bridge_factory, **kwargs):
    gw = await gateway_factory(connect_bridge=False)
    _bind(gw)
    loaded = bridge_config(tmp_path, tg, gateway_raw=gw.loaded.raw)
    bridge = await bridge_factory(loaded, **kwargs)
    await bridge.wait_connected()
    return gw, loaded, bridge


async def test_hangup_ends_a_live_call_and_hands_it_over(
    tmp_path, tg, gateway_factory, bridge_factory
):
    gw, _loaded, bridge = await _ready_bridge(tmp_path, tg, gateway_factory, bridge_factory)
    tg.push_message(CHAT, "/call")
    body = await bootstrap_from_button(gw, tg)
    call_id = body["call_id"]
    assert bridge.codex.asked == ["thread-abc"]
    assert bridge.rt.store.notes(call_id) == []

    ws = await browser(gw, body)
    await browser_event(ws, {"type": "call.started"}, 1)
    await browser_event(ws, {"type": "user.transcript.final", "text": "let's plan the fix"}, 2)
    store = bridge.rt.store
    await stored(store, call_id, "user.transcript.final")
    tg.push_message(CHAT, "also check the tokenizer")
    await wait_text(tg, "Added to this call's notes")
    assert store.notes(call_id)[-1] == "also check the tokenizer"

    tg.push_message(CHAT, "/hangup")
    await wait_text(tg, "Hanging up…")
    assert await bridge.handoff.wait(1) == [call_id]
    record = gw.gateway.store.get_call(call_id)
    assert (record.status, record.end_reason, record.ended_by) == (
        "ended",
        "telegram_hangup",
        "telegram",
    )
    logged = CallLog(gw.gateway.paths.call_log(call_id)).read().events
    assert store.call_events(call_id) == logged
    assert store.call(call_id)["handoff_state"] == "handed"
    tg.push_message(CHAT, "/call status")
    status = await wait_text(tg, "Recent calls:")
    assert f"• {call_id[:8]}" in status["text"] and "(telegram_hangup)" in status["text"]
    assert "Current call: none" in status["text"]
    await ws.close()


async def test_events_arrive_exactly_once_across_a_restart_mid_call(
    tmp_path, tg, gateway_factory, bridge_factory
):
    gw, loaded, first = await _ready_bridge(tmp_path, tg, gateway_factory, bridge_factory)
    tg.push_message(CHAT, "/call")
    body = await bootstrap_from_button(gw, tg)
    call_id = body["call_id"]
    ws = await browser(gw, body)
    await browser_event(ws, {"type": "call.started"}, 1)
    await browser_event(ws, {"type": "user.transcript.final", "text": "one"}, 2)
    await stored(first.rt.store, call_id, "user.transcript.final")

    await first.shutdown()
    await browser_event(ws, {"type": "user.transcript.final", "text": "two"}, 3)
    await browser_event(ws, {"type": "assistant.transcript.final", "text": "three"}, 4)
    gw.gateway.store.update_call(call_id, bridge_acked_seq=0)  # acks lost too: full replay

    second = await bridge_factory(loaded)
    await second.wait_connected()
    await stored(second.rt.store, call_id, "assistant.transcript.final")
    async with gw.http.post(
        f"{gw.base}/api/call/hangup",
        json={"call_id": call_id, "client_token": body["client_token"]},
    ) as resp:
        assert resp.status == 200
    assert await second.handoff.wait(1) == [call_id]

    events = second.rt.store.call_events(call_id)
    logged = CallLog(gw.gateway.paths.call_log(call_id)).read().events
    assert events == logged
    assert [e["seq"] for e in events] == list(range(1, len(logged) + 1))
    texts = [e.get("text") for e in events if "transcript.final" in e["type"]]
    assert texts == ["one", "two", "three"]
    assert first.handoff.calls == []
    async with asyncio.timeout(5):
        while gw.gateway.store.get_call(call_id).bridge_acked_seq != len(logged):
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    assert second.handoff.calls == [call_id], "handed over once"
    await ws.close()


async def test_a_call_that_never_started_is_discarded_silently(
    tmp_path, tg, gateway_factory, bridge_factory
):
    gw, _loaded, bridge = await _ready_bridge(tmp_path, tg, gateway_factory, bridge_factory)
    tg.push_message(CHAT, "/call")
    body = await bootstrap_from_button(gw, tg)
    call_id = body["call_id"]
    sent_before = len(tg.sent_messages(CHAT))

    tg.push_message(CHAT, "/hangup")  # before the browser ever connected
    await wait_text(tg, "Hanging up…")
    async with asyncio.timeout(5):
        while (bridge.rt.store.call(call_id) or {}).get("handoff_state") != "discarded":
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    assert bridge.handoff.calls == []
    assert len(tg.sent_messages(CHAT)) == sent_before + 1, "only the 'Hanging up…' reply"


async def test_refused_prepare_ends_the_call_without_a_recap(
    tmp_path, tg, gateway_factory, bridge_factory
):
    gw = await gateway_factory(connect_bridge=False)
    bridge = await bridge_factory(bridge_config(tmp_path, tg, gateway_raw=gw.loaded.raw))
    await bridge.wait_connected()
    armed = await gw.arm()
    resp = await gw.bootstrap(armed["launch_url"].split("launch=")[1])
    body = await resp.json()
    assert resp.status == 409
    assert body["error"]["message"] == "No Codex thread is bound. Run: bridgectl bind --latest"
    async with asyncio.timeout(5):
        while not bridge.rt.store.recent_calls():
            await asyncio.sleep(0.02)
    call = bridge.rt.store.recent_calls()[0]
    async with asyncio.timeout(5):
        while (bridge.rt.store.call(call["call_id"]) or {}).get("handoff_state") is None:
            await asyncio.sleep(0.02)
    assert bridge.rt.store.call(call["call_id"])["handoff_state"] == "discarded"
    assert bridge.handoff.calls == [] and tg.sent_messages(CHAT) == []


class _SlowPlugin:
    @hookimpl
    def bridgehost_call_context(self, call, config):
        return [ContextPart("On-call rota", f"Alice, for call {call.call_id}", 40)]


async def test_prepare_collects_codex_plugin_and_note_parts_within_its_budget(
    tmp_path, tg, monkeypatch
):
    loaded = bridge_config(tmp_path, tg)
    host = PluginHost()
    host.register(_SlowPlugin(), "rota")
    slow_codex = StaticCodex(delay_s=30)
    rt = build_bridge(loaded, host=host, codex=slow_codex, handoff=LogOnlyHandoff())
    try:
        rt.store.add_note("check the tokenizer", None)
        call = {"call_id": "c1", "bridge_id": "bridge", "telegram_user_id": CHAT}
        assert (await prepare.prepare_call(rt, call))["reason"] == prepare.NOT_BOUND
        rt.store.bind("thread-abc")
        rt.store.set_owner("desktop")
        assert (await prepare.prepare_call(rt, call))["reason"] == prepare.DESKTOP_OWNS
        rt.store.set_owner("telegram")
        wrong = await prepare.prepare_call(rt, {**call, "telegram_user_id": 1})
        assert wrong["reason"] == prepare.WRONG_USER
        bad = await prepare.prepare_call(rt, {**call, "call_id": "../etc"})
        assert bad["reason"] == prepare.MALFORMED

        monkeypatch.setattr(prepare, "context_budget_s", lambda _ms: 0.3)
        started = asyncio.get_running_loop().time()
        answer = await prepare.prepare_call(rt, call)
        assert asyncio.get_running_loop().time() - started < 2
        assert answer["allowed"] is True
        titles = [p["title"] for p in answer["context"]["parts"]]
        assert titles == ["Notes the user sent in Telegram before the call", "On-call rota"]
        assert "check the tokenizer" in answer["context"]["parts"][0]["text"]

        fast = build_bridge(loaded, host=host, codex=StaticCodex(), handoff=LogOnlyHandoff())
        answer = await prepare.prepare_call(fast, {**call, "call_id": "c2"})
        assert [p["priority"] for p in answer["context"]["parts"]] == [90, 40]
        fast.store.close()
    finally:
        rt.store.close()


async def test_status_follows_the_binding_that_bridgectl_changes(
    tmp_path, tg, gateway_factory, bridge_factory
):
    gw, _loaded, _bridge = await _ready_bridge(tmp_path, tg, gateway_factory, bridge_factory)
    peer = gw.gateway.hub.peers["bridge"]
    assert peer.status["thread_id"] == "thread-abc" and peer.status["owner"] == "telegram"
    assert peer.status["version"] and peer.status["call_id"] is None
    other = BridgeStore.open(gw.loaded.config.storage.root)  # as bridgectl bind/release do
    other.bind("thread-next")
    other.set_owner("desktop")
    other.close()
    async with asyncio.timeout(6):
        while (peer.status.get("thread_id"), peer.status.get("owner")) != (
            "thread-next",
            "desktop",
        ):
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("ms, expected", [(3000, 3.0), (45000, 15.0), (100, 3.0)])
def test_context_budget_stays_inside_the_gateways_wait(ms, expected):
    assert prepare.context_budget_s(ms) == expected


def test_backoff_grows_with_jitter_and_stays_bounded():
    backoff = Backoff(0.5, 8.0)
    delays = [backoff.next() for _ in range(12)]
    assert 0.25 <= delays[0] <= 0.5
    assert all(d <= 8.0 for d in delays) and max(delays) >= 4.0
    backoff.reset()
    assert backoff.next() <= 0.5
