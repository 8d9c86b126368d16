"""A loopback stand-in for the Telegram Bot API, faithful enough for python-telegram-bot 22.

In-process::

    async with FakeBotApi(token="123456:TEST-TOKEN") as api:
        bot = telegram.Bot(api.token, base_url=f"{api.root}/bot")
        api.push_message(4242, "/call")
        msg = await api.wait_for_message(lambda m: "call" in m["text"])

The simulated user's side (:meth:`~FakeBotApi.push_message`, :meth:`~FakeBotApi.fail`...), the
``/sim/`` HTTP routes and the fake as its own process (``python -m fakes.telegram_sim``) live in
:mod:`fakes.telegram_sim`; the wire shapes shared by both in :mod:`fakes.telegram_protocol`.
Behaviour and error texts follow the real Bot API.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from typing import Any

from aiohttp import web

from .telegram_initdata import web_app_url_error
from .telegram_protocol import (
    UPLOADS,
    ApiError,
    Call,
    Failure,
    Json,
    api_message,
    int_param,
    json_param,
    read_params,
)
from .telegram_sim import SimulatedUser, main, sim_errors

MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
"""The Bot API's getFile limit: bigger files cannot be downloaded by bots."""
_UPLOAD_METHODS = {"senddocument"}
"""Methods whose handler also gets the request's uploaded files."""


class FakeBotApi(SimulatedUser):
    """The fake Bot API server; the simulated user's side (pushes, inspection, failures) comes
    from :class:`~fakes.telegram_sim.SimulatedUser`.

    :param token: the only token accepted; any other gets 401 ``Unauthorized``.
    :param allow_http_webapp: also accept ``http://`` Web App URLs on 127.0.0.1/localhost.
    :param strict_chats: refuse sends to chats nobody wrote from (``Bad Request: chat not
        found``); :meth:`push_message` or :meth:`add_chat` make a chat known.
    :param max_poll_wait: cap on how long a ``getUpdates`` is held, in seconds.
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_http_webapp: bool = True,
        strict_chats: bool = False,
        max_poll_wait: float = 10.0,
        access_log: bool = False,
    ) -> None:
        self.token, self.host, self.port, self.root = token, host, port, ""
        self.allow_http_webapp, self.strict_chats = allow_http_webapp, strict_chats
        self.max_poll_wait, self._access_log = max_poll_wait, access_log
        bot_id = token.split(":")[0]
        self._bot_user: Json = {
            "id": int(bot_id) if bot_id.isdigit() else 7000000001,
            "is_bot": True,
            "first_name": "Bridgehost Test",
            "username": "bridgehost_test_bot",
        }
        #: What ``getMe`` answers.
        self.bot: Json = {
            **self._bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.calls: list[Call] = []
        self.commands: list[Json] = []
        self.menu_buttons: dict[int | None, Json] = {}  # chat id (None: the bot's own)
        self.callback_answers: list[Json] = []
        self.web_app_answers: list[Json] = []
        self.failures: list[Failure] = []
        #: Files on the "server" by file id (the user's uploads and the bot's documents),
        #: with their ``content``.
        self.files: dict[str, Json] = {}
        #: Documents the bot sent (``sendDocument``), as Messages plus the file's ``content``.
        self.sent_documents: list[Json] = []
        self._chats: dict[int, Json] = {}  # chat id -> Chat object
        self._next_id: dict[int, int] = {}  # chat id -> next message id
        self._messages: dict[tuple[int, int], Json] = {}  # (chat, message) -> record
        self._updates: list[Json] = []
        self._update_ids = itertools.count(1)
        self._allowed: list[str] | None = None
        self._queries: set[str] = set()  # open callback and web app query ids
        self._counter = itertools.count(1)
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> FakeBotApi:
        """Listen on ``host``/``port`` (random if 0) and set :attr:`root`."""
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[sim_errors])
        self._add_sim_routes(app.router)
        app.router.add_route("*", "/bot{token}/{method}", self._bot_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        kwargs = {} if self._access_log else {"access_log": None}
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, **kwargs)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.root = f"http://{self.host}:{self.port}"
        return self

    async def close(self) -> None:
        """Answer held polls at once, then stop listening."""
        self._closing = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotApi:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self, deadline: float) -> bool:
        """Wait for the next update/send until ``deadline`` (loop time); False once it passed."""
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0 or self._closing:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    # ---- the Bot API ---------------------------------------------------------------------
    async def _not_found(self, request: web.Request) -> web.Response:
        return ApiError("Not Found", 404).response()

    async def _bot_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return ApiError("Unauthorized", 401).response()
        params = await read_params(request)
        self.calls.append(Call(method, params))
        for failure in sorted(self.failures, key=lambda f: f.method == "*"):
            if failure.method in ("*", method.lower()):
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
                if failure.error is not None:
                    return failure.error.response()
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=500)  # never reaches the client
        handler = getattr(self, f"_m_{method.lower()}", None)
        if handler is None:
            return ApiError("Not Found", 404).response()
        try:
            if method.lower() in _UPLOAD_METHODS:
                result = await handler(params, request.get(UPLOADS, {}))
            else:
                result = await handler(params)
        except ApiError as error:
            return error.response()
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        """``GET /file/bot<token>/<file_path>``: a file's bytes, as Telegram's file server."""
        if request.match_info["token"] != self.token:
            return ApiError("Unauthorized", 401).response()
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored["file_path"] == path:
                return web.Response(body=stored["content"])
        return ApiError("Not Found", 404).response()

    async def _m_getfile(self, p: dict[str, str]) -> Json:
        if not p.get("file_id"):
            raise ApiError("Bad Request: file_id is empty")
        stored = self.files.get(p["file_id"])
        if stored is None:
            raise ApiError("Bad Request: invalid file_id")
        if stored["file_size"] > MAX_DOWNLOAD_BYTES:
            raise ApiError("Bad Request: file is too big")
        return {k: v for k, v in stored.items() if k != "content"}

    async def _m_senddocument(self, p: dict[str, str], uploads: dict[str, Any]) -> Json:
        chat_id, markup = self._bot_target(p, text=False)
        if "document" in uploads:
            name, content = uploads["document"]
        elif p.get("document") in self.files:
            stored = self.files[p["document"]]
            name, content = stored["file_path"].rsplit("/", 1)[-1], stored["content"]
        else:
            raise ApiError("Bad Request: there is no document in the request")
        if not content:
            raise ApiError("Bad Request: file must be non-empty")
        if len(p.get("caption") or "") > 1024:
            raise ApiError("Bad Request: message caption is too long")
        stored = self.add_file(content, "documents", name.rsplit(".", 1)[-1])
        message_id = self._next_id[chat_id]
        self._next_id[chat_id] += 1
        message: Json = {
            "message_id": message_id,
            "from": self._bot_user,
            "chat": self._chats[chat_id],
            "date": int(time.time()),
            "document": {
                "file_id": stored["file_id"],
                "file_unique_id": stored["file_unique_id"],
                "file_name": name,
                "file_size": stored["file_size"],
            },
        }
        if p.get("caption"):
            message["caption"] = p["caption"]
        if markup is not None:
            message["reply_markup"] = markup
        self.sent_documents.append({**message, "content": content})
        self._notify()
        return api_message(message)

    async def _m_getme(self, p: dict[str, str]) -> Json:
        return self.bot

    async def _m_deletewebhook(self, p: dict[str, str]) -> bool:
        if p.get("drop_pending_updates") in ("true", "True", "1"):
            self._updates.clear()
        return True

    async def _m_getupdates(self, p: dict[str, str]) -> list[Json]:
        if p.get("allowed_updates") not in (None, "", "null"):
            error = "Bad Request: can't parse allowed_updates JSON array"
            allowed = json_param(p, "allowed_updates", error)
            if not isinstance(allowed, list):
                raise ApiError(error)
            self._allowed = allowed or None
        offset = int_param(p, "offset") or 0
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        limit = int_param(p, "limit") or 100
        limit = limit if 0 < limit <= 100 else 100
        timeout = min(float(p.get("timeout") or 0), self.max_poll_wait)
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._updates and await self._wait_change(deadline):
            pass
        return self._updates[:limit]

    def _check_markup(self, chat_id: int, markup: Any) -> None:
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            return  # reply keyboards, remove_keyboard, force_reply: accepted as they are
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise ApiError('Bad Request: Field "inline_keyboard" must be of type Array')
        for button in itertools.chain.from_iterable(rows):
            actions = [
                k
                for k in (
                    "callback_data",
                    "url",
                    "web_app",
                    "switch_inline_query",
                    "switch_inline_query_current_chat",
                    "login_url",
                    "pay",
                    "copy_text",
                    "callback_game",
                )
                if k in button
            ]
            if not actions:
                raise ApiError("Bad Request: Text buttons are not allowed in the inline keyboard")
            if len(str(button.get("callback_data", "")).encode()) > 64:
                raise ApiError("Bad Request: BUTTON_DATA_INVALID")
            if "web_app" in button:
                if chat_id < 0:
                    raise ApiError("Bad Request: BUTTON_TYPE_INVALID")
                error = web_app_url_error(
                    str(button["web_app"].get("url", "")),
                    "inline keyboard button",
                    allow_http_loopback=self.allow_http_webapp,
                )
                if error:
                    raise ApiError(error)

    def _bot_target(self, p: dict[str, str], *, text: bool) -> tuple[int, Any]:
        """Validate chat_id, text and reply_markup of a send/edit; return chat id and markup."""
        chat_id = int_param(p, "chat_id", "Bad Request: chat_id is empty")
        assert chat_id is not None
        if text and not p.get("text"):
            raise ApiError("Bad Request: message text is empty")
        if text and len(p["text"]) > 4096:
            raise ApiError("Bad Request: message is too long")
        markup = None
        if p.get("reply_markup"):
            markup = json_param(
                p, "reply_markup", "Bad Request: can't parse reply keyboard markup JSON object"
            )
            self._check_markup(chat_id, markup)
        if chat_id not in self._chats:
            if self.strict_chats:
                raise ApiError("Bad Request: chat not found")
            self.add_chat(chat_id)
        return chat_id, markup

    def _record(self, p: dict[str, str], *, edit: bool = False) -> Json:
        """Store a sent or edited message; answer it as the API does (inline keyboards only)."""
        chat_id, markup = self._bot_target(p, text=True)
        if edit:
            record = self._messages.get((chat_id, int_param(p, "message_id") or 0))
            if record is None or record.get("deleted"):
                raise ApiError("Bad Request: message to edit not found")
            if record["from"] is not self._bot_user:
                raise ApiError("Bad Request: message can't be edited")
            if record["text"] == p["text"] and record.get("reply_markup") == markup:
                raise ApiError(
                    "Bad Request: message is not modified: specified new message "
                    "content and reply markup are exactly the same as a current "
                    "content and reply markup of the message"
                )
            record.update(edit_date=int(time.time()), text=p["text"])
        else:
            replied = self._replied(chat_id, p)
            message_id = self._next_id[chat_id]
            self._next_id[chat_id] += 1
            record = {
                "message_id": message_id,
                "from": self._bot_user,
                "chat": self._chats[chat_id],
                "date": int(time.time()),
                "text": p["text"],
            }
            if replied is not None:
                record["reply_to_message"] = replied
            self._messages[(chat_id, message_id)] = record
        record.pop("reply_markup", None)
        if markup is not None:
            record["reply_markup"] = markup
        if p.get("parse_mode"):
            record["parse_mode"] = p["parse_mode"]
        self._notify()
        return api_message(record)

    def _replied(self, chat_id: int, p: dict[str, str]) -> Json | None:
        """The message a send answers (``reply_parameters``), as the API embeds it."""
        if not p.get("reply_parameters"):
            return None
        error = "Bad Request: can't parse reply parameters JSON object"
        params = json_param(p, "reply_parameters", error)
        if not isinstance(params, dict) or not isinstance(params.get("message_id"), int):
            raise ApiError(error)
        target = self._messages.get((chat_id, params["message_id"]))
        if target is None or target.get("deleted"):
            if params.get("allow_sending_without_reply"):
                return None
            raise ApiError("Bad Request: message to be replied not found")
        return {k: v for k, v in api_message(target).items() if k != "reply_to_message"}

    async def _m_sendmessage(self, p: dict[str, str]) -> Json:
        return self._record(p)

    async def _m_editmessagetext(self, p: dict[str, str]) -> Json:
        return self._record(p, edit=True)

    async def _m_deletemessage(self, p: dict[str, str]) -> bool:
        chat_id = int_param(p, "chat_id", "Bad Request: chat_id is empty")
        record = self._messages.get((chat_id or 0, int_param(p, "message_id") or 0))
        if record is None or record.get("deleted"):
            raise ApiError("Bad Request: message to delete not found")
        record["deleted"] = True
        return True

    async def _m_sendchataction(self, p: dict[str, str]) -> bool:
        self._bot_target(p, text=False)
        return True

    async def _m_setmycommands(self, p: dict[str, str]) -> bool:
        commands = json_param(p, "commands", "Bad Request: can't parse commands JSON object")
        if not isinstance(commands, list) or not all(
            isinstance(c, dict) and {"command", "description"} <= c.keys() for c in commands
        ):
            raise ApiError("Bad Request: can't parse commands JSON object")
        self.commands = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _m_getmycommands(self, p: dict[str, str]) -> list[Json]:
        return self.commands

    async def _m_setchatmenubutton(self, p: dict[str, str]) -> bool:
        error = "Bad Request: can't parse menu button JSON object"
        button = (
            json_param(p, "menu_button", error) if p.get("menu_button") else {"type": "default"}
        )
        if not isinstance(button, dict):
            raise ApiError(error)
        if button.get("type") not in ("commands", "web_app", "default"):
            raise ApiError("Bad Request: unsupported menu button type")
        if button["type"] == "web_app":
            if not button.get("text"):
                raise ApiError("Bad Request: menu button text is empty")
            error = web_app_url_error(
                str((button.get("web_app") or {}).get("url", "")),
                "menu button",
                allow_http_loopback=self.allow_http_webapp,
            )
            if error:
                raise ApiError(error)
        chat_id = int_param(p, "chat_id")
        if "chat_id" in p and (chat_id is None or chat_id <= 0):
            raise ApiError("Bad Request: Invalid chat_id specified")
        self.menu_buttons[chat_id] = button
        return True

    async def _m_getchatmenubutton(self, p: dict[str, str]) -> Json:
        for key in (int_param(p, "chat_id"), None):  # the chat's own button, else the bot's
            button = self.menu_buttons.get(key)
            if button and button["type"] != "default":
                return button
        return {"type": "commands"}

    def _answer(self, p: dict[str, str], key: str, error: str, into: list[Json]) -> None:
        if not p.get(key):
            raise ApiError(f"Bad Request: {key} is empty")
        if p[key] not in self._queries:
            raise ApiError(error)
        self._queries.discard(p[key])
        into.append({k: (json.loads(v) if k == "result" else v) for k, v in p.items()})

    async def _m_answercallbackquery(self, p: dict[str, str]) -> bool:
        self._answer(
            p,
            "callback_query_id",
            "Bad Request: query is too old and response timeout expired or query ID is invalid",
            self.callback_answers,
        )
        return True

    async def _m_answerwebappquery(self, p: dict[str, str]) -> Json:
        json_param(p, "result", "Bad Request: can't parse inline query result JSON object")
        self._answer(p, "web_app_query_id", "Bad Request: QUERY_ID_INVALID", self.web_app_answers)
        return {"inline_message_id": f"wa-{next(self._counter)}"}


if __name__ == "__main__":  # the process lives in telegram_sim; this name still works
    main()
