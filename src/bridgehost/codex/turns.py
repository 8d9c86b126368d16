"""Run turns in Codex threads over one long-lived ``codex app-server`` connection.

:class:`TurnRunner` holds one connection (opened on first use, reopened after it is lost) and
runs one turn at a time per thread: a turn asked for while another runs in the same thread waits
in line (first come, first served). While a turn runs, its :class:`TurnEvents` get the streamed
answer (``item/agentMessage/delta``) and every approval the server asks for
(``item/commandExecution/requestApproval``, ``item/fileChange/requestApproval``); the decision
goes back to the server as ``accept`` or ``decline``.

A turn that cannot finish because the connection ended raises :class:`TurnLost` (a
:class:`~bridgehost.codex.CodexError`): the caller keeps its input and may try again.
:meth:`TurnRunner.find_turn` finds an earlier turn by the client message id given to
:meth:`TurnRunner.run`, so a retry after a restart can pick up an answer that already exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog

from bridgehost.codex._errors import CodexError, CodexThreadNotFound, describe_turn_error
from bridgehost.codex.appserver import AppServerClient, control_socket_path, loaded_thread_ids
from bridgehost.codex.threads import item_text, iter_turns

log = structlog.get_logger("bridgehost.codex.turns")

Decision = Literal["approve", "deny"]
TurnStatus = Literal["completed", "interrupted", "failed"]
Sandbox = Literal["read-only", "workspace-write", "danger-full-access"]
ApprovalPolicy = Literal["untrusted", "on-request", "never"]

APPROVAL_METHODS = {
    "item/commandExecution/requestApproval": "command",
    "item/fileChange/requestApproval": "patch",
}
"""Server requests that ask the user to approve something, and what each is about."""
FIND_TURNS = 50
"""How many of a thread's newest turns :meth:`TurnRunner.find_turn` searches."""


class TurnLost(CodexError):
    """The connection to ``codex app-server`` ended before the turn finished."""


@dataclass(frozen=True, slots=True)
class TurnInput:
    """One input item of a turn: text, or an image file on this machine."""

    kind: Literal["text", "image"]
    text: str = ""
    path: str | None = None

    @classmethod
    def of_text(cls, text: str) -> TurnInput:
        """A text item."""
        return cls("text", text=text)

    @classmethod
    def of_image(cls, path: Path | str) -> TurnInput:
        """An image item (a local file Codex reads)."""
        return cls("image", path=str(path))

    def wire(self) -> dict[str, Any]:
        """The ``UserInput`` object of ``turn/start``."""
        if self.kind == "image":
            return {"type": "localImage", "path": self.path}
        return {"type": "text", "text": self.text, "text_elements": []}


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """Codex asks to run a command or apply a patch.

    :param kind: ``command`` or ``patch``.
    :param summary: what a person reads: the command line, or the patch's reason.
    :param reason: why Codex asks, if it said.
    """

    kind: Literal["command", "patch"]
    thread_id: str
    turn_id: str
    summary: str
    reason: str | None = None
    cwd: str | None = None


class TurnEvents(Protocol):
    """What a running turn tells its caller."""

    async def on_delta(self, text: str) -> None:
        """A newly streamed piece of the agent's answer."""

    async def on_approval(self, request: ApprovalRequest) -> Decision:
        """Approve or deny; the answer goes back to Codex."""


class SilentEvents:
    """Events that ignore the stream and deny every approval."""

    async def on_delta(self, text: str) -> None:
        """Ignored."""

    async def on_approval(self, request: ApprovalRequest) -> Decision:
        """Nobody is asked: deny."""
        return "deny"


@dataclass(frozen=True, slots=True)
class TurnResult:
    """How a turn ended.

    :param text: the agent's final answer ("" when it gave none).
    :param error: a sentence with the fix when the turn failed.
    """

    thread_id: str
    turn_id: str
    status: TurnStatus
    text: str
    error: str | None = None


@dataclass(slots=True)
class RunningTurn:
    """A turn in progress (for ``/status`` and ``/stop``)."""

    thread_id: str
    turn_id: str | None = None
    started: float = field(default_factory=time.monotonic)
    #: The ``client_message_id`` given to :meth:`TurnRunner.run`: whose turn this is.
    client_message_id: str | None = None

    @property
    def age_s(self) -> float:
        """Seconds since the turn was asked for."""
        return time.monotonic() - self.started


class _StreamingClient(AppServerClient):
    """An app-server connection that keeps answer deltas and hands approvals to the runner."""

    quiet_methods = (
        "item/reasoning/textDelta",
        "item/reasoning/summaryTextDelta",
        "item/commandExecution/outputDelta",
    )
    approver: Callable[[str, dict[str, Any]], Awaitable[Decision]] | None = None

    async def _answer(self, msg: dict[str, Any]) -> None:
        method = str(msg.get("method"))
        approver = self.approver
        if method not in APPROVAL_METHODS or approver is None:
            await super()._answer(msg)
            return
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        try:
            decision = await approver(method, params or {})
        except Exception as exc:  # a failing approver denies; the turn goes on
            log.warning("codex.approval_failed", method=method, error=str(exc))
            decision = "deny"
        wire = "accept" if decision == "approve" else "decline"
        with contextlib.suppress(CodexError, OSError):
            await self._send({"id": msg["id"], "result": {"decision": wire}})


Connector = Callable[[type[AppServerClient]], Awaitable[AppServerClient]]
"""Opens a connection of the given client class (see :func:`config_connector`)."""


def config_connector(config: Any) -> Connector:
    """Connect as ``config`` (a ``CodexConfig``) says: the control socket of a running server
    under ``[codex] home`` when one answers, else a private ``[codex] binary app-server``."""

    async def connect(cls: type[AppServerClient]) -> AppServerClient:
        home = Path(config.home)
        timeout = float(config.app_server_timeout_s)
        sock = control_socket_path(home)
        if sock.exists():
            try:
                return await cls.connect(sock, home=home, timeout=timeout)
            except CodexError as exc:
                log.info("codex.socket_unusable", path=str(sock), error=str(exc))
        return await cls.spawn(config.binary, home, timeout=timeout)

    return connect


def _approval(method: str, params: dict[str, Any]) -> ApprovalRequest:
    kind: Literal["command", "patch"] = (
        "command" if APPROVAL_METHODS[method] == "command" else "patch"
    )
    reason = params.get("reason") or None
    if kind == "command":
        summary = str(params.get("command") or "(a command)")
    else:
        summary = str(reason or "apply a patch")
    return ApprovalRequest(
        kind=kind,
        thread_id=str(params.get("threadId") or ""),
        turn_id=str(params.get("turnId") or ""),
        summary=summary,
        reason=str(reason) if reason else None,
        cwd=str(params["cwd"]) if params.get("cwd") else None,
    )


def final_text(turn: dict[str, Any]) -> str:
    """The agent's final answer in a ``Turn`` object (its final-phase agent messages)."""
    texts = [
        item_text(item)
        for item in turn.get("items") or []
        if item.get("type") == "agentMessage" and item.get("phase") in (None, "final_answer")
    ]
    return "\n\n".join(t for t in texts if t)


class TurnRunner:
    """Turns in Codex threads, one at a time per thread, over one connection.

    :param connect: opens the connection (default: :func:`config_connector` of ``config``).
    :param turn_timeout_s: the longest a turn may run before it is interrupted.
    """

    def __init__(
        self,
        connect: Connector,
        *,
        turn_timeout_s: float = 1800.0,
    ) -> None:
        self._connect = connect
        self.turn_timeout_s = turn_timeout_s
        self._client: _StreamingClient | None = None
        self._opening = asyncio.Lock()
        self._loaded: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._running: dict[str, RunningTurn] = {}
        self._events: dict[str, TurnEvents] = {}

    @classmethod
    def for_config(cls, config: Any) -> TurnRunner:
        """A runner for ``config`` (a ``CodexConfig``)."""
        return cls(config_connector(config))

    async def client(self) -> AppServerClient:
        """The open connection (opened, or reopened after it was lost, on demand)."""
        async with self._opening:
            if self._client is None or self._client.closed_reason is not None:
                if self._client is not None:
                    with contextlib.suppress(Exception):
                        await self._client.close()
                self._loaded.clear()
                client = await self._connect(_StreamingClient)
                assert isinstance(client, _StreamingClient)
                client.approver = self._approve
                self._client = client
            return self._client

    def running(self, thread_id: str) -> RunningTurn | None:
        """The turn running (or being started) in ``thread_id``, if any."""
        return self._running.get(thread_id)

    def waiting(self, thread_id: str) -> int:
        """How many turns wait in line behind the running one."""
        lock = self._locks.get(thread_id)
        waiters = getattr(lock, "_waiters", None) if lock else None
        return len(waiters) if waiters else 0

    async def start_thread(self, cwd: str | None = None) -> str:
        """A new thread (in ``cwd``, default the server's); returns its id."""
        client = await self.client()
        params: dict[str, Any] = {"cwd": cwd} if cwd else {}
        thread = (await client.request("thread/start", params))["thread"]
        self._loaded.add(str(thread["id"]))
        return str(thread["id"])

    async def thread_cwd(self, thread_id: str) -> str | None:
        """The working directory of a thread, if it has one."""
        client = await self.client()
        thread = (await client.request("thread/read", {"threadId": thread_id}))["thread"]
        return str(thread.get("cwd")) if thread.get("cwd") else None

    async def _ensure_loaded(self, client: AppServerClient, thread_id: str) -> None:
        if thread_id in self._loaded:
            return
        try:
            await client.request("thread/resume", {"threadId": thread_id, "excludeTurns": True})
        except CodexThreadNotFound:
            if thread_id not in await loaded_thread_ids(client):
                raise
        self._loaded.add(thread_id)

    @contextlib.asynccontextmanager
    async def thread_connection(self, thread_id: str) -> AsyncIterator[AppServerClient]:
        """The connection, with ``thread_id`` loaded and its line held: no turn of this runner
        runs in the thread meanwhile (the handoff sink appends through it, so the thread's
        history in this server has the handoff, and the next chat message follows it)."""
        lock = self._locks.setdefault(thread_id, asyncio.Lock())
        async with lock:
            client = await self.client()
            await self._ensure_loaded(client, thread_id)
            yield client

    async def read_turn(self, thread_id: str, turn_id: str) -> dict[str, Any] | None:
        """The ``Turn`` object ``turn_id`` among the thread's newest turns, if found."""
        client = await self.client()
        await self._ensure_loaded(client, thread_id)
        turns = iter_turns(client, thread_id, page_size=10, max_turns=FIND_TURNS)
        async with contextlib.aclosing(turns):
            async for turn in turns:
                if str(turn.get("id")) == turn_id:
                    return turn
        return None

    def share(self, home: Path | str) -> None:
        """Make this the process's runner for the Codex home ``home`` (:func:`shared_runner`)."""
        _SHARED[str(Path(home).expanduser())] = self

    async def find_turn(self, thread_id: str, client_message_id: str) -> TurnResult | None:
        """The earlier turn whose user message carries ``client_message_id``, if it finished
        (completed or failed); None when there is none, or it was interrupted."""
        client = await self.client()
        turns = iter_turns(client, thread_id, page_size=10, max_turns=FIND_TURNS)
        try:
            async with contextlib.aclosing(turns):
                async for turn in turns:
                    for item in turn.get("items") or []:
                        if (
                            item.get("type") == "userMessage"
                            and item.get("clientId") == client_message_id
                        ):
                            status = str(turn.get("status"))
                            if status not in ("completed", "failed"):
                                return None
                            return TurnResult(
                                thread_id=thread_id,
                                turn_id=str(turn.get("id")),
                                status="completed" if status == "completed" else "failed",
                                text=final_text(turn),
                            )
        except CodexError as exc:
            if "not materialized" in str(exc) or "not loaded" in str(exc):
                return None
            raise
        return None

    async def run(
        self,
        thread_id: str,
        inputs: Sequence[TurnInput],
        events: TurnEvents | None = None,
        *,
        sandbox: Sandbox | None = None,
        approval_policy: ApprovalPolicy | None = None,
        client_message_id: str | None = None,
    ) -> TurnResult:
        """Run one turn with ``inputs`` in ``thread_id`` and return how it ended.

        Waits for earlier turns of the same thread first.

        :raises TurnLost: the connection ended before the turn finished.
        :raises CodexError: the turn could not be started (the message says why).
        """
        lock = self._locks.setdefault(thread_id, asyncio.Lock())
        async with lock:
            running = RunningTurn(thread_id, client_message_id=client_message_id)
            self._running[thread_id] = running
            self._events[thread_id] = events or SilentEvents()
            try:
                return await self._run(
                    thread_id, inputs, running, sandbox, approval_policy, client_message_id
                )
            finally:
                self._running.pop(thread_id, None)
                self._events.pop(thread_id, None)

    async def _run(
        self,
        thread_id: str,
        inputs: Sequence[TurnInput],
        running: RunningTurn,
        sandbox: Sandbox | None,
        approval_policy: ApprovalPolicy | None,
        client_message_id: str | None,
    ) -> TurnResult:
        client = await self.client()
        await self._ensure_loaded(client, thread_id)
        events = self._events[thread_id]
        params: dict[str, Any] = {"threadId": thread_id, "input": [i.wire() for i in inputs]}
        if client_message_id:
            params["clientUserMessageId"] = client_message_id
        if approval_policy:
            params["approvalPolicy"] = approval_policy
        if sandbox:
            params["sandboxPolicy"] = _sandbox_policy(sandbox)
        methods = {"turn/completed", "item/agentMessage/delta", "item/started", "error"}
        with client.subscribe(methods) as sub:
            started = await client.request("turn/start", params)
            turn_id = str(started["turn"]["id"])
            running.turn_id = turn_id
            streamed = False
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.turn_timeout_s
            while True:
                try:
                    note = await sub.get(timeout=max(0.0, deadline - loop.time()))
                except TimeoutError:
                    await self.interrupt(thread_id)
                    deadline = loop.time() + 30.0
                    continue
                except CodexError as exc:
                    raise TurnLost(
                        f"the connection to codex app-server ended during turn {turn_id}: {exc}"
                    ) from exc
                p = note.get("params") or {}
                method = note.get("method")
                if method == "item/agentMessage/delta" and p.get("turnId") == turn_id:
                    streamed = True
                    await events.on_delta(str(p.get("delta") or ""))
                elif method == "item/started" and p.get("turnId") == turn_id:
                    if (p.get("item") or {}).get("type") == "agentMessage" and streamed:
                        await events.on_delta("\n\n")
                elif method == "turn/completed" and (p.get("turn") or {}).get("id") == turn_id:
                    return self._result(client, thread_id, p["turn"])

    @staticmethod
    def _result(client: AppServerClient, thread_id: str, turn: dict[str, Any]) -> TurnResult:
        raw = str(turn.get("status"))
        status: TurnStatus = (
            "completed"
            if raw == "completed"
            else "interrupted"
            if raw == "interrupted"
            else "failed"
        )
        error = None
        if status == "failed":
            error = describe_turn_error(turn.get("error"), home=client.codex_home)
        return TurnResult(thread_id, str(turn.get("id")), status, final_text(turn), error)

    async def interrupt(self, thread_id: str) -> bool:
        """Interrupt the running turn of ``thread_id``; False when none runs."""
        running = self._running.get(thread_id)
        if running is None or running.turn_id is None or self._client is None:
            return False
        try:
            await self._client.request(
                "turn/interrupt", {"threadId": thread_id, "turnId": running.turn_id}
            )
        except CodexError as exc:
            log.info("codex.interrupt_failed", thread_id=thread_id, error=str(exc))
            return False
        return True

    async def _approve(self, method: str, params: dict[str, Any]) -> Decision:
        request = _approval(method, params)
        events = self._events.get(request.thread_id)
        if events is None:
            return "deny"
        return await events.on_approval(request)

    async def close(self) -> None:
        """Close the connection (a private app-server stops; its running turn is interrupted)
        and stop being the shared runner."""
        for home, runner in list(_SHARED.items()):
            if runner is self:
                del _SHARED[home]
        client, self._client = self._client, None
        if client is not None:
            await client.close()


_SHARED: dict[str, TurnRunner] = {}


def shared_runner(home: Path | str) -> TurnRunner | None:
    """The runner this process shares for the Codex home ``home`` (the bridge's conversation
    runner), if one was shared with :meth:`TurnRunner.share`."""
    return _SHARED.get(str(Path(home).expanduser()))


def _sandbox_policy(sandbox: Sandbox) -> dict[str, Any]:
    if sandbox == "read-only":
        return {"type": "readOnly", "networkAccess": False}
    if sandbox == "workspace-write":
        return {
            "type": "workspaceWrite",
            "writableRoots": [],
            "networkAccess": False,
            "excludeTmpdirEnvVar": False,
            "excludeSlashTmp": False,
        }
    return {"type": "dangerFullAccess"}


__all__ = [
    "ApprovalRequest",
    "Decision",
    "RunningTurn",
    "SilentEvents",
    "TurnEvents",
    "TurnInput",
    "TurnLost",
    "TurnResult",
    "TurnRunner",
    "config_connector",
    "final_text",
    "shared_runner",
]
