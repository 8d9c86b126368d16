"""The simulated user's side of :class:`~fakes.telegram_api.FakeBotApi`, and the fake as a process.

:class:`SimulatedUser` is mixed into ``FakeBotApi``: what the user does (writes, taps buttons, opens
the Mini App), what a test inspects (sent messages, pending updates) and injected failures. The same
is reachable over HTTP under ``/sim/`` for a fake running as its own process.

As a process, from ``tests/``: ``python -m fakes.telegram_sim --port N --token T`` prints
``FakeBotApi listening on http://127.0.0.1:N`` and is driven over HTTP: ``POST /sim/messages``,
``POST /sim/callback_queries``, ``GET /sim/sent?chat_id=&min_count=&timeout=``, ``POST /sim/fail``
(``DELETE`` clears), ``GET /sim/commands``, ``GET /sim/calls?method=``, ``POST /sim/init_data``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from .telegram_initdata import append_launch_params, build_init_data
from .telegram_protocol import DESCRIPTIONS, ApiError, Call, Failure, Json, api_message


class SimulatedUser:
    """The simulated user and the test's view of the chat; mixed into ``FakeBotApi``, which owns
    the state below and the change notification."""

    token: str
    failures: list[Failure]
    commands: list[Json]
    calls: list[Call]
    _bot_user: Json
    _chats: dict[int, Json]
    _next_id: dict[int, int]
    _messages: dict[tuple[int, int], Json]
    _updates: list[Json]
    _update_ids: Iterator[int]
    _allowed: list[str] | None
    _queries: set[str]
    _counter: Iterator[int]

    def _notify(self) -> None:
        raise NotImplementedError

    async def _wait_change(self, deadline: float) -> bool:
        raise NotImplementedError

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
        message = self._user_message(chat_id, user_id, first_name, username)
        message["text"] = text
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

    def _user_message(
        self, chat_id: int, user_id: int | None, first_name: str, username: str | None
    ) -> Json:
        """A new Message from the simulated user in ``chat_id`` (no content yet)."""
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
        }
        self._next_id[chat_id] += 1
        return message

    def add_file(self, content: bytes, folder: str, suffix: str, size: int | None = None) -> Json:
        """Store a file on the "server"; returns its File fields (``file_size`` may claim more
        than ``content`` holds, to stand for a file too big to send in a test)."""
        number = next(self._counter)
        file_id = f"FILE-{number:06d}-{folder}"
        self.files[file_id] = {
            "file_id": file_id,
            "file_unique_id": f"U{number:06d}",
            "file_size": len(content) if size is None else size,
            "file_path": f"{folder}/file_{number}.{suffix}",
            "content": content,
        }
        return {k: v for k, v in self.files[file_id].items() if k != "content"}

    def _push_media(self, chat_id: int, fields: Json, caption: str | None, user_id: int | None):
        message = self._user_message(chat_id, user_id, "Alice", None)
        message.update(fields)
        if caption:
            message["caption"] = caption
        self._messages[(chat_id, message["message_id"])] = message
        return self._queue("message", message)

    def push_photo(
        self,
        chat_id: int,
        content: bytes,
        *,
        caption: str | None = None,
        user_id: int | None = None,
    ) -> Json:
        """The user sends a photo: Telegram offers it in two sizes (a thumbnail and
        ``content`` itself), smallest first."""
        thumb = self.add_file(content[: max(1, len(content) // 4)], "photos", "jpg")
        full = self.add_file(content, "photos", "jpg")
        sizes = [
            {**_file_ref(thumb), "width": 90, "height": 60},
            {**_file_ref(full), "width": 1280, "height": 853},
        ]
        return self._push_media(chat_id, {"photo": sizes}, caption, user_id)

    def push_document(
        self,
        chat_id: int,
        content: bytes,
        file_name: str,
        *,
        mime_type: str = "application/octet-stream",
        caption: str | None = None,
        size: int | None = None,
        user_id: int | None = None,
    ) -> Json:
        """The user sends a file (``size`` may claim more bytes than ``content``)."""
        stored = self.add_file(content, "documents", file_name.rsplit(".", 1)[-1], size)
        document = {**_file_ref(stored), "file_name": file_name, "mime_type": mime_type}
        return self._push_media(chat_id, {"document": document}, caption, user_id)

    def push_voice(
        self, chat_id: int, content: bytes, *, duration: int = 2, user_id: int | None = None
    ) -> Json:
        """The user sends a voice note (OGG/Opus, as Telegram clients record them)."""
        stored = self.add_file(content, "voice", "oga")
        voice = {**_file_ref(stored), "duration": duration, "mime_type": "audio/ogg"}
        return self._push_media(chat_id, {"voice": voice}, None, user_id)

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
                "message": api_message(record),
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
            description = DESCRIPTIONS.get(code, "Internal Server Error")
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
        """Init data signed with this bot's token. A ``query_id`` (or one
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
    def _add_sim_routes(self, router: web.UrlDispatcher) -> None:
        """Serve this side under ``/sim/`` (answer bad requests with :func:`sim_errors`)."""
        routes = [
            ("POST", "/sim/messages", self._sim_push),
            ("GET", "/sim/sent", self._sim_sent),
            ("POST", "/sim/callback_queries", self._sim_callback),
            ("POST", "/sim/fail", self._sim_fail),
            ("DELETE", "/sim/fail", self._sim_fail),
            ("GET", "/sim/commands", self._sim_commands),
            ("GET", "/sim/calls", self._sim_calls),
            ("POST", "/sim/init_data", self._sim_init_data),
        ]
        for verb, path, handler in routes:
            router.add_route(verb, path, handler)

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


def _file_ref(stored: Json) -> Json:
    """The fields a message's photo size, document or voice carries for a stored file."""
    return {k: stored[k] for k in ("file_id", "file_unique_id", "file_size")}


@web.middleware
async def sim_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """A bad ``/sim/`` request is answered ``400 {"error": ...}`` rather than a bare 500."""
    try:
        return await handler(request)
    except (KeyError, TypeError, ValueError) as error:
        if not request.path.startswith("/sim/"):
            raise
        return web.json_response({"error": f"{type(error).__name__}: {error}"}, status=400)


async def _serve(args: argparse.Namespace) -> None:
    from .telegram_api import FakeBotApi  # imports this module: only at run time

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
    parser = argparse.ArgumentParser(prog="python -m fakes.telegram_sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument("--https-only", action="store_true", help="refuse http Web App URLs")
    parser.add_argument("--strict-chats", action="store_true", help="unknown chat: not found")
    parser.add_argument("--max-poll-wait", type=float, default=10.0)
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
