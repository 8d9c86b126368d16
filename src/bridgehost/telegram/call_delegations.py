"""Questions delegated during a call, on the bridge's side: a Codex turn per delegation.

The gateway sends ``call.delegate {call_id, delegation_id, revision, question, transcript}``
(see :mod:`bridgehost.gateway.delegations`). :class:`CallDelegator` runs one turn on the bound
thread through the conversation's :class:`~bridgehost.codex.turns.TurnRunner` (so calls and the
chat share the thread's one-turn-at-a-time line, first come first served), with
``[codex] call_sandbox`` (read-only by default: nothing is changed by voice; approvals go to the
chat's Approve/Deny flow). While Codex writes, ``call.delegate.progress`` carries what it said
so far (at most every :data:`PROGRESS_EVERY_S`); at the end ``call.delegate.result`` carries the
answer and the Codex turn id, and the full answer is posted to the chat.

Each ``(call_id, delegation_id, revision)`` runs once: a ``call.delegate`` sent again after a
reconnect gets the stored result again, or nothing while the turn still runs.
``call.delegate.cancel`` stops the result from going back to the call. With ``call_ended`` the
turn goes on and its answer still goes to the chat. With any other reason (``corrected``,
``barge_in``, ``timeout``) the delegation's own Codex turn is interrupted (``turn/interrupt``);
if it is still waiting in the thread's line behind another turn (a chat message, which must
not be cut), it just leaves the line and never runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import structlog

from bridgehost.codex.turns import (
    ApprovalRequest,
    Decision,
    Sandbox,
    TurnInput,
    TurnResult,
    TurnRunner,
)
from bridgehost.protocol.bridge import (
    CallDelegate,
    CallDelegateCancel,
    CallDelegateProgress,
    CallDelegateResult,
    Frame,
)

log = structlog.get_logger("bridgehost.telegram.call_delegations")

PROGRESS_EVERY_S = 1.0
TURN_ID_WAIT_S = 2.0
"""How long a cancel waits for a just-started turn to get its id, so it can interrupt it."""
MAX_PROGRESS = 1500
MAX_REMEMBERED = 200

Send = Callable[[Frame], Awaitable[bool]]
Post = Callable[[str], Awaitable[None]]
Approve = Callable[[ApprovalRequest], Awaitable[Decision]]
ThreadOf = Callable[[], str | None]

PROMPT = """\
A question from the live voice call about this thread, asked by the user by voice. Answer it \
directly in at most about 150 words of plain sentences that can be read aloud (no code blocks, \
tables or markdown). Do not change any files. If you cannot answer, say why in one sentence.

Question: {question}

The call so far (transcript, quoted as data):
{transcript}"""


Key = tuple[str, str, int]


def client_message_id(key: Key) -> str:
    """The id the delegation's user message carries in the thread (one per revision)."""
    call_id, delegation_id, revision = key
    return f"call:{call_id}:{delegation_id}:{revision}"


def turn_text(frame: CallDelegate) -> str:
    """The turn's input for one delegation."""
    return PROMPT.format(question=frame.question, transcript=frame.transcript or "(none)")


class _Progress:
    """``TurnEvents`` for a delegation: streamed text → throttled progress frames."""

    def __init__(self, delegator: CallDelegator, frame: CallDelegate) -> None:
        self.delegator, self.frame = delegator, frame
        self.text = ""
        self._sent_at = 0.0
        self._first = True

    async def on_delta(self, text: str) -> None:
        self.text += text
        now = time.monotonic()
        if self._first or now - self._sent_at >= PROGRESS_EVERY_S:
            self._first, self._sent_at = False, now
            await self.delegator.send(
                CallDelegateProgress(
                    call_id=self.frame.call_id,
                    delegation_id=self.frame.delegation_id,
                    revision=self.frame.revision,
                    text=self.text[-MAX_PROGRESS:] or "Working on it.",
                )
            )

    async def on_approval(self, request: ApprovalRequest) -> Decision:
        return await self.delegator.approve(request)


async def _deny(request: ApprovalRequest) -> Decision:
    return "deny"


class CallDelegator:
    """Runs delegated questions as Codex turns; see the module docstring."""

    def __init__(
        self,
        runner: TurnRunner,
        *,
        thread_of: ThreadOf,
        send: Send,
        post: Post,
        sandbox: str = "read-only",
        approve: Approve = _deny,
    ) -> None:
        self.runner = runner
        self.thread_of = thread_of
        self.send = send
        self.post = post
        self.sandbox = cast(Sandbox, sandbox)
        self.approve = approve
        self._results: dict[tuple[str, str, int], CallDelegateResult] = {}
        self._running: dict[tuple[str, str, int], asyncio.Task[None]] = {}
        self._cancelled: set[tuple[str, str, int]] = set()
        self._threads: dict[Key, str] = {}

    async def on_frame(self, frame: Frame) -> None:
        """``call.delegate`` or ``call.delegate.cancel`` from the gateway."""
        if isinstance(frame, CallDelegate):
            await self._delegate(frame)
        elif isinstance(frame, CallDelegateCancel):
            await self._cancel(frame)

    async def _delegate(self, frame: CallDelegate) -> None:
        key = (frame.call_id, frame.delegation_id, frame.revision)
        if key in self._results:
            await self.send(self._results[key])  # lost before: send it again
            return
        if key in self._running:
            return
        task = asyncio.get_running_loop().create_task(
            self._run(frame, key), name=f"call-delegation-{frame.delegation_id}"
        )
        self._running[key] = task
        task.add_done_callback(lambda _t: self._done(key))

    def _done(self, key: Key) -> None:
        self._running.pop(key, None)
        self._threads.pop(key, None)

    async def _run(self, frame: CallDelegate, key: tuple[str, str, int]) -> None:
        thread_id = self.thread_of()
        if thread_id is None:
            await self._answer(frame, key, ok=False, error="No Codex thread is bound to this chat.")
            return
        self._threads[key] = thread_id
        log.info(
            "delegation started",
            call_id=frame.call_id,
            delegation_id=frame.delegation_id,
            thread_id=thread_id,
        )
        progress = _Progress(self, frame)
        try:
            result: TurnResult = await self.runner.run(
                thread_id,
                [TurnInput.of_text(turn_text(frame))],
                progress,
                sandbox=self.sandbox,
                client_message_id=client_message_id(key),
            )
        except Exception as exc:  # TurnLost, CodexError: say it, keep the call going
            log.warning("delegation failed", delegation_id=frame.delegation_id, error=str(exc))
            await self._answer(frame, key, ok=False, error=f"Codex could not run: {exc}")
            return
        ok = result.status == "completed" and bool(result.text.strip())
        error = None if ok else (result.error or f"the Codex turn {result.status}")
        await self._answer(
            frame, key, ok=ok, answer=result.text, turn_id=result.turn_id, error=error
        )
        if result.status == "interrupted" and key in self._cancelled:
            log.info("delegation interrupted", delegation_id=frame.delegation_id)
        elif result.text.strip():
            await self.post(f"🎙 Asked during the call: {frame.question}\n\n{result.text}")

    async def _answer(self, frame: CallDelegate, key: tuple[str, str, int], **fields: Any) -> None:
        result = CallDelegateResult(
            call_id=frame.call_id,
            delegation_id=frame.delegation_id,
            revision=frame.revision,
            **fields,
        )
        if key in self._cancelled:
            return
        self._results[key] = result
        while len(self._results) > MAX_REMEMBERED:
            self._results.pop(next(iter(self._results)))
        await self.send(result)

    async def _cancel(self, frame: CallDelegateCancel) -> None:
        key = (frame.call_id, frame.delegation_id, frame.revision)
        self._cancelled.add(key)  # no result goes back
        task = self._running.get(key)
        if frame.reason == "call_ended" or task is None:
            return  # the turn goes on; its answer goes to the chat
        log.info("delegation cancelled", delegation_id=frame.delegation_id, reason=frame.reason)
        if not await self._interrupt(key):
            task.cancel()  # still in the thread's line behind another turn: leave it

    async def _interrupt(self, key: Key) -> bool:
        """Interrupt the delegation's turn if it is the one running in its thread."""
        thread_id = self._threads.get(key)
        running = self.runner.running(thread_id) if thread_id else None
        if thread_id is None or running is None:
            return False
        if running.client_message_id != client_message_id(key):
            return False  # another turn runs; this one waits in line
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TURN_ID_WAIT_S
        while running.turn_id is None and loop.time() < deadline:
            await asyncio.sleep(0.05)  # turn/start is on its way
        return await self.runner.interrupt(thread_id)

    async def close(self) -> None:
        """Stop every running delegation."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["CallDelegator", "client_message_id", "turn_text"]
