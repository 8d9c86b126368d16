"""Invites through the real daemon's invite socket, a real gateway and the fake Bot API: the
rules (rate limit, quiet hours, expiry, decline, replacement, also by ``/call``'s link), the call's
context, the audit."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from tg_harness import CHAT, bridge_config, dump_toml, wait_button, wait_text, web_app_url

from bridgehost.config import load_config
from bridgehost.invites.client import InviteClient
from bridgehost.protocol.invites import AskRequest, InviteRequest, MessageRequest, OutcomeKind
from bridgehost.state.bridge_store import BridgeStore
from bridgehost.telegram import invites
from gateway.conftest import BOT_TOKEN, CONTROL_SECRET


async def start(tmp_path, tg, gateway_factory, bridge_factory, **rules):
    """A bound bridge, connected to a gateway, with ``[invites]`` set to ``rules``."""
    gw = await gateway_factory(connect_bridge=False)
    store = BridgeStore.open(gw.loaded.config.storage.root)
    store.bind("thread-abc")
    store.close()
    loaded = bridge_config(tmp_path, tg, gateway_raw=gw.loaded.raw)
    raw = dict(loaded.raw, invites=rules)
    path = tmp_path / "bridge-telegram.toml"
    path.write_text(dump_toml(raw))
    env = {"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "REALTIME_CONTROL_SECRET": CONTROL_SECRET}
    loaded = load_config(path, env=env)
    bridge = await bridge_factory(loaded)
    await bridge.wait_connected()
    return gw, bridge, loaded


async def send_invite(loaded, reason="The tests are green; shall I merge?", **extra):
    async with InviteClient(loaded.config) as client:
        return await client.invite(InviteRequest(reason=reason, **extra))


def quiet_now() -> str:
    """Quiet hours that contain the current moment (local time zone, unset in the config)."""
    now = datetime.now().astimezone()
    start, end = now - timedelta(minutes=30), now + timedelta(minutes=30)
    return f"{start:%H:%M}-{end:%H:%M}"


async def test_invite_sends_reason_and_button_and_leads_the_call_context(
    tmp_path, tg, gateway_factory, bridge_factory
):
    gw, bridge, loaded = await start(tmp_path, tg, gateway_factory, bridge_factory)
    outcome = await send_invite(loaded)
    assert outcome.outcome is OutcomeKind.SENT, outcome
    assert outcome.launch_url and outcome.launch_url.startswith(f"{gw.base}/miniapp?launch=")
    message = await wait_text(tg, "shall I merge?")
    assert web_app_url(message) == outcome.launch_url
    assert any(
        b.get("callback_data", "").startswith("inv:no:")
        for row in message["reply_markup"]["inline_keyboard"]
        for b in row
    )

    resp = await gw.bootstrap(outcome.launch_url.split("launch=")[1])
    assert resp.status == 200, await resp.json()
    desk = bridge.rt.invites
    async with asyncio.timeout(5):
        while desk.store.invite(outcome.invite_id)["status"] != "accepted":
            await asyncio.sleep(0.05)
    call_id = desk.store.invite(outcome.invite_id)["call_id"]
    assert call_id
    kinds = [e["kind"] for e in desk.store.events()]
    assert kinds == ["invite.sent", "invite.accepted"]
    assert desk.store.events()[0]["origin"] == "operator"
    assert invites.REASON_PRIORITY > 100


async def test_rate_limit_refuses_the_fourth_invite_and_replacement_keeps_one_link(
    tmp_path, tg, gateway_factory, bridge_factory
):
    _gw, bridge, loaded = await start(tmp_path, tg, gateway_factory, bridge_factory, max_per_hour=2)
    first = await send_invite(loaded, "first")
    second = await send_invite(loaded, "second")
    third = await send_invite(loaded, "third")
    assert [first.outcome, second.outcome] == [OutcomeKind.SENT, OutcomeKind.SENT]
    assert third.outcome is OutcomeKind.RATE_LIMITED and "limit" in third.detail
    store = bridge.rt.invites.store
    assert store.invite(first.invite_id)["status"] == "replaced"
    assert [row["invite_id"] for row in store.open_invites()] == [second.invite_id]
    replaced = await wait_text(tg, "Replaced by a newer invite")
    assert web_app_url(replaced) is None, "the replaced invite lost its button"
    refused = store.events("invite.refused")
    assert refused[-1]["detail"]["outcome"] == "rate_limited"


async def test_quiet_hours_refuse_invites_and_messages(
    tmp_path, tg, gateway_factory, bridge_factory
):
    _gw, bridge, loaded = await start(
        tmp_path, tg, gateway_factory, bridge_factory, quiet_hours=quiet_now()
    )
    outcome = await send_invite(loaded)
    assert outcome.outcome is OutcomeKind.QUIET_HOURS and "quiet hours" in outcome.detail
    async with InviteClient(loaded.config) as client:
        said = await client.message(MessageRequest(text="done", origin="agent"))
    assert said.outcome is OutcomeKind.QUIET_HOURS
    assert not [m for m in tg.sent_messages(CHAT) if "merge" in m["text"] or m["text"] == "done"]
    assert {e["kind"] for e in bridge.rt.invites.store.events()} == {
        "invite.refused",
        "message.refused",
    }


async def test_not_now_declines_and_the_waiting_request_hears_it(
    tmp_path, tg, gateway_factory, bridge_factory
):
    _gw, bridge, loaded = await start(tmp_path, tg, gateway_factory, bridge_factory)
    waiting = asyncio.create_task(send_invite(loaded, origin="agent", wait_s=10))
    message = await wait_text(tg, "shall I merge?")
    tg.push_callback_query(
        CHAT,
        next(
            b["callback_data"]
            for row in message["reply_markup"]["inline_keyboard"]
            for b in row
            if "callback_data" in b
        ),
        message["message_id"],
    )
    outcome = await asyncio.wait_for(waiting, 10)
    assert outcome.outcome is OutcomeKind.DECLINED
    assert bridge.rt.invites.store.invite(outcome.invite_id)["status"] == "declined"
    await wait_text(tg, "You said not now")
    async with asyncio.timeout(5):
        while not tg.callback_answers:
            await asyncio.sleep(0.05)
    assert tg.callback_answers[-1]["text"] == "OK, not now."


async def test_an_unanswered_invite_expires(tmp_path, tg, gateway_factory, bridge_factory):
    _gw, bridge, loaded = await start(tmp_path, tg, gateway_factory, bridge_factory, expiry_s=1)
    outcome = await send_invite(loaded, origin="agent", wait_s=5)
    assert outcome.outcome is OutcomeKind.EXPIRED
    expired = await wait_text(tg, "This invite has expired")
    assert web_app_url(expired) is None
    assert bridge.rt.invites.store.events("invite.expired")[0]["origin"] == "agent"


async def test_ask_returns_the_choice_or_no_answer(tmp_path, tg, gateway_factory, bridge_factory):
    _gw, bridge, loaded = await start(tmp_path, tg, gateway_factory, bridge_factory)
    async with InviteClient(loaded.config) as client:
        asking = asyncio.create_task(
            client.ask(AskRequest(question="Deploy now?", options=["Yes", "Not yet"], timeout_s=10))
        )
        message = await wait_text(tg, "Deploy now?")
        tg.push_callback_query(
            CHAT, message["reply_markup"]["inline_keyboard"][1][0]["callback_data"]
        )
        answered = await asyncio.wait_for(asking, 10)
        unanswered = await client.ask(AskRequest(question="Lunch?", options=["Yes"], timeout_s=0.5))
    assert answered.outcome is OutcomeKind.ANSWERED and answered.choice == "Not yet"
    assert unanswered.outcome is OutcomeKind.NO_ANSWER
    kinds = [e["kind"] for e in bridge.rt.invites.store.events()]
    assert kinds == ["ask.sent", "ask.answered", "ask.sent", "ask.unanswered"]


async def test_a_call_link_from_slash_call_replaces_the_open_invite(
    tmp_path, tg, gateway_factory, bridge_factory
):
    _gw, bridge, loaded = await start(tmp_path, tg, gateway_factory, bridge_factory)
    outcome = await send_invite(loaded)
    assert outcome.outcome is OutcomeKind.SENT, outcome
    await wait_text(tg, "shall I merge?")
    tg.push_message(CHAT, "/call")
    replaced = await wait_text(tg, "Replaced by a newer call link below.")
    assert replaced["text"].startswith("The tests are green; shall I merge?")
    assert web_app_url(replaced) is None, "the replaced invite lost its button"
    store = bridge.rt.invites.store
    assert store.invite(outcome.invite_id)["status"] == "replaced"
    assert store.open_invites() == []
    message, url = await wait_button(tg)  # /call's own, newer link
    assert "Tap the button" in message["text"] and url != outcome.launch_url
