"""Append a call's handoff to the bound Codex thread, exactly once per call id.

Two modes:

``turn``
    ``turn/start`` with the handoff text as the user message: visible in the thread, and the agent
    answers it (one model call). We wait for ``turn/completed`` of that turn, bounded; when it does
    not come in time the receipt says ``started`` and the subscription is dropped (no waiter is
    left behind). A private app-server interrupts the turn when it is closed, so callers that want
    the agent to finish keep the client open longer (``wait_s``) or use a shared server's socket.
``inject``
    ``thread/inject_items`` with one user message: no model call, invisible in the thread's UI,
    but the model sees it in order at the thread's next turn.

Idempotency: :func:`find_handoff` looks for an earlier append of the same call id before
anything is appended (attachment record, marked user message in the thread's turns, then the
rollout file for injections; see :mod:`bridgehost.codex._marker`). A brand-new thread, with no
user message yet, has no turns to search (and no rollout to resume): that is no earlier append.
Concurrent appends of one call id are not serialized here; the outbox delivers one call id at a
time.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any, Literal

import structlog

from bridgehost.codex._errors import (
    CodexError,
    CodexThreadNotFound,
    CodexThreadNotMaterialized,
    describe_turn_error,
)
from bridgehost.codex._marker import (
    HandoffMode,
    check_call_id,
    find_attachment,
    identity_key,
    marker_line,
    record_attachment,
    rollout_has_marker,
    with_marker,
)
from bridgehost.codex.appserver import AppServerClient, loaded_thread_ids, login_problem
from bridgehost.codex.threads import item_text, iter_turns

log = structlog.get_logger("bridgehost.codex.handoff")

ReceiptStatus = Literal["completed", "started", "failed", "injected"]
SCAN_TURNS = 200
"""How many of the newest turns :func:`find_handoff` searches for a marked message."""


@dataclass(frozen=True, slots=True)
class AppendReceipt:
    """What became of a handoff.

    :param status: ``completed`` (the agent answered), ``started`` (the turn was still running
        when we stopped waiting), ``failed`` (the handoff is in the thread but the turn failed;
        ``error`` says why and what to do), ``injected`` (added to the context, no model call).
    :param turn_id: the turn carrying the handoff (``turn`` mode).
    :param duplicate: True when an earlier append of this call id was found and nothing was
        appended now.
    :param error: a sentence with a fix, when the model call failed or keeps retrying.
    :param transport: ``stdio`` (private app-server) or ``socket`` (a running server).
    """

    call_id: str
    thread_id: str
    mode: HandoffMode
    status: ReceiptStatus
    turn_id: str | None = None
    duplicate: bool = False
    error: str | None = None
    transport: Literal["stdio", "socket"] = "stdio"


_TURN_STATUS: dict[str, ReceiptStatus] = {
    "completed": "completed",
    "inProgress": "started",
    "failed": "failed",
    "interrupted": "failed",
}


async def _marked_turn(
    client: AppServerClient, thread_id: str, call_id: str
) -> dict[str, Any] | None:
    key, line = identity_key(call_id), marker_line(call_id)
    turns = iter_turns(client, thread_id, page_size=20, max_turns=SCAN_TURNS)
    try:
        async with aclosing(turns):
            async for turn in turns:
                for item in turn.get("items") or []:
                    if item.get("type") == "userMessage" and (
                        item.get("clientId") == key or item_text(item).split("\n", 1)[0] == line
                    ):
                        return turn
    except CodexThreadNotMaterialized:  # a brand-new thread: no user message, so no turns yet
        return None
    return None


def _turn_receipt(
    client: AppServerClient, thread_id: str, call_id: str, turn: dict[str, Any], *, duplicate: bool
) -> AppendReceipt:
    status = _TURN_STATUS.get(str(turn.get("status")), "started")
    error = None
    if status == "failed":
        error = describe_turn_error(turn.get("error"), home=client.codex_home)
    return AppendReceipt(
        call_id=call_id,
        thread_id=thread_id,
        mode="turn",
        status=status,
        turn_id=turn.get("id"),
        duplicate=duplicate,
        error=error,
        transport=client.transport,
    )


async def find_handoff(
    client: AppServerClient, thread_id: str, call_id: str
) -> AppendReceipt | None:
    """The receipt of an earlier append of ``call_id`` to the thread, or None.

    Raises :class:`CodexThreadNotFound` when the thread does not exist.
    """
    check_call_id(call_id)

    def duplicate(
        mode: HandoffMode, status: ReceiptStatus, turn_id: str | None = None
    ) -> AppendReceipt:
        return AppendReceipt(
            call_id=call_id,
            thread_id=thread_id,
            mode=mode,
            status=status,
            turn_id=turn_id,
            duplicate=True,
            transport=client.transport,
        )

    thread = (await client.request("thread/read", {"threadId": thread_id}))["thread"]
    found = await find_attachment(client, thread_id, call_id)
    payload: dict[str, Any] = (
        found["payload"] if found and isinstance(found.get("payload"), dict) else {}
    )
    if found and payload.get("mode") == "inject":
        return duplicate("inject", "injected")
    turn = await _marked_turn(client, thread_id, call_id)
    if turn is not None:
        return _turn_receipt(client, thread_id, call_id, turn, duplicate=True)
    if found:
        return duplicate("turn", "started", payload.get("turnId"))
    if await asyncio.to_thread(rollout_has_marker, thread.get("path"), call_id):
        return duplicate("inject", "injected")
    return None


async def _resume(client: AppServerClient, thread_id: str) -> None:
    """Load the thread into this app-server. A brand-new thread (no user message yet) is not
    saved, so it has no rollout to resume; loaded in this server, it needs no resuming."""
    try:
        await client.request("thread/resume", {"threadId": thread_id, "excludeTurns": True})
    except CodexThreadNotFound:
        if thread_id not in await loaded_thread_ids(client):
            raise


async def _failure_text(client: AppServerClient, error: dict[str, Any] | None) -> str:
    problem = None
    with contextlib.suppress(CodexError):
        problem = await login_problem(client)
    return describe_turn_error(error, home=client.codex_home, login_problem=problem)


async def _run_turn(
    client: AppServerClient, thread_id: str, body: str, call_id: str, wait_s: float
) -> AppendReceipt:
    with client.subscribe({"turn/completed", "error"}) as sub:
        started = await client.request(
            "turn/start",
            {
                "threadId": thread_id,
                "clientUserMessageId": identity_key(call_id),
                "input": [{"type": "text", "text": body, "text_elements": []}],
            },
        )
        turn_id = str(started["turn"]["id"])
        await record_attachment(client, thread_id, call_id, "turn", turn_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        retrying: dict[str, Any] | None = None
        while (left := deadline - loop.time()) > 0:
            try:
                note = await sub.get(timeout=left)
            except TimeoutError:
                break
            except CodexError as exc:  # the connection ended while we waited
                return AppendReceipt(
                    call_id=call_id,
                    thread_id=thread_id,
                    mode="turn",
                    status="started",
                    turn_id=turn_id,
                    error=str(exc),
                    transport=client.transport,
                )
            params = note.get("params") or {}
            if note.get("method") == "error" and params.get("turnId") == turn_id:
                retrying = params.get("error")
            elif (params.get("turn") or {}).get("id") == turn_id:
                receipt = _turn_receipt(client, thread_id, call_id, params["turn"], duplicate=False)
                if receipt.status == "failed":
                    text = await _failure_text(client, params["turn"].get("error"))
                    receipt = replace(receipt, error=text)
                return receipt
    error = await _failure_text(client, retrying) if retrying else None
    return AppendReceipt(
        call_id=call_id,
        thread_id=thread_id,
        mode="turn",
        status="started",
        turn_id=turn_id,
        error=error,
        transport=client.transport,
    )


async def append_handoff(
    client: AppServerClient,
    thread_id: str,
    *,
    text: str,
    mode: HandoffMode,
    call_id: str,
    wait_s: float | None = None,
) -> AppendReceipt:
    """Append the handoff ``text`` of call ``call_id`` to thread ``thread_id``, once.

    :param mode: ``turn`` (visible turn, the agent answers) or ``inject`` (context only).
    :param wait_s: how long to wait for the turn to complete (default: the client's timeout).
    :raises CodexThreadNotFound: the thread does not exist (the message says how to rebind).
    :raises CodexThreadBusy: another Codex process holds the thread and is not reachable.
    :raises CodexError: the app-server failed otherwise; nothing was appended.
    """
    check_call_id(call_id)
    if mode not in ("turn", "inject"):
        raise ValueError(f"handoff mode {mode!r} is not valid: use 'turn' or 'inject'")
    existing = await find_handoff(client, thread_id, call_id)
    if existing is not None:
        log.info(
            "codex.handoff_duplicate", call_id=call_id, thread_id=thread_id, status=existing.status
        )
        return existing
    body = with_marker(text, call_id)
    await _resume(client, thread_id)
    if mode == "inject":
        await client.request(
            "thread/inject_items",
            {
                "threadId": thread_id,
                "items": [
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": body}],
                    }
                ],
            },
        )
        await record_attachment(client, thread_id, call_id, "inject", None)
        receipt = AppendReceipt(
            call_id=call_id,
            thread_id=thread_id,
            mode="inject",
            status="injected",
            transport=client.transport,
        )
    else:
        wait = client.timeout if wait_s is None else wait_s
        receipt = await _run_turn(client, thread_id, body, call_id, wait)
    log.info(
        "codex.handoff_appended",
        call_id=call_id,
        thread_id=thread_id,
        mode=mode,
        status=receipt.status,
        turn_id=receipt.turn_id,
        transport=receipt.transport,
    )
    return receipt
