"""Only the authorized private chat is served; a stranger's message gets no answer at all."""

from __future__ import annotations

import asyncio

from tg_harness import CHAT, bridge_config, captured_events, wait_text, web_app_url

from bridgehost.state.bridge_store import BridgeStore
from bridgehost.state.chat_inbox import OFFSET_KEY, ChatInbox
from bridgehost.telegram.access import Access, Sender, Verdict

STRANGER = 9999


def test_access_serves_only_the_private_chat_of_the_authorized_user():
    access = Access(CHAT, clock=lambda: 0.0)
    assert access.check(Sender(CHAT, "private", CHAT)) is Verdict.SERVE
    assert access.check(Sender(-100123, "group", CHAT)) is Verdict.IGNORE, "groups: silence"
    assert access.check(Sender(CHAT, "private", CHAT, is_bot=True)) is Verdict.IGNORE
    assert access.check(Sender(STRANGER, "private", STRANGER)) is Verdict.IGNORE
    assert access.check(Sender(STRANGER, "private", CHAT)) is Verdict.IGNORE


def test_a_stranger_is_warned_about_in_the_journal_once_per_window():
    now = [0.0]
    access = Access(CHAT, warn_every_s=3600, clock=lambda: now[0])
    levels = []
    for at in (0.0, 1.0, 3599.0, 3601.0):
        now[0] = at
        with captured_events() as logs:
            assert access.check(Sender(STRANGER, "private", STRANGER)) is Verdict.IGNORE
        levels += [e["log_level"] for e in logs if e["event"].startswith("refused")]
    assert levels == ["warning", "debug", "debug", "warning"]


def test_access_remembers_a_bounded_number_of_strangers(monkeypatch):
    monkeypatch.setattr("bridgehost.telegram.access.MAX_TRACKED_USERS", 3)
    access = Access(CHAT, clock=lambda: 0.0)
    for user in range(10):
        access.check(Sender(user + 1, "private", user + 1))
    assert len(access._warned) == 3


async def test_strangers_learn_nothing(tmp_path, tg, gateway_factory, bridge_factory):
    gw = await gateway_factory(connect_bridge=False)
    bridge = await bridge_factory(bridge_config(tmp_path, tg, gateway_raw=gw.loaded.raw))
    await bridge.wait_connected()
    for text in ("/start", "/call", "call me", "/capabilities", "hello"):
        tg.push_message(STRANGER, text)
    tg.push_message(-100777, "/call", user_id=CHAT)  # the right user, in a group
    tg.push_message(CHAT, "/help")  # a marker: everything before it was processed
    await wait_text(tg, "/hangup", chat=CHAT)
    await asyncio.sleep(0.2)
    assert tg.sent_messages(STRANGER) == [], "no answer, not even a refusal"
    assert tg.sent_messages(-100777) == []
    assert not [m for m in tg.sent_messages() if web_app_url(m)]
    assert not gw.gateway.surface.state.armed, "a stranger's /call armed nothing"
    assert bridge.rt.store.db.query_one("SELECT COUNT(*) AS n FROM call_notes")["n"] == 0


async def test_an_update_seen_again_after_a_restart_is_not_acted_on_twice(
    tmp_path, tg, gateway_factory, bridge_factory
):
    gw = await gateway_factory(connect_bridge=False)
    loaded = bridge_config(tmp_path, tg, gateway_raw=gw.loaded.raw)
    first = await bridge_factory(loaded)
    update = tg.push_message(CHAT, "remember the parser bug")
    await wait_text(tg, "I kept your message")  # no Codex here: kept for a retry
    await first.shutdown()
    # a store from before the update offset was kept: only the handled ids guard against this
    store = BridgeStore.open(loaded.config.storage.root)
    with store.db.transaction():
        store.db.execute("DELETE FROM settings WHERE key = ?", (OFFSET_KEY,))
    store.close()
    # Telegram redelivers an update whose offset was never confirmed (say, after kill -9):
    # put the very same update (same update_id) back in the fake's queue.
    tg._updates.append(update)
    tg._notify()
    with captured_events() as logs:
        second = await bridge_factory(loaded)
        tg.push_message(CHAT, "/help")
        await wait_text(tg, "/hangup")
    assert {
        "event": "dropped an update handled before",
        "update_id": update["update_id"],
        "log_level": "info",
    } in logs
    kept = [e.payload["text"] for e in ChatInbox(second.rt.store).pending()]
    assert kept == ["remember the parser bug"]
