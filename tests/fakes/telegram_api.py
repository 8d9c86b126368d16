"""A loopback stand-in for the Telegram Bot API, faithful enough for python-telegram-bot 22.

In-process::

    async with FakeBotApi(token="123456:TEST-TOKEN") as api:
        bot = telegram.Bot(api.token, base_url=f"{api.root}/bot")
        api.push_message(4242, "/call")
        msg = await api.wait_for_message(lambda m: "call" in m["text"])

As a process, from ``tests/``: ``python -m fakes.telegram_api --port N --token T`` prints
``FakeBotApi listening on http://127.0.0.1:N`` and is driven over HTTP: ``POST /sim/messages``,
``POST /sim/callback_queries``, ``GET /sim/sent?chat_id=&min_count=&timeout=``, ``POST /sim/fail``
(``DELETE`` clears), ``GET /sim/commands``, ``GET /sim/calls?method=``, ``POST /sim/init_data``.
Behaviour and error texts follow real Telegram as tgfake reproduces it (protocols.md §3.5-3.7).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .telegram_initdata import append_launch_params, build_init_data, web_app_url_error

Json = dict[str, Any]
_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    502: "Bad Gateway",
    403: "Forbidden: bot was blocked by the user",
}


class ApiError(Exception):
    """A Bot API refusal: ``{"ok": false, "error_code": code, "description": ...}``."""

    def __init__(self, description: str, code: int = 400, retry_after: int | None = None):
        super().__init__(description)
        self.description, self.code, self.retry_after = description, code, retry_after

    def response(self) -> web.Response:
        """The JSON envelope Telegram answers with."""
        body: Json = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.code)


@dataclass
class Call:
    """One Bot API call as received: parameters as text (objects as JSON text), like Telegram."""

    method: str
    params: dict[str, str]

    def json(self, key: str) -> Any:
        """A parameter decoded from JSON (``reply_markup``, ``commands``...)."""
        return json.loads(self.params[key])


@dataclass
class Failure:
    """The next ``times`` calls of ``method`` (``*``: any) fail with ``error``, or, when
    ``error`` is ``None``, lose their connection without an answer."""

    method: str
    error: ApiError | None
    times: int = 1


def _int(params: dict[str, str], key: str, error: str | None = None) -> int | None:
    """An integer parameter: ``None`` if missing or invalid, or ``ApiError(error)`` if given."""
    try:
        value = int(params[key])
    except (KeyError, ValueError):
        value = None
    if not value and error:
        raise ApiError(error)
    return value


def _json(params: dict[str, str], key: str, error: str) -> Any:
    try:
        return json.loads(params[key])
    except (KeyError, ValueError):
        raise ApiError(error) from None


async def _read_params(request: web.Request) -> dict[str, str]:
    """Query string plus a form, multipart or JSON body, as the Bot API reads them."""
    params = dict(request.query)
    if request.content_type == "application/json" and request.can_read_body:
        try:
            body = await request.json()
        except ValueError:
            body = None
        for key, value in (body if isinstance(body, dict) else {}).items():
            params[key] = value if isinstance(value, str) else json.dumps(value)
    elif request.can_read_body:
        for key, value in (await request.post()).items():
            params[key] = value if isinstance(value, str) else f"{value.filename} (upload)"
    return params


class FakeBotApi:
    """The fake Bot API server plus the simulated user's side (pushes, inspection, failures).

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
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[_sim_errors])
        sim = [
            ("POST", "/sim/messages", self._sim_push),
            ("GET", "/sim/sent", self._sim_sent),
            ("POST", "/sim/callback_queries", self._sim_callback),
            ("POST", "/sim/fail", self._sim_fail),
            ("DELETE", "/sim/fail", self._sim_fail),
            ("GET", "/sim/commands", self._sim_commands),
            ("GET", "/sim/calls", self._sim_calls),
            ("POST", "/sim/init_data", self._sim_init_data),
        ]
        for verb, path, handler in sim:
            app.router.add_route(verb, path, handler)
        app.router.add_route("*", "/bot{token}/{method}", self._bot_api)
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
        params = await _read_params(request)
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
            result = await handler(params)
        except ApiError as error:
            return error.response()
        return web.json_response({"ok": True, "result": result})

    async def _m_getme(self, p: dict[str, str]) -> Json:
        return self.bot

    async def _m_deletewebhook(self, p: dict[str, str]) -> bool:
        if p.get("drop_pending_updates") in ("true", "True", "1"):
            self._updates.clear()
        return True

    async def _m_getupdates(self, p: dict[str, str]) -> list[Json]:
        if p.get("allowed_updates") not in (None, "", "null"):
            error = "Bad Request: can't parse allowed_updates JSON array"
            allowed = _json(p, "allowed_updates", error)
            if not isinstance(allowed, list):
                raise ApiError(error)
            self._allowed = allowed or None
        offset = _int(p, "offset") or 0
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        limit = _int(p, "limit") or 100
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
        chat_id = _int(p, "chat_id", "Bad Request: chat_id is empty")
        assert chat_id is not None
        if text and not p.get("text"):
            raise ApiError("Bad Request: message text is empty")
        if text and len(p["text"]) > 4096:
            raise ApiError("Bad Request: message is too long")
        markup = None
        if p.get("reply_markup"):
            markup = _json(
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
            record = self._messages.get((chat_id, _int(p, "message_id") or 0))
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
            message_id = self._next_id[chat_id]
            self._next_id[chat_id] += 1
            record = {
                "message_id": message_id,
                "from": self._bot_user,
                "chat": self._chats[chat_id],
                "date": int(time.time()),
                "text": p["text"],
            }
            self._messages[(chat_id, message_id)] = record
        record.pop("reply_markup", None)
        if markup is not None:
            record["reply_markup"] = markup
        if p.get("parse_mode"):
            record["parse_mode"] = p["parse_mode"]
        self._notify()
        return _api_message(record)

    async def _m_sendmessage(self, p: dict[str, str]) -> Json:
        return self._record(p)

    async def _m_editmessagetext(self, p: dict[str, str]) -> Json:
        return self._record(p, edit=True)

    async def _m_deletemessage(self, p: dict[str, str]) -> bool:
        chat_id = _int(p, "chat_id", "Bad Request: chat_id is empty")
        record = self._messages.get((chat_id or 0, _int(p, "message_id") or 0))
        if record is None or record.get("deleted"):
            raise ApiError("Bad Request: message to delete not found")
        record["deleted"] = True
        return True

    async def _m_sendchataction(self, p: dict[str, str]) -> bool:
        self._bot_target(p, text=False)
        return True

    async def _m_setmycommands(self, p: dict[str, str]) -> bool:
        commands = _json(p, "commands", "Bad Request: can't parse commands JSON object")
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
        button = _json(p, "menu_button", error) if p.get("menu_button") else {"type": "default"}
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
        chat_id = _int(p, "chat_id")
        if "chat_id" in p and (chat_id is None or chat_id <= 0):
            raise ApiError("Bad Request: Invalid chat_id specified")
        self.menu_buttons[chat_id] = button
        return True

    async def _m_getchatmenubutton(self, p: dict[str, str]) -> Json:
        for key in (_int(p, "chat_id"), None):  # the chat's own button, else the bot's
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
        _json(p, "result", "Bad Request: can't parse inline query result JSON object")
        self._answer(p, "web_app_query_id", "Bad Request: QUERY_ID_INVALID", self.web_app_answers)
        return {"inline_message_id": f"wa-{next(self._counter)}"}

    # ---- the simulated user's side -------------------------------------------------------
    def add_chat(
        self, chat_id: int, *, first_name: str | None = None, username: str | None = None
    ) -> Json:
        """Make a chat known: private for a positive id, else a group. Returns the Chat."""
        chat = self._chats.setdefault(
            chat_id,
            {"id": chat_id, "type": "private"}
            if chat_id > 0
            else {"id": chat_id, "type": "group", "title": "Fake group"},
        )
        self._next_id.setdefault(chat_id, 1)
        if chat_id > 0:
            chat.update(
                {
                    k: v
                    for k, v in (("first_name", first_name), ("username", username))
                    if v is not None
                }
            )
        return chat

    def _queue(self, kind: str, payload: Json) -> Json:
        update = {"update_id": next(self._update_ids), kind: payload}
        if self._allowed is None or kind in self._allowed:
            self._updates.append(update)
            self._notify()
        return update

    def push_message(
        self,
        chat_id: int,
        text: str,
        user_id: int | None = None,
        *,
        first_name: str = "Alice",
        username: str | None = None,
    ) -> Json:
        """The user writes ``text`` in ``chat_id``; returns the queued ``message`` Update.

        A text starting with ``/`` carries a ``bot_command`` entity so ``CommandHandler``
        matches. ``user_id`` defaults to ``chat_id`` (a private chat's id is the user's id).
        """
        user = {
            "id": user_id or (chat_id if chat_id > 0 else 4242),
            "is_bot": False,
            "first_name": first_name,
        }
        if username:
            user["username"] = username
        chat = self.add_chat(chat_id, first_name=first_name, username=username)
        message: Json = {
            "message_id": self._next_id[chat_id],
            "from": user,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        self._next_id[chat_id] += 1
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [
                {
                    "type": "bot_command",
                    "offset": 0,
                    "length": len(command.encode("utf-16-le")) // 2,
                }
            ]
        self._messages[(chat_id, message["message_id"])] = message
        return self._queue("message", message)

    def push_callback_query(
        self,
        chat_id: int,
        data: str,
        message_id: int | None = None,
        user_id: int | None = None,
        *,
        first_name: str = "Alice",
    ) -> Json:
        """The user taps a callback button under the bot's message ``message_id`` (default:
        the newest with an inline keyboard); returns the ``callback_query`` Update."""
        if message_id is None:
            message_id = max(
                (
                    m
                    for (c, m), r in self._messages.items()
                    if c == chat_id and "inline_keyboard" in (r.get("reply_markup") or {})
                ),
                default=0,
            )
        record = self._messages.get((chat_id, message_id))
        if record is None:
            raise LookupError(f"chat {chat_id} has no message {message_id} to tap")
        query_id = str(next(self._counter) * 1000003)
        self._queries.add(query_id)
        return self._queue(
            "callback_query",
            {
                "id": query_id,
                "chat_instance": str(chat_id),
                "data": data,
                "message": _api_message(record),
                "from": {"id": user_id or chat_id, "is_bot": False, "first_name": first_name},
            },
        )

    def sent_messages(self, chat_id: int | None = None) -> list[Json]:
        """What the bot sent, oldest first: Messages with any ``reply_markup``, ``parse_mode``
        and, once deleted, ``"deleted": True``."""
        return [
            dict(r)
            for (c, _), r in self._messages.items()
            if r["from"] is self._bot_user and chat_id in (None, c)
        ]

    async def wait_for_message(
        self, predicate: Callable[[Json], bool] | None = None, timeout: float = 5.0
    ) -> Json:
        """The first sent message (already sent ones included) matching ``predicate``;
        ``TimeoutError`` after ``timeout`` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for message in self.sent_messages():
                if predicate is None or predicate(message):
                    return message
            if not await self._wait_change(deadline):
                raise TimeoutError(
                    f"no matching message within {timeout}s; "
                    f"sent: {[m['text'] for m in self.sent_messages()]}"
                )

    def fail(
        self,
        method: str,
        *,
        code: int = 400,
        description: str | None = None,
        retry_after: int | None = None,
        network: bool = False,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (``"*"``: any) fail: with HTTP
        ``code`` and Telegram's text for it (429 with ``retry_after``: ``Too Many Requests:
        retry after N``), or with the connection dropped when ``network``."""
        if description is None and code == 429:
            description = "Too Many Requests" + (f": retry after {retry_after}" * bool(retry_after))
        elif description is None:
            description = _DESCRIPTIONS.get(code, "Internal Server Error")
        error = None if network else ApiError(description, code, retry_after)
        self.failures.append(Failure(method if method == "*" else method.lower(), error, times))

    def fail_rate_limit(self, method: str, retry_after: int = 3, times: int = 1) -> None:
        """429 ``Too Many Requests: retry after N`` with ``parameters.retry_after``."""
        self.fail(method, code=429, retry_after=retry_after, times=times)

    def fail_blocked(self, method: str, times: int = 1) -> None:
        """403 ``Forbidden: bot was blocked by the user``."""
        self.fail(method, code=403, times=times)

    def fail_bad_request(self, method: str, description: str, times: int = 1) -> None:
        """400 with ``description`` (give Telegram's full text, ``Bad Request: …``)."""
        self.fail(method, code=400, description=description, times=times)

    def fail_network(self, method: str, times: int = 1) -> None:
        """Drop the connection without an answer."""
        self.fail(method, network=True, times=times)

    def mini_app_init_data(
        self,
        user_id: int,
        first_name: str = "Alice",
        *,
        auth_date: int | None = None,
        chat_instance: str | None = None,
        query_id: str | None = None,
        extra: dict[str, Any] | None = None,
        **user: Any,
    ) -> str:
        """Init data signed with this bot's token (protocols.md §3.3). A ``query_id`` (or one
        in ``extra``) becomes answerable with ``answerWebAppQuery``. ``user``: ``username``,
        ``last_name``, ``language_code``."""
        query = query_id or (extra or {}).get("query_id")
        if query:
            self._queries.add(str(query))
        return build_init_data(
            self.token,
            user_id,
            first_name=first_name,
            auth_date=auth_date,
            chat_instance=chat_instance,
            query_id=query_id,
            extra=extra,
            **user,
        )

    def launch_url(
        self,
        web_app_url: str,
        user_id: int,
        first_name: str = "Alice",
        *,
        version: str = "9.1",
        platform: str = "tdesktop",
        start_param: str | None = None,
        **init: Any,
    ) -> str:
        """``web_app_url`` as Telegram opens it: ``#tgWebAppData=…&tgWebAppVersion=…&…``.
        ``init`` goes to :meth:`mini_app_init_data`."""
        if start_param is not None:
            init["extra"] = {**(init.get("extra") or {}), "start_param": start_param}
        data = self.mini_app_init_data(user_id, first_name, **init)
        return append_launch_params(
            web_app_url, data, version=version, platform=platform, start_param=start_param
        )

    @property
    def pending_updates(self) -> list[Json]:
        """Updates not yet confirmed by a ``getUpdates`` offset."""
        return list(self._updates)

    # ---- /sim/ over HTTP -----------------------------------------------------------------
    async def _sim_push(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(
            self.push_message(
                int(body["chat_id"]),
                body["text"],
                body.get("user_id"),
                first_name=body.get("first_name", "Alice"),
                username=body.get("username"),
            )
        )

    async def _sim_callback(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            update = self.push_callback_query(
                int(body["chat_id"]), body["data"], body.get("message_id"), body.get("user_id")
            )
        except LookupError as error:
            return web.json_response({"error": str(error)}, status=404)
        return web.json_response(update)

    async def _sim_sent(self, request: web.Request) -> web.Response:
        chat_id = int(request.query["chat_id"]) if "chat_id" in request.query else None
        min_count = int(request.query.get("min_count", 0))
        timeout = min(float(request.query.get("timeout", 0)), 30.0)
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.sent_messages(chat_id)) < min_count and await self._wait_change(deadline):
            pass
        return web.json_response({"messages": self.sent_messages(chat_id)})

    async def _sim_fail(self, request: web.Request) -> web.Response:
        if request.method == "DELETE":
            self.failures.clear()
        else:
            body = await request.json()
            self.fail(
                body.get("method", "*"),
                code=int(body.get("code", 400)),
                description=body.get("description"),
                retry_after=body.get("retry_after"),
                network=bool(body.get("network")),
                times=int(body.get("times", 1)),
            )
        return web.json_response({"ok": True, "failures": len(self.failures)})

    async def _sim_commands(self, request: web.Request) -> web.Response:
        return web.json_response({"commands": self.commands})

    async def _sim_calls(self, request: web.Request) -> web.Response:
        wanted = request.query.get("method", "").lower()
        return web.json_response(
            {
                "calls": [
                    {"method": c.method, "params": c.params}
                    for c in self.calls
                    if wanted in ("", c.method.lower())
                ]
            }
        )

    async def _sim_init_data(self, request: web.Request) -> web.Response:
        body = await request.json()
        url = body.pop("web_app_url", None)
        init_data = self.mini_app_init_data(**body)
        answer = {"init_data": init_data}
        if url:
            answer["launch_url"] = append_launch_params(url, init_data)
        return web.json_response(answer)


@web.middleware
async def _sim_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """A bad ``/sim/`` request is answered ``400 {"error": ...}`` rather than a bare 500."""
    try:
        return await handler(request)
    except (KeyError, TypeError, ValueError) as error:
        if not request.path.startswith("/sim/"):
            raise
        return web.json_response({"error": f"{type(error).__name__}: {error}"}, status=400)


def _api_message(record: Json) -> Json:
    """A stored message as the Bot API shows it (no test-only keys, inline keyboards only)."""
    message = {k: v for k, v in record.items() if k not in ("parse_mode", "deleted")}
    if "inline_keyboard" not in (message.get("reply_markup") or {}):
        message.pop("reply_markup", None)
    return message


async def _serve(args: argparse.Namespace) -> None:
    api = FakeBotApi(
        args.token,
        host=args.host,
        port=args.port,
        access_log=True,
        allow_http_webapp=not args.https_only,
        strict_chats=args.strict_chats,
        max_poll_wait=args.max_poll_wait,
    )
    async with api:
        print(f"FakeBotApi listening on {api.root}", flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Run the fake as its own process until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m fakes.telegram_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument("--https-only", action="store_true", help="refuse http Web App URLs")
    parser.add_argument("--strict-chats", action="store_true", help="unknown chat: not found")
    parser.add_argument("--max-poll-wait", type=float, default=10.0)
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
