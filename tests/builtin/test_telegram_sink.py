"""The ``telegram`` handoff sink against the fake Bot API, driven by python-telegram-bot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridgehost.builtin import telegram_sink
from bridgehost.config import Secrets, validate_config
from bridgehost.handoff import Outbox, Pipeline, Summarizer, deliveries
from bridgehost.plugins import PluginHost
from bridgehost.providers import ProviderStartError
from bridgehost.state.bridge_store import BridgeStore
from fakes.telegram_api import FakeBotApi
from handoff.handoff_helpers import RecordingSink, seed_call

pytestmark = pytest.mark.timeout(30)

TOKEN = "123456:TEST-TOKEN-telegram-sink"
CHAT = 4242


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(token=TOKEN) as server:
        yield server


def build_sink(
    api: FakeBotApi, tmp_path: Path, *, token: str | None = TOKEN, chat: int | None = CHAT
) -> telegram_sink.TelegramRecapSink:
    host = PluginHost()
    host.register(telegram_sink, "builtin-telegram-sink")
    telegram: dict = {"api_base_url": api.root}
    if chat is not None:
        telegram["authorized_chat_id"] = chat
    config = validate_config(
        {
            "telegram": telegram,
            "storage": {"root": str(tmp_path)},
            "handoff": {"sinks": ["telegram"]},
        },
        env={},
    )
    secrets = Secrets(env={"TELEGRAM_BOT_TOKEN": token} if token else {}, dotenv={})
    sink = host.build(host.select("handoff_sinks", "telegram"), config, secrets)
    assert isinstance(sink, telegram_sink.TelegramRecapSink)
    return sink


ARTIFACT = {
    "call_id": "call-t",
    "duration_s": 125.0,
    "end_reason": "idle_timeout",
    "summary": "We agreed to pin libfoo.",
    "summarized": True,
    "decisions": ["Ship Friday"],
    "action_items": ["Pin libfoo", "Open a PR"],
    "open_questions": [],
}


async def test_recap_is_sent_once_per_call(api: FakeBotApi, tmp_path: Path) -> None:
    sink = build_sink(api, tmp_path)
    await sink.start()
    try:
        receipt = await sink.deliver(ARTIFACT)
        again = await sink.deliver(ARTIFACT)
    finally:
        await sink.stop()
    sent = api.sent_messages(CHAT)
    assert len(sent) == 1 and receipt == again == f"telegram:{CHAT}:{sent[0]['message_id']}"
    text = sent[0]["text"]
    assert "Call ended after 2 min 5 s" in text
    assert "nobody spoke for too long (idle_timeout)" in text
    assert "We agreed to pin libfoo." in text
    assert "1 decision · 2 action items · 0 open questions" in text
    assert [c.method for c in api.calls].count("sendMessage") == 1


async def test_unsummarized_recap_says_why(api: FakeBotApi, tmp_path: Path) -> None:
    sink = build_sink(api, tmp_path)
    await sink.deliver({**ARTIFACT, "summarized": False, "summary_error": "HTTP 429"})
    await sink.stop()
    assert "Not summarized automatically: HTTP 429" in api.sent_messages(CHAT)[0]["text"]


async def test_missing_token_or_chat_refuses_to_start(api: FakeBotApi, tmp_path: Path) -> None:
    for sink in (build_sink(api, tmp_path, token=None), build_sink(api, tmp_path, chat=None)):
        assert not (await sink.health()).ok
        with pytest.raises(ProviderStartError):
            await sink.start()
    assert (await build_sink(api, tmp_path).health()).ok


async def test_bot_api_failure_raises_for_a_retry(api: FakeBotApi, tmp_path: Path) -> None:
    sink = build_sink(api, tmp_path)
    api.fail("sendMessage", code=502)
    with pytest.raises(Exception, match="Bad Gateway"):
        await sink.deliver(ARTIFACT)
    assert api.sent_messages(CHAT) == []
    await sink.deliver(ARTIFACT)
    await sink.stop()
    assert len(api.sent_messages(CHAT)) == 1


async def test_through_the_outbox_a_saved_receipt_prevents_a_second_message(
    api: FakeBotApi, tmp_path: Path
) -> None:
    store = BridgeStore.open(tmp_path)
    seed_call(store, "call-o")
    sink = build_sink(api, tmp_path)
    sink.recap_wait_s = 5.0
    file_like = RecordingSink("file")
    config = validate_config(
        {
            "telegram": {"api_base_url": api.root, "authorized_chat_id": CHAT},
            "storage": {"root": str(tmp_path)},
            "handoff": {"sinks": ["file", "telegram"], "retry_base_s": 0.05, "retry_max_s": 0.1},
        },
        env={},
    )
    pipe = Pipeline(
        config,
        Secrets(env={}, dotenv={}),
        store,
        sinks={"file": file_like, "telegram": sink},
        summarizer=Summarizer(model="m", api_key=None),
    )
    await pipe.start()
    try:
        await pipe.call_ended("call-o")
        assert await pipe.wait_idle(10)
    finally:
        await pipe.stop()
    rows = {d["sink"]: d for d in deliveries(store, "call-o")}
    sent = api.sent_messages(CHAT)
    assert len(sent) == 1
    assert rows["telegram"]["receipt"] == f"telegram:{CHAT}:{sent[0]['message_id']}"
    assert "Handoff:\n• file: file:call-o" in sent[0]["text"]
    # A crash after Telegram answered but before the row was marked delivered: the row comes
    # back as pending with the receipt the sink saved, and the retry sends nothing.
    store.db.execute("UPDATE handoff_outbox SET status = 'delivering' WHERE sink = 'telegram'")
    outbox = Outbox(store)
    assert outbox.recover_interrupted() == 1
    again = Pipeline(
        config,
        Secrets(env={}, dotenv={}),
        store,
        sinks={"file": file_like, "telegram": build_sink(api, tmp_path)},
        summarizer=Summarizer(model="m", api_key=None),
    )
    await again.start()
    try:
        assert await again.wait_idle(10)
    finally:
        await again.stop()
    assert len(api.sent_messages(CHAT)) == 1
    assert {d["sink"]: d["status"] for d in deliveries(store, "call-o")} == {
        "file": "delivered",
        "telegram": "delivered",
    }
    assert [c.method for c in api.calls].count("sendMessage") == 1
    store.close()
    await asyncio.sleep(0)
