"""The client side of the bridge's local invite socket, for ``bridgectl`` and ``bridgehost mcp``.

The socket is a Unix socket of ``bridge-telegram`` (``[invites] socket_path``, default
``{storage.root}/invites.sock``, mode 0600): whoever may open it is the bridge's own user, the
same user that owns the Codex home the MCP server runs under. Every failure becomes an
:class:`InviteClientError` whose message says what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from pydantic import BaseModel, ValidationError

from bridgehost.config import BridgeConfig
from bridgehost.protocol.invites import (
    AskRequest,
    InviteRequest,
    MessageRequest,
    Outcome,
    RecentInvites,
)

SOCKET_NAME = "invites.sock"
MAX_SOCKET_PATH = 104
"""The shortest limit on a Unix socket path among the systems we run on (macOS: 104 bytes)."""
CONNECT_TIMEOUT_S = 5.0
ANSWER_SLACK_S = 30.0


class InviteClientError(RuntimeError):
    """The bridge could not be asked, or refused the request; ``code`` says which."""

    def __init__(self, message: str, *, code: str = "bridge_unreachable") -> None:
        super().__init__(message)
        self.code = code


def socket_path(config: BridgeConfig) -> Path:
    """Where the bridge listens: ``[invites] socket_path``, else ``{storage.root}/invites.sock``."""
    configured = config.invites.socket_path
    return Path(configured) if configured else Path(config.storage.root) / SOCKET_NAME


class InviteClient:
    """``async with InviteClient(config) as bridge: await bridge.invite(request)``."""

    def __init__(self, config: BridgeConfig) -> None:
        self.path = socket_path(config)
        self._config = config
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> InviteClient:
        connector = aiohttp.UnixConnector(path=str(self.path))
        self._session = aiohttp.ClientSession(connector=connector)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, route: str, body: BaseModel | None, wait_s: float) -> Any:
        assert self._session is not None, "use 'async with InviteClient(...)'"
        if not self.path.exists():
            raise InviteClientError(
                f"bridge-telegram is not listening on {self.path}. Start it with "
                "'systemctl start bridge-telegram' (or 'bridgehost telegram') with the same "
                "config, and try again."
            )
        timeout = aiohttp.ClientTimeout(
            sock_connect=CONNECT_TIMEOUT_S, total=wait_s + ANSWER_SLACK_S
        )
        try:
            async with self._session.request(
                method,
                f"http://bridge{route}",
                json=body.model_dump(mode="json") if body is not None else None,
                timeout=timeout,
            ) as resp:
                data = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
            raise InviteClientError(
                f"bridge-telegram did not answer on {self.path} "
                f"({str(exc) or type(exc).__name__}). "
                "Check that it runs ('systemctl status bridge-telegram') and try again."
            ) from exc
        if status >= 400:
            error = data.get("error") if isinstance(data, dict) else None
            if isinstance(error, dict):
                raise InviteClientError(str(error.get("message")), code=str(error.get("code")))
            raise InviteClientError(f"bridge-telegram answered HTTP {status}.", code="bad_answer")
        return data

    async def _outcome(self, route: str, body: BaseModel, wait_s: float) -> Outcome:
        data = await self._call("POST", route, body, wait_s)
        try:
            return Outcome.model_validate(data)
        except ValidationError as exc:
            raise _malformed(exc) from None

    async def invite(self, request: InviteRequest) -> Outcome:
        """``POST /invite``."""
        wait = request.wait_s + self._config.realtime.startup_timeout_ms / 1000 + 30
        return await self._outcome("/invite", request, wait)

    async def message(self, request: MessageRequest) -> Outcome:
        """``POST /message``."""
        return await self._outcome("/message", request, 30.0)

    async def ask(self, request: AskRequest) -> Outcome:
        """``POST /ask``: waits for the answer (or the timeout)."""
        wait = request.timeout_s or self._config.invites.ask_timeout_s
        return await self._outcome("/ask", request, wait + 15)

    async def recent(self) -> RecentInvites:
        """``GET /invites``."""
        data = await self._call("GET", "/invites", None, 10.0)
        try:
            return RecentInvites.model_validate(data)
        except ValidationError as exc:
            raise _malformed(exc) from None


def _malformed(exc: ValidationError) -> InviteClientError:
    return InviteClientError(
        f"bridge-telegram's answer is not what this bridgehost expects ({exc.error_count()} "
        "problems): run the same bridgehost version for bridge-telegram and this command.",
        code="bad_answer",
    )
