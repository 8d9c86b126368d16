"""The bridge's local invite socket: a small HTTP API on a Unix socket (mode 0600).

``bridgectl call invite`` and ``bridgehost mcp`` reach the bridge here (see
:mod:`bridgehost.invites.client` for the routes and :mod:`bridgehost.protocol.invites` for the
bodies); each request goes to the daemon's :class:`~bridgehost.telegram.invites.InviteDesk`.
Bad requests get ``{"error": {"code", "message"}}`` with a 400, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from bridgehost.basics import ensure_private_dir
from bridgehost.invites.client import MAX_SOCKET_PATH
from bridgehost.protocol.invites import AskRequest, InviteRequest, MessageRequest
from bridgehost.telegram.invites import InviteDesk

log = structlog.get_logger("bridgehost.telegram.invite_socket")

MAX_BODY = 16 * 1024
M = TypeVar("M", bound=BaseModel)


class InviteSocketError(RuntimeError):
    """The socket cannot be opened; the message names the fix."""


def _error(code: str, message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )


async def _body(request: web.Request, model: type[M]) -> M | web.Response:
    try:
        data = json.loads(await request.read() or b"null")
    except ValueError:
        return _error("bad_json", "The request body is not JSON; send one JSON object.")
    if not isinstance(data, dict):
        return _error("bad_request", "The request body must be one JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        return _error("bad_request", f"Invalid request: {_problems(exc)}. Fix those fields.")


def build_app(desk: InviteDesk) -> web.Application:
    """The routes, bound to ``desk``."""

    def route(
        model: type[BaseModel], handle: Callable[[Any], Awaitable[BaseModel]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            body = await _body(request, model)
            if isinstance(body, web.Response):
                return body
            outcome = await handle(body)
            return web.json_response(outcome.model_dump(mode="json"))

        return handler

    async def recent(_request: web.Request) -> web.Response:
        return web.json_response(desk.recent().model_dump(mode="json"))

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/invite", route(InviteRequest, desk.invite))
    app.router.add_post("/message", route(MessageRequest, desk.message))
    app.router.add_post("/ask", route(AskRequest, desk.ask))
    app.router.add_get("/invites", recent)
    return app


class InviteSocket:
    """The listening socket; ``await start()``, ``await close()``."""

    def __init__(self, desk: InviteDesk, path: Path) -> None:
        self.desk, self.path = desk, path
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on :attr:`path` (replacing a stale socket file)."""
        if len(os.fsencode(self.path)) >= MAX_SOCKET_PATH:
            raise InviteSocketError(
                f"the invite socket path {self.path} is too long for a Unix socket; set a "
                "shorter [invites] socket_path"
            )
        ensure_private_dir(self.path.parent)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._runner = web.AppRunner(build_app(self.desk), handle_signals=False, access_log=None)
        await self._runner.setup()
        old = os.umask(0o177)
        try:
            await web.UnixSite(self._runner, str(self.path)).start()
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        log.info("invite socket listening", path=str(self.path))

    async def close(self) -> None:
        """Stop listening and remove the socket file."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
