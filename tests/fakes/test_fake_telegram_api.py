"""The fake Telegram Bot API, checked against the official client, python-telegram-bot 22."""

from __future__ import annotations

import asyncio
import datetime as dtm
import hashlib
import hmac
import json
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import aiohttp
import pytest
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    MenuButtonWebApp,
    Update,
    WebAppInfo,
)
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes

from fakes.telegram_api import FakeBotApi

TOKEN = "123456:TEST-TOKEN"
CHAT = 4242
TESTS_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    """A running fake with the default (test-friendly) settings."""
    async with FakeBotApi(token=TOKEN) as fake:
        yield fake


def make_bot(api: FakeBotApi, token: str = TOKEN) -> Bot:
    """The official client pointed at the fake (the token is appended to ``base_url``)."""
    return Bot(token, base_url=f"{api.root}/bot")


def call_button(url: str) -> InlineKeyboardMarkup:
    """The Mini App launch button bridgehost sends."""
    return InlineKeyboardMarkup([[InlineKeyboardButton("📞 Start call", web_app=WebAppInfo(url))]])


def verify_init_data(init_data: str, token: str) -> dict[str, str] | None:
    """An independent implementation of Telegram's check (core.telegram.org/bots/webapps)."""
    pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    fields = dict(pairs)
    if len(fields) != len(pairs) or "hash" not in fields:
        return None
    received = fields.pop("hash")
    check = "\n".join(f"{key}={fields[key]}" for key in sorted(fields))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    expected = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return fields if hmac.compare_digest(expected, received) else None


def seconds(value: int | float | dtm.timedelta) -> float:
    """``RetryAfter.retry_after`` is an int or a timedelta depending on PTB settings."""
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


async def test_get_me(api: FakeBotApi) -> None:
    async with make_bot(api) as bot:
        me = await bot.get_me()
    assert me.id == 123456 and me.is_bot and me.username == api.bot["username"]
    assert [c.method for c in api.calls].count("getMe") == 2  # initialize() and ours


async def test_send_message_with_web_app_button_round_trips(api: FakeBotApi) -> None:
    url = "https://calls.example/call?s=abc"
    async with make_bot(api) as bot:
        sent = await bot.send_message(CHAT, "Tap to start the call", reply_markup=call_button(url))
        local = await bot.send_message(CHAT, "dev", reply_markup=call_button("http://127.0.0.1:1/"))
    assert sent.chat.id == CHAT and sent.chat.type == "private" and sent.from_user.is_bot
    assert sent.reply_markup.inline_keyboard[0][0].web_app.url == url
    assert local.message_id == sent.message_id + 1
    stored = api.sent_messages(CHAT)
    assert [m["text"] for m in stored] == ["Tap to start the call", "dev"]
    assert stored[0]["reply_markup"]["inline_keyboard"][0][0]["web_app"]["url"] == url
    assert api.calls[-1].json("reply_markup")["inline_keyboard"][0][0]["text"] == "📞 Start call"


async def test_http_web_app_url_is_refused_with_telegrams_text() -> None:
    url = "http://127.0.0.1:8080/call"
    async with FakeBotApi(token=TOKEN, allow_http_webapp=False) as api, make_bot(api) as bot:
        with pytest.raises(BadRequest) as refused:
            await bot.send_message(CHAT, "Tap", reply_markup=call_button(url))
        with pytest.raises(BadRequest, match=r"(?i)only https links are allowed"):
            await bot.set_chat_menu_button(CHAT, MenuButtonWebApp("Call", WebAppInfo(url)))
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{api.root}/bot{TOKEN}/sendMessage",
                data={"chat_id": CHAT, "text": "Tap", "reply_markup": call_button(url).to_json()},
            ) as response,
        ):
            raw = await response.json()
    expected = (
        f"Bad Request: inline keyboard button Web App URL '{url}' is invalid: "
        "Only HTTPS links are allowed"
    )
    assert response.status == 400
    assert raw == {"ok": False, "error_code": 400, "description": expected}
    # PTB strips "Bad Request: " and capitalizes what is left
    assert refused.value.message == BadRequest(expected).message
    assert api.sent_messages() == []


async def test_http_web_app_url_off_loopback_is_refused_even_in_test_mode(api: FakeBotApi) -> None:
    async with make_bot(api) as bot:
        with pytest.raises(BadRequest, match=r"(?i)only https links are allowed"):
            await bot.send_message(CHAT, "x", reply_markup=call_button("http://calls.example/"))
        with pytest.raises(BadRequest, match=r"(?i)web app url 'ftp://x/' is invalid$"):
            await bot.send_message(CHAT, "x", reply_markup=call_button("ftp://x/"))


async def test_commands_round_trip(api: FakeBotApi) -> None:
    async with make_bot(api) as bot:
        assert await bot.get_my_commands() == ()
        assert await bot.set_my_commands([BotCommand("call", "Start a live call")])
        commands = await bot.get_my_commands()
    assert [(c.command, c.description) for c in commands] == [("call", "Start a live call")]
    assert api.commands == [{"command": "call", "description": "Start a live call"}]


async def test_application_polling_answers_a_pushed_command(api: FakeBotApi) -> None:
    async def call(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(
            "Tap to start",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("Cancel", callback_data="cancel")]]
            ),
        )

    async def tapped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.callback_query.answer("Cancelled")

    app = ApplicationBuilder().token(TOKEN).base_url(f"{api.root}/bot").build()
    app.add_handler(CommandHandler("call", call))
    app.add_handler(CallbackQueryHandler(tapped))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1)
        api.push_message(CHAT, "/call", first_name="Ada")
        reply = await api.wait_for_message(lambda m: m["text"] == "Tap to start", timeout=5)
        api.push_callback_query(CHAT, "cancel")
        for _ in range(50):
            if api.callback_answers:
                break
            await asyncio.sleep(0.1)
        await app.updater.stop()
        await app.stop()
    assert reply["chat"] == {"id": CHAT, "type": "private", "first_name": "Ada"}
    assert api.callback_answers[0]["text"] == "Cancelled"
    assert {"getMe", "deleteWebhook", "getUpdates"} <= {c.method for c in api.calls}
    assert api.pending_updates == []  # PTB confirmed what it handled


async def test_get_updates_long_polls_and_offset_confirms(api: FakeBotApi) -> None:
    async with make_bot(api) as bot:
        start = time.monotonic()
        assert await bot.get_updates(timeout=1) == ()
        assert 0.9 < time.monotonic() - start < 2
        asyncio.get_running_loop().call_later(0.2, api.push_message, CHAT, "/start hi")
        start = time.monotonic()
        updates = await bot.get_updates(timeout=5)
        assert time.monotonic() - start < 1.5
        message = updates[0].message
        assert message.text == "/start hi" and message.from_user.id == CHAT
        assert message.entities[0].type == "bot_command" and message.entities[0].length == 6
        api.push_message(CHAT, "second")
        again = await bot.get_updates(offset=updates[0].update_id + 1, timeout=0)
        assert [u.message.text for u in again] == ["second"]
        assert [u["message"]["text"] for u in api.pending_updates] == ["second"]
        api.push_callback_query(CHAT, "x", message_id=message.message_id)
        assert await bot.get_updates(offset=-1, limit=1, timeout=0, allowed_updates=[]) != ()
        assert [u.callback_query.data for u in await bot.get_updates(timeout=0)] == ["x"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PTB 22: int retry_after
async def test_injected_rate_limit_and_block(api: FakeBotApi) -> None:
    api.fail_rate_limit("sendMessage", retry_after=7)
    async with make_bot(api) as bot:
        with pytest.raises(RetryAfter) as limited:
            await bot.send_message(CHAT, "hi")
        api.fail_blocked("sendMessage")
        with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
            await bot.send_message(CHAT, "hi")
        api.fail_bad_request("sendMessage", "Bad Request: can't parse entities: oops", times=2)
        for _ in range(2):
            with pytest.raises(BadRequest, match=r"(?i)can't parse entities: oops"):
                await bot.send_message(CHAT, "hi")
        assert (await bot.send_message(CHAT, "hi")).text == "hi"
    assert seconds(limited.value.retry_after) == 7


async def test_close_answers_held_polls_at_once() -> None:
    api = await FakeBotApi(token=TOKEN).start()
    async with make_bot(api) as bot:
        poll = asyncio.create_task(bot.get_updates(timeout=8))
        await asyncio.sleep(0.2)
        start = time.monotonic()
        await api.close()
        assert await asyncio.wait_for(poll, timeout=3) == ()
        assert time.monotonic() - start < 1.5


async def test_injected_network_failure_then_recovery(api: FakeBotApi) -> None:
    async with make_bot(api) as bot:
        api.fail_network("getMe")
        with pytest.raises(NetworkError):
            await bot.get_me()
        assert (await bot.get_me()).id == 123456


async def test_wrong_token_and_unknown_method(api: FakeBotApi) -> None:
    with pytest.raises(InvalidToken):
        async with make_bot(api, token="654321:WRONG"):
            pass
    async with make_bot(api) as bot:
        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("noSuchMethod")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{api.root}/bot{TOKEN}/noSuchMethod") as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }
        async with http.post(f"{api.root}/botWRONG/getMe", json={}) as response:
            assert response.status == 401
            assert (await response.json())["description"] == "Unauthorized"


async def test_json_bodies_and_other_methods(api: FakeBotApi) -> None:
    markup = {"inline_keyboard": [[{"text": "Go", "web_app": {"url": "https://a.example/"}}]]}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{api.root}/bot{TOKEN}/sendMessage",
            json={"chat_id": CHAT, "text": "json", "reply_markup": markup},
        ) as r,
    ):
        body = await r.json()
    assert body["ok"] and body["result"]["reply_markup"] == markup
    init = api.mini_app_init_data(CHAT, query_id="AAQ1")
    async with make_bot(api) as bot:
        message_id = body["result"]["message_id"]
        edited = await bot.edit_message_text("edited", chat_id=CHAT, message_id=message_id)
        assert edited.text == "edited" and edited.edit_date is not None and not edited.reply_markup
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_text("edited", chat_id=CHAT, message_id=message_id)
        assert await bot.send_chat_action(CHAT, "typing")
        assert await bot.set_chat_menu_button(
            CHAT, MenuButtonWebApp("Call", WebAppInfo("https://a.example/"))
        )
        assert (await bot.get_chat_menu_button(CHAT)).text == "Call"
        result = InlineQueryResultArticle("1", "Summary", InputTextMessageContent("done"))
        assert (await bot.answer_web_app_query("AAQ1", result)).inline_message_id
        with pytest.raises(BadRequest, match=r"(?i)QUERY_ID_INVALID"):
            await bot.answer_web_app_query("AAQ1", result)
        assert await bot.delete_message(CHAT, message_id)
        with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
            await bot.delete_message(CHAT, message_id)
        with pytest.raises(BadRequest, match=r"(?i)query ID is invalid"):
            await bot.answer_callback_query("nope")
    assert "query_id=AAQ1" in init
    assert api.web_app_answers[0]["result"]["input_message_content"]["message_text"] == "done"
    assert api.sent_messages(CHAT)[0]["deleted"] is True


async def test_strict_chats_refuse_unknown_chat() -> None:
    async with FakeBotApi(token=TOKEN, strict_chats=True) as api, make_bot(api) as bot:
        with pytest.raises(BadRequest, match=r"^Chat not found$"):
            await bot.send_message(CHAT, "hello")
        api.push_message(CHAT, "hi")
        assert (await bot.send_message(CHAT, "hello")).chat.first_name == "Alice"


def test_init_data_verifies_independently() -> None:
    api = FakeBotApi(token=TOKEN)
    init_data = api.mini_app_init_data(
        CHAT,
        "Ada Lovelace",
        chat_instance="-77",
        username="ada",
        extra={"chat": {"id": -77, "photo_url": "https://t.me/a"}},
    )
    fields = verify_init_data(init_data, TOKEN)
    assert fields is not None
    user = json.loads(fields["user"])
    assert user["id"] == CHAT and user["first_name"] == "Ada Lovelace"
    assert abs(int(fields["auth_date"]) - time.time()) < 5 and fields["chat_instance"] == "-77"
    assert "\\/" in fields["chat"]  # Telegram escapes slashes: the text must be hashed as is
    assert verify_init_data(init_data, "123456:OTHER") is None
    for i in (init_data.index("Ada"), init_data.index("auth_date=") + 10, len(init_data) - 1):
        tampered = init_data[:i] + ("0" if init_data[i] != "0" else "1") + init_data[i + 1 :]
        assert verify_init_data(tampered, TOKEN) is None
    assert verify_init_data(api.mini_app_init_data(1, auth_date=1700000000), TOKEN) == {
        "user": '{"id":1,"first_name":"Alice","language_code":"en","allows_write_to_pm":true}',
        "auth_date": "1700000000",
    }


def test_launch_url_carries_init_data_in_fragment() -> None:
    api = FakeBotApi(token=TOKEN)
    url = api.launch_url("http://127.0.0.1:9/call?s=abc", CHAT)
    parts = urlsplit(url)
    assert parts.query == "s=abc" and parts.fragment.startswith("tgWebAppData=")
    launch = dict(parse_qsl(parts.fragment, strict_parsing=True))
    assert launch["tgWebAppVersion"] == "9.1" and launch["tgWebAppPlatform"] == "tdesktop"
    assert verify_init_data(launch["tgWebAppData"], TOKEN) is not None
    routed = api.launch_url("https://a.example/#/s/1", CHAT, start_param="x")
    assert "?tgWebAppStartParam=x#/s/1?tgWebAppData=" in routed
    fragment = unquote(urlsplit(routed).fragment.split("tgWebAppData=")[1].split("&")[0])
    assert verify_init_data(fragment, TOKEN)["start_param"] == "x"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_sim_http_api(api: FakeBotApi) -> None:
    async with aiohttp.ClientSession(base_url=api.root) as http, make_bot(api) as bot:
        async with http.post("/sim/messages", json={"chat_id": CHAT, "text": "/call"}) as r:
            assert (await r.json())["message"]["entities"][0]["type"] == "bot_command"
        assert (await bot.get_updates(timeout=0))[0].message.text == "/call"

        async def pong_later() -> None:
            await asyncio.sleep(0.2)
            await bot.send_message(CHAT, "pong")

        sender = asyncio.create_task(pong_later())
        async with http.get(
            "/sim/sent", params={"chat_id": CHAT, "min_count": 1, "timeout": 3}
        ) as r:
            assert [m["text"] for m in (await r.json())["messages"]] == ["pong"]
        await sender
        async with http.post(
            "/sim/fail", json={"method": "getMe", "code": 429, "retry_after": 2}
        ) as r:
            assert r.status == 200
        with pytest.raises(RetryAfter):
            await bot.get_me()
        async with http.post("/sim/fail", json={"method": "*", "code": 502, "times": 5}) as r:
            assert r.status == 200
        async with http.delete("/sim/fail") as r:
            assert (await r.json())["failures"] == 0
        await bot.set_my_commands([BotCommand("call", "Call")])
        async with http.get("/sim/commands") as r:
            assert (await r.json())["commands"] == [{"command": "call", "description": "Call"}]
        async with http.get("/sim/calls", params={"method": "setMyCommands"}) as r:
            assert len((await r.json())["calls"]) == 1
        async with http.post(
            "/sim/init_data",
            json={"user_id": CHAT, "first_name": "Ada", "web_app_url": "https://a.example/"},
        ) as r:
            minted = await r.json()
        async with http.post("/sim/callback_queries", json={"chat_id": 1, "data": "x"}) as r:
            assert r.status == 404
        async with http.post("/sim/messages", json={"text": "no chat"}) as r:
            assert r.status == 400
    assert verify_init_data(minted["init_data"], TOKEN)
    assert minted["launch_url"].startswith("https://a.example/#tgWebAppData=")


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_process_mode() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fakes.telegram_sim",
        "--port",
        str(port),
        "--token",
        TOKEN,
        cwd=TESTS_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=10)
        root = f"http://127.0.0.1:{port}"
        assert line.decode().strip() == f"FakeBotApi listening on {root}"
        async with (
            aiohttp.ClientSession(base_url=root) as http,
            http.post("/sim/messages", json={"chat_id": CHAT, "text": "/call"}) as r,
        ):
            assert r.status == 200
        async with Bot(TOKEN, base_url=f"{root}/bot") as bot:
            updates = await bot.get_updates(timeout=2)
            assert [u.message.text for u in updates] == ["/call"]
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), timeout=5) in (0, -15)


async def test_files_photos_documents_voice_and_replies_through_the_client(api):
    bot = Bot(TOKEN, base_url=f"{api.root}/bot", base_file_url=f"{api.root}/file/bot")
    async with bot:
        api.push_photo(CHAT, b"\xff\xd8 a photo \xff\xd9" * 10, caption="look")
        api.push_document(CHAT, b"print(1)\n", "main.py", mime_type="text/x-python")
        api.push_document(CHAT, b"x", "huge.bin", size=25 * 1024 * 1024)
        api.push_voice(CHAT, b"OggS voice")
        photo, document, huge, voice = [u.message for u in await bot.get_updates()]
        assert photo.caption == "look" and [p.width for p in photo.photo] == [90, 1280]
        largest = await photo.photo[-1].get_file()
        assert await largest.download_as_bytearray() == b"\xff\xd8 a photo \xff\xd9" * 10
        assert largest.file_path.startswith(f"{api.root}/file/bot{TOKEN}/photos/")
        got = await document.document.get_file()
        assert document.document.file_name == "main.py"
        assert await got.download_as_bytearray() == b"print(1)\n"
        with pytest.raises(BadRequest, match=r"(?i)file is too big"):
            await huge.document.get_file()
        assert voice.voice.mime_type == "audio/ogg" and voice.voice.duration == 2
        assert await (await voice.voice.get_file()).download_as_bytearray() == b"OggS voice"
        with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
            await bot.get_file("no-such-file")

        sent = await bot.send_document(CHAT, document=b"def f():\n    pass\n", filename="code-1.py")
        assert sent.document.file_name == "code-1.py" and sent.document.file_size == 18
        assert api.sent_documents[-1]["content"] == b"def f():\n    pass\n"
        assert await (await sent.document.get_file()).download_as_bytearray() == (
            b"def f():\n    pass\n"
        )
        with pytest.raises(BadRequest, match=r"(?i)must be non-empty"):
            await bot.send_document(CHAT, document=b"", filename="empty.txt")

        first = await bot.send_message(CHAT, "recap")
        answer = await bot.send_message(CHAT, "answer", reply_to_message_id=first.message_id)
        assert answer.reply_to_message.message_id == first.message_id
        assert answer.reply_to_message.text == "recap"
        with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
            await bot.send_message(CHAT, "x", reply_to_message_id=99999)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{api.root}/file/botWRONG/photos/file_1.jpg") as resp,
    ):
        assert resp.status == 401
