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
``call.delegate.cancel`` stops the result from going back to the call; the turn is not
interrupted (it may be waiting in the thread's line behind a chat turn, which must not be cut),
and its answer still goes to the chat.
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
        task.add_done_callback(lambda _t: self._running.pop(key, None))

    async def _run(self, frame: CallDelegate, key: tuple[str, str, int]) -> None:
        thread_id = self.thread_of()
        if thread_id is None:
            await self._answer(frame, key, ok=False, error="No Codex thread is bound to this chat.")
            return
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
                client_message_id=f"call:{frame.call_id}:{frame.delegation_id}:{frame.revision}",
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
        if result.text.strip():
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
        self._cancelled.add(key)  # no result goes back; the answer still goes to the chat

    async def close(self) -> None:
        """Stop every running delegation."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["CallDelegator", "turn_text"]
