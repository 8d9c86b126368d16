"""An asyncio JSON-RPC client for ``codex app-server``.

The protocol is JSON-RPC 2.0 without the ``"jsonrpc"`` member: requests ``{id, method,
params}`` (``params`` is required, even empty), responses ``{id, result|error}``, notifications
``{method, params}``, and server-to-client requests (approvals) that we must answer. A malformed
message gets no answer at all, so every request here is bounded by a timeout.

:func:`open_app_server` picks the transport: the control socket of a running server when the
thread we want is loaded there (that server owns the thread's writer lock, and the user sees our
turn live), otherwise a private ``codex app-server`` child on stdio, closed as soon as we are done.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Self

import structlog

from bridgehost.codex._errors import CodexError, rpc_error, startup_problem
from bridgehost.codex._subscription import Subscription
from bridgehost.codex._transport import (
    SocketTransport,
    StdioTransport,
    Transport,
    resolve_binary,
)

log = structlog.get_logger("bridgehost.codex")

CLIENT_NAME = "bridgehost"
_NOT_FOR_CODEX = (
    "TELEGRAM_BOT_TOKEN",
    "REALTIME_CONTROL_SECRET",
    "NOTIFY_SOCKET",
    "WATCHDOG_PID",
    "WATCHDOG_USEC",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
)
"""Our own secrets and systemd's per-service variables stay out of the child's environment."""
_QUIET = (
    "item/agentMessage/delta",
    "item/reasoning/textDelta",
    "item/reasoning/summaryTextDelta",
    "item/commandExecution/outputDelta",
)


def control_socket_path(home: Path | str) -> Path:
    """Where a running app-server (daemon, shared server, desktop) listens for this home."""
    return Path(home) / "app-server-control" / "app-server-control.sock"


class AppServerClient:
    """One connection to ``codex app-server``; build it with :meth:`spawn` or :meth:`connect`."""

    quiet_methods: tuple[str, ...] = _QUIET
    """Notifications this connection opts out of (subclasses that stream answers keep some)."""

    def __init__(
        self, transport: Transport, *, home: Path | str, timeout: float, close_grace_s: float = 3.0
    ) -> None:
        self._transport = transport
        self.close_grace_s = close_grace_s
        self.codex_home = Path(home)
        self.timeout = timeout
        self.server_info: dict[str, Any] = {}
        self.closed_reason: str | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._subscriptions: set[Subscription] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._stopping: asyncio.Future[None] | None = None
        self._reader = asyncio.create_task(self._read_loop())

    @property
    def transport(self) -> Literal["stdio", "socket"]:
        """``stdio`` for a private child, ``socket`` for a running server's control socket."""
        return self._transport.kind

    @property
    def pid(self) -> int | None:
        """The child's pid (stdio only; the npm wrapper's pid when that is the binary)."""
        return self._transport.pid

    @classmethod
    async def spawn(
        cls,
        binary: str = "codex",
        home: Path | str | None = None,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
        close_grace_s: float = 3.0,
    ) -> Self:
        """Start ``binary app-server [args]`` with ``CODEX_HOME=home`` and initialize it.

        The child inherits our environment (plus ``env``) except our own secrets and systemd's
        per-service variables; it runs in a session of its own.

        :param close_grace_s: how long :meth:`close` waits after stdin EOF, then after SIGTERM.
        """
        resolve_binary(binary)  # an uninstalled codex is the first thing to fix
        home = Path(home or os.environ.get("CODEX_HOME") or "~/.codex").expanduser()
        if not home.is_dir():
            raise CodexError(
                f"Codex home {home} does not exist: run `codex login` once "
                "(it creates it) or set [codex] home"
            )
        inherited = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_CODEX}
        full_env = {**inherited, **(env or {}), "CODEX_HOME": str(home)}
        transport = await StdioTransport.start(binary, ["app-server", *args], env=full_env, cwd=cwd)
        return await cls._ready(transport, home, timeout, close_grace_s)

    @classmethod
    async def connect(
        cls, socket_path: Path | str, *, home: Path | str, timeout: float = 30.0
    ) -> Self:
        """Connect to a running server's control socket and initialize the connection."""
        transport = await SocketTransport.connect(Path(socket_path), timeout)
        return await cls._ready(transport, Path(home), timeout)

    @classmethod
    async def _ready(
        cls, transport: Transport, home: Path, timeout: float, close_grace_s: float = 3.0
    ) -> Self:
        client = cls(transport, home=home, timeout=timeout, close_grace_s=close_grace_s)
        try:
            client.server_info = await client.request(
                "initialize",
                {
                    "clientInfo": {
                        "name": CLIENT_NAME,
                        "title": "bridgehost",
                        "version": _version(),
                    },
                    "capabilities": {
                        "experimentalApi": False,
                        "requestAttestation": False,
                        "optOutNotificationMethods": list(cls.quiet_methods),
                    },
                },
            )
            await client.notify("initialized")
        except BaseException:
            await client.close()
            raise
        log.debug("codex.connected", transport=transport.kind, pid=transport.pid)
        return client

    async def request(
        self, method: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Send a request and return its ``result``; CodexError on error or timeout."""
        if self.closed_reason is not None:
            raise CodexError(self.closed_reason, method=method)
        rid = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        limit = self.timeout if timeout is None else timeout
        try:
            await self._send({"id": rid, "method": method, "params": dict(params or {})})
            async with asyncio.timeout(limit):
                response = await future
        except TimeoutError:
            raise CodexError(
                f"codex app-server did not answer {method} within {limit:g} s: check that "
                "`codex app-server` runs for this CODEX_HOME, or raise [codex] "
                "app_server_timeout_s",
                method=method,
            ) from None
        finally:
            self._pending.pop(rid, None)
        if "error" in response:
            error = response["error"] if isinstance(response["error"], dict) else {}
            raise rpc_error(method, error, params, self.codex_home)
        return response.get("result")

    async def notify(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        """Send a notification (no answer expected)."""
        msg: dict[str, Any] = {"method": method}
        if params is not None:
            msg["params"] = dict(params)
        await self._send(msg)

    def subscribe(
        self, methods: Iterable[str] | None = None, *, maxsize: int = 1000
    ) -> Subscription:
        """Receive notifications (all, or only ``methods``) from now on."""
        sub = Subscription(self, frozenset(methods) if methods is not None else None, maxsize)
        if self.closed_reason is not None:
            sub._offer(None)
        self._subscriptions.add(sub)
        return sub

    async def _send(self, msg: dict[str, Any]) -> None:
        try:
            await self._transport.send(json.dumps(msg, separators=(",", ":")))
        except OSError as exc:  # broken pipe: the child is gone; let the reader say why
            await asyncio.wait({self._reader}, timeout=2.0)
            raise CodexError(self.closed_reason or self._transport.describe_exit()) from exc

    async def _read_loop(self) -> None:
        reason = None
        try:
            while (raw := await self._transport.recv()) is not None:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    log.warning("codex.bad_message", sample=raw[:200])
                    continue
                if isinstance(msg, dict):
                    self._dispatch(msg)
            if isinstance(self._transport, StdioTransport):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._transport.proc.wait(), 1.0)
                await asyncio.sleep(0.05)  # let the last stderr lines arrive
            reason = self._transport.describe_exit()
            if isinstance(self._transport, StdioTransport):
                hint = startup_problem("\n".join(self._transport.stderr_tail), self.codex_home)
                reason = f"{hint} ({reason})" if hint else reason
        except Exception as exc:  # a transport failure ends the connection, never the loop
            reason = f"codex app-server connection failed: {exc}"
        finally:
            self._lost(reason or "codex app-server connection closed")

    def _dispatch(self, msg: dict[str, Any]) -> None:
        if "id" in msg and ("result" in msg or "error" in msg):
            future = self._pending.get(msg["id"]) if isinstance(msg["id"], int) else None
            if future is not None and not future.done():
                future.set_result(msg)
        elif "id" in msg and "method" in msg:
            task = asyncio.create_task(self._answer(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif "method" in msg:
            for sub in list(self._subscriptions):
                sub._offer(msg)

    async def _answer(self, msg: dict[str, Any]) -> None:
        """Decline what the server asks of us: nobody is there to approve anything."""
        method = str(msg["method"])
        if method.endswith("requestApproval"):
            reply: dict[str, Any] = {"id": msg["id"], "result": {"decision": "decline"}}
        elif method in ("execCommandApproval", "applyPatchApproval"):
            reply = {"id": msg["id"], "result": {"decision": "abort"}}
        else:
            reply = {
                "id": msg["id"],
                "error": {"code": -32601, "message": f"bridgehost does not handle {method}"},
            }
        log.info("codex.server_request_declined", method=method)
        with contextlib.suppress(CodexError, OSError):
            await self._send(reply)

    def _lost(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        for future in self._pending.values():
            if not future.done():
                future.set_exception(CodexError(self.closed_reason))
        for sub in list(self._subscriptions):
            sub._offer(None)

    async def close(self) -> None:
        """Close the connection; a private child is stopped (EOF, SIGTERM, SIGKILL; no orphan).

        Closing a private app-server interrupts a turn that is still running in it.
        """
        if self._closing:
            return
        self._closing = True
        # shielded: a cancelled caller must not leave the child running
        self._stopping = asyncio.ensure_future(self._transport.close(self.close_grace_s))
        try:
            await asyncio.shield(self._stopping)
        finally:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            for task in list(self._tasks):
                task.cancel()
            self._lost("the codex app-server client was closed")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _version() -> str:
    from bridgehost import __version__

    return __version__


async def loaded_thread_ids(client: AppServerClient) -> list[str]:
    """Ids of the threads loaded in that server (``thread/loaded/list``, a few pages at most)."""
    ids: list[str] = []
    cursor = None
    for _ in range(10):
        page = await client.request("thread/loaded/list", {"cursor": cursor} if cursor else {})
        ids.extend(str(i) for i in page.get("data") or [])
        cursor = page.get("nextCursor")
        if not cursor:
            break
    return ids


async def login_problem(client: AppServerClient) -> str | None:
    """A sentence with the fix when Codex needs an OpenAI login it does not have, else None."""
    account = await client.request("account/read", {})
    if account.get("requiresOpenaiAuth") and not account.get("account"):
        return (
            f"Codex is not logged in (CODEX_HOME={client.codex_home}): run `codex login`, "
            "or configure a model provider with its own API key"
        )
    return None


async def open_app_server(
    config: Any,
    *,
    thread_id: str | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    prefer_socket: bool = True,
) -> AppServerClient:
    """Connect as ``config`` (a :class:`bridgehost.config.CodexConfig`) says.

    Uses the control socket under ``[codex] home`` when a server answers there and either no
    ``thread_id`` is given or that thread is loaded there; otherwise spawns ``[codex] binary``.
    """
    home = Path(config.home)
    timeout = float(config.app_server_timeout_s)
    sock = control_socket_path(home)
    if prefer_socket and sock.exists():
        try:
            client = await AppServerClient.connect(sock, home=home, timeout=timeout)
        except CodexError as exc:
            log.info("codex.socket_unusable", path=str(sock), error=str(exc))
        else:
            try:
                if thread_id is None or thread_id in await loaded_thread_ids(client):
                    return client
            except CodexError as exc:
                log.info("codex.socket_unusable", path=str(sock), error=str(exc))
            await client.close()
    return await AppServerClient.spawn(
        config.binary, home, args=args, env=env, cwd=cwd, timeout=timeout
    )
