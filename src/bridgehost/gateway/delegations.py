"""Questions the voice model delegates to Codex during a call, on the gateway's side.

The gateway owns the live session, the bridge owns Codex (DESIGN §8). For a backend session
that can delegate (:func:`bridgehost.delegation.supports_delegation`), :meth:`Delegations.attach`
sets its ``on_delegation``. Each :class:`~bridgehost.delegation.DelegationRequest` then

1. is logged as ``delegation.started`` and sent to the bridge as ``call.delegate`` (again, with
   the same id and revision, whenever the bridge reconnects before answering);
2. gets ``call.delegate.progress`` frames → ``delegation_progress`` on the session (GPT-Live:
   ``session.thinking.append``) and ``delegation.progress`` events;
3. ends with ``call.delegate.result`` → ``delegation_result`` (GPT-Live:
   ``session.commentary.append``; Realtime: ``function_call_output`` + ``response.create``),
   at most ~500 tokens and speakable, and ``delegation.finished``; or with the timeout
   (``realtime.delegation_timeout_ms``), said aloud as a failure, and ``call.delegate.cancel``.

Corrections and barge-in (``reference/gpt-live.md`` §4.3). GPT-Live has no event that
updates or cancels a client delegation (none in its event catalogue: the app keeps the task's
revision itself), so a caller who corrects a running request ("Thursday, not Friday") shows up
as a *new* ``session.delegation.created``. A request that arrives while an earlier one of the
same call is unanswered is therefore merged with it: the new request carries both questions as
the next revision, the older one is cancelled (``corrected``: its Codex turn is interrupted, or
leaves the thread's line) and finished in the log as replaced, and the voice model hears about
the older id quietly. A request again for an id already running is a correction too. Any later
progress or result for a superseded revision is dropped. A backend that reports the caller
talking over a request (``on_delegation_cancel``; Realtime's ``speech_started``) cancels it
(``barge_in``). When the call ends, running delegations are cancelled with ``call_ended``:
their turns go on and the bridge posts the late answer to the chat, which is also where every
full answer goes. Codex runs one turn at a time per thread (``codex.turns``), so the bridge
serves delegations in order.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import structlog

from bridgehost.delegation import (
    CancellingSession,
    CancelReason,
    DelegatingSession,
    DelegationRequest,
    speakable,
)
from bridgehost.delegation import supports_delegation as _supports
from bridgehost.protocol.bridge import (
    CallDelegate,
    CallDelegateCancel,
    CallDelegateProgress,
    CallDelegateResult,
    Frame,
)

if TYPE_CHECKING:
    from bridgehost.gateway.bridge_hub import BridgeHub
    from bridgehost.gateway.calls import CallManager
    from bridgehost.gateway.session import CallSession

log = structlog.get_logger("bridgehost.gateway.delegations")

MAX_QUESTION = 8000
MAX_TRANSCRIPT = 16_000


REPLACED = "Replaced by the caller's correction; the answer comes with the newer request."
"""Said quietly about a request merged into a newer one, and logged as its end."""
TALKED_OVER = "Cancelled: the caller spoke again before Codex answered."
"""Logged as the end of a request the caller talked over."""


def timeout_text(timeout_s: float) -> str:
    """What the voice model says when Codex did not answer in time."""
    return f"Codex did not answer within {timeout_s:g} seconds, so I could not find that out."


def merged(earlier: DelegationRequest, later: DelegationRequest) -> DelegationRequest:
    """``later`` as a correction of ``earlier``: both questions, the newer transcript."""
    question = f"{earlier.question}\nThen the caller added: {later.question}"
    return replace(later, question=question[-MAX_QUESTION:])


@dataclass
class Pending:
    """One delegation in flight."""

    session: CallSession
    request: DelegationRequest
    revision: int
    sent_at: float = field(default_factory=time.monotonic)
    first_progress_ms: float | None = None
    timer: asyncio.Task[None] | None = None

    @property
    def call_id(self) -> str:
        """The gateway's call id."""
        return self.session.call_id

    def frame(self) -> CallDelegate:
        """The ``call.delegate`` frame for this revision."""
        return CallDelegate(
            call_id=self.call_id,
            delegation_id=self.request.delegation_id,
            revision=self.revision,
            question=self.request.question[:MAX_QUESTION] or "(no question)",
            transcript=self.request.transcript[-MAX_TRANSCRIPT:],
        )


class Delegations:
    """Every delegation of the gateway's calls; see the module docstring."""

    def __init__(self, calls: CallManager, hub: BridgeHub, *, timeout_s: float) -> None:
        self.calls = calls
        self.hub = hub
        self.timeout_s = timeout_s
        self.pending: dict[tuple[str, str], Pending] = {}
        #: Added latency of each answered delegation: sent → first progress (ms).
        self.first_progress_ms: list[float] = []
        hub.on_delegation_frame = self.on_frame
        hub.on_connected = self.resend

    def attach(self, session: CallSession) -> None:
        """Route the call's delegations here, if its backend session can delegate."""
        backend = session.backend
        if not _supports(backend):
            return
        assert isinstance(backend, DelegatingSession)

        async def on_delegation(request: DelegationRequest) -> None:
            await self.start(session, request)

        backend.on_delegation = on_delegation
        if isinstance(backend, CancellingSession):

            async def on_cancel(delegation_id: str) -> None:
                await self.cancel(session, delegation_id, "barge_in")

            backend.on_delegation_cancel = on_cancel

    async def start(self, session: CallSession, request: DelegationRequest) -> None:
        """A new delegation, or a correction of a running one (higher revision)."""
        key = (session.call_id, request.delegation_id)
        previous = self.pending.get(key)
        revision = max(request.revision, previous.revision + 1 if previous else 1)
        if previous is not None:
            self._stop_timer(previous)
            await self._cancel_frame(previous, "corrected")
        else:
            earlier = self._unanswered(session)
            if earlier is not None:
                request = merged(earlier.request, request)
                revision = max(revision, earlier.revision + 1)
                await self._replace(earlier)
        pending = Pending(session, request, revision)
        self.pending[key] = pending
        if previous is None:
            await self.calls.gateway_event(
                session,
                {
                    "type": "delegation.started",
                    "delegation_id": request.delegation_id,
                    "question": request.question[:MAX_QUESTION],
                },
            )
        pending.timer = asyncio.get_running_loop().create_task(
            self._expire(pending), name=f"delegation-timeout-{request.delegation_id}"
        )
        sent = await self.hub.send_to(session.record.bridge_id, pending.frame())
        log.info(
            "delegation sent",
            call_id=session.call_id,
            delegation_id=request.delegation_id,
            revision=revision,
            bridge_connected=sent,
        )

    async def cancel(self, session: CallSession, delegation_id: str, reason: CancelReason) -> None:
        """Stop a delegation that is no longer wanted (its Codex turn is interrupted)."""
        pending = self.pending.get((session.call_id, delegation_id))
        if pending is None:
            return
        self._forget(pending)
        log.info(
            "delegation cancelled",
            call_id=session.call_id,
            delegation_id=delegation_id,
            reason=reason,
        )
        await self._cancel_frame(pending, reason)
        ended = TALKED_OVER if reason == "barge_in" else f"Cancelled ({reason})."
        await self._finished_event(pending, ended)

    async def resend(self, bridge_id: str) -> None:
        """The bridge (re)connected: send every unanswered delegation again (same ids)."""
        for pending in list(self.pending.values()):
            if pending.session.record.bridge_id == bridge_id:
                await self.hub.send_to(bridge_id, pending.frame())

    async def on_frame(self, frame: Frame) -> None:
        """``call.delegate.progress`` or ``call.delegate.result`` from the bridge."""
        if not isinstance(frame, CallDelegateProgress | CallDelegateResult):
            return
        pending = self.pending.get((frame.call_id, frame.delegation_id))
        if pending is None or frame.revision != pending.revision:
            log.info(
                "dropped a stale delegation frame",
                call_id=frame.call_id,
                delegation_id=frame.delegation_id,
                revision=frame.revision,
                type=frame.type,
            )
            return
        if isinstance(frame, CallDelegateProgress):
            await self._progress(pending, frame.text)
        else:
            await self._finish(pending, frame)

    async def _progress(self, pending: Pending, text: str) -> None:
        if pending.first_progress_ms is None:
            pending.first_progress_ms = (time.monotonic() - pending.sent_at) * 1000
            self.first_progress_ms.append(pending.first_progress_ms)
            log.info(
                "delegation first progress",
                call_id=pending.call_id,
                delegation_id=pending.request.delegation_id,
                latency_ms=round(pending.first_progress_ms, 1),
            )
        if not text.strip():
            return
        await self._backend_call(pending, "progress", text)
        await self.calls.gateway_event(
            pending.session,
            {
                "type": "delegation.progress",
                "delegation_id": pending.request.delegation_id,
                "text": text[:8000],
            },
        )

    async def _finish(self, pending: Pending, frame: CallDelegateResult) -> None:
        self._forget(pending)
        text = frame.answer if frame.ok else (frame.error or "Codex could not answer.")
        answer = speakable(text) or "Codex finished without an answer."
        await self._backend_call(pending, "result", answer, ok=frame.ok)
        await self.calls.gateway_event(
            pending.session,
            {
                "type": "delegation.finished",
                "delegation_id": pending.request.delegation_id,
                "ok": frame.ok,
                "answer": answer,
                "turn_id": frame.turn_id,
            },
        )

    async def _expire(self, pending: Pending) -> None:
        await asyncio.sleep(self.timeout_s)
        if self.pending.get((pending.call_id, pending.request.delegation_id)) is not pending:
            return
        pending.timer = None
        self._forget(pending)
        log.warning(
            "delegation timed out",
            call_id=pending.call_id,
            delegation_id=pending.request.delegation_id,
        )
        await self._cancel_frame(pending, "timeout")
        answer = timeout_text(self.timeout_s)
        await self._backend_call(pending, "result", answer, ok=False)
        await self.calls.gateway_event(
            pending.session,
            {
                "type": "delegation.finished",
                "delegation_id": pending.request.delegation_id,
                "ok": False,
                "answer": answer,
            },
        )

    async def call_ended(self, session: CallSession) -> None:
        """The call is over: cancel what still runs (the bridge posts late answers to chat)."""
        for pending in [p for p in self.pending.values() if p.session is session]:
            self._forget(pending)
            await self._cancel_frame(pending, "call_ended")

    async def close(self) -> None:
        """Gateway stop: stop every timer."""
        for pending in list(self.pending.values()):
            self._forget(pending)

    # -- helpers ---------------------------------------------------------------------------

    def _unanswered(self, session: CallSession) -> Pending | None:
        """The newest delegation of this call still waiting for its answer, if any."""
        waiting = [p for p in self.pending.values() if p.session is session]
        return max(waiting, key=lambda p: p.sent_at) if waiting else None

    async def _replace(self, earlier: Pending) -> None:
        """``earlier`` is merged into a newer request: cancel it, log its end, tell the model."""
        self._forget(earlier)
        log.info(
            "delegation merged into a correction",
            call_id=earlier.call_id,
            delegation_id=earlier.request.delegation_id,
        )
        await self._cancel_frame(earlier, "corrected")
        await self._backend_call(earlier, "progress", REPLACED)
        await self._finished_event(earlier, REPLACED)

    async def _finished_event(self, pending: Pending, answer: str) -> None:
        await self.calls.gateway_event(
            pending.session,
            {
                "type": "delegation.finished",
                "delegation_id": pending.request.delegation_id,
                "ok": False,
                "answer": answer,
            },
        )

    def _forget(self, pending: Pending) -> None:
        key = (pending.call_id, pending.request.delegation_id)
        if self.pending.get(key) is pending:
            del self.pending[key]
        self._stop_timer(pending)

    @staticmethod
    def _stop_timer(pending: Pending) -> None:
        timer, pending.timer = pending.timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def _cancel_frame(self, pending: Pending, reason: CancelReason) -> None:
        await self.hub.send_to(
            pending.session.record.bridge_id,
            CallDelegateCancel(
                call_id=pending.call_id,
                delegation_id=pending.request.delegation_id,
                revision=pending.revision,
                reason=reason,
            ),
        )

    async def _backend_call(self, pending: Pending, what: str, text: str, **kw: Any) -> None:
        backend = pending.session.backend
        if pending.session.ended.is_set() or not _supports(backend):
            return
        assert isinstance(backend, DelegatingSession)
        try:
            if what == "progress":
                await backend.delegation_progress(pending.request.delegation_id, text)
            else:
                await backend.delegation_result(pending.request.delegation_id, text, **kw)
        except Exception:  # the voice session may be going away; the chat has the answer
            log.exception("could not pass a delegation answer to the voice model")


__all__ = ["REPLACED", "TALKED_OVER", "Delegations", "Pending", "merged", "timeout_text"]
