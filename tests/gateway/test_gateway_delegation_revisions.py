"""Revisions of a delegation: a correction supersedes the running request, stale frames drop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bridgehost.delegation import DelegationRequest
from bridgehost.gateway.delegations import REPLACED, TALKED_OVER, Delegations
from bridgehost.protocol.bridge import CallDelegateProgress, CallDelegateResult, Frame


@dataclass
class Backend:
    """A delegating backend session that records what it was told."""

    on_delegation: Any = None
    told: list[tuple[str, str, str]] = field(default_factory=list)

    async def delegation_progress(self, delegation_id: str, text: str) -> None:
        self.told.append(("progress", delegation_id, text))

    async def delegation_result(self, delegation_id: str, text: str, *, ok: bool) -> None:
        self.told.append(("result", delegation_id, text))


@dataclass
class Record:
    bridge_id: str = "bridge"


@dataclass
class Call:
    backend: Backend
    call_id: str = "call-r"
    record: Record = field(default_factory=Record)
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    on_delegation_frame: Any = None
    on_connected: Any = None

    def __init__(self) -> None:
        self.sent: list[Frame] = []
        self.up = True

    async def send_to(self, bridge_id: str, frame: Frame) -> bool:
        if self.up:
            self.sent.append(frame)
        return self.up


class Log:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def gateway_event(self, session: Any, event: dict[str, Any]) -> None:
        self.events.append(event)


def ids(revision: int) -> dict[str, Any]:
    return {"call_id": "call-r", "delegation_id": "d1", "revision": revision}


async def test_a_correction_supersedes_and_stale_results_are_dropped() -> None:
    hub, log, backend = Hub(), Log(), Backend()
    delegations = Delegations(log, hub, timeout_s=30)  # type: ignore[arg-type]
    call = Call(backend)
    delegations.attach(call)  # type: ignore[arg-type]
    await backend.on_delegation(DelegationRequest("d1", "Tests on Friday?"))
    await backend.on_delegation(DelegationRequest("d1", "No, Thursday"))
    assert [(f.type, f.revision) for f in hub.sent] == [  # type: ignore[attr-defined]
        ("call.delegate", 1),
        ("call.delegate.cancel", 1),
        ("call.delegate", 2),
    ]
    await delegations.on_frame(CallDelegateProgress(**ids(1), text="old"))
    await delegations.on_frame(CallDelegateResult(**ids(1), ok=True, answer="Friday answer"))
    assert backend.told == []  # revision 1 is stale
    await delegations.on_frame(CallDelegateResult(**ids(2), ok=True, answer="Thursday answer"))
    assert backend.told == [("result", "d1", "Thursday answer")]
    assert [e["type"] for e in log.events] == ["delegation.started", "delegation.finished"]
    await delegations.on_frame(CallDelegateResult(**ids(2), ok=True, answer="again"))
    assert len(backend.told) == 1  # a repeated result after the answer is dropped


async def test_a_reconnected_bridge_gets_open_delegations_again() -> None:
    hub, log, backend = Hub(), Log(), Backend()
    delegations = Delegations(log, hub, timeout_s=30)  # type: ignore[arg-type]
    delegations.attach(Call(backend))  # type: ignore[arg-type]
    hub.up = False
    await backend.on_delegation(DelegationRequest("d1", "Is CI green?"))
    assert hub.sent == []
    hub.up = True
    await delegations.resend("bridge")
    [again] = hub.sent
    assert (again.type, again.question) == ("call.delegate", "Is CI green?")  # type: ignore[attr-defined]
    await delegations.close()


@dataclass
class CancellingBackend(Backend):
    """A backend that also reports the caller talking over a request."""

    on_delegation_cancel: Any = None


async def test_a_new_delegation_while_one_is_unanswered_is_merged_into_it() -> None:
    hub, log, backend = Hub(), Log(), Backend()
    delegations = Delegations(log, hub, timeout_s=30)  # type: ignore[arg-type]
    delegations.attach(Call(backend))  # type: ignore[arg-type]
    await backend.on_delegation(DelegationRequest("d1", "Book the review on Friday"))
    await backend.on_delegation(DelegationRequest("d2", "No, Thursday", transcript="longer"))
    _first, cancel, second = hub.sent
    assert (cancel.type, cancel.delegation_id, cancel.revision) == ("call.delegate.cancel", "d1", 1)  # type: ignore[attr-defined]
    assert cancel.reason == "corrected"  # type: ignore[attr-defined]
    assert (second.type, second.delegation_id, second.revision) == ("call.delegate", "d2", 2)  # type: ignore[attr-defined]
    assert second.question == (  # type: ignore[attr-defined]
        "Book the review on Friday\nThen the caller added: No, Thursday"
    )
    assert second.transcript == "longer"  # type: ignore[attr-defined]
    assert backend.told == [("progress", "d1", REPLACED)]  # the model hears it quietly
    started = [e for e in log.events if e["type"] == "delegation.started"]
    assert [e["delegation_id"] for e in started] == ["d1", "d2"]
    [replaced] = [e for e in log.events if e["type"] == "delegation.finished"]
    assert (replaced["delegation_id"], replaced["ok"], replaced["answer"]) == (
        "d1",
        False,
        REPLACED,
    )
    # the late answer for the replaced request is dropped; the merged one is said
    await delegations.on_frame(CallDelegateResult(**ids(1), ok=True, answer="Friday booked"))
    assert len(backend.told) == 1
    await delegations.on_frame(
        CallDelegateResult(call_id="call-r", delegation_id="d2", revision=2, ok=True, answer="Thu")
    )
    assert backend.told[-1] == ("result", "d2", "Thu")
    assert not delegations.pending


async def test_a_barge_in_cancels_the_running_delegation() -> None:
    hub, log, backend = Hub(), Log(), CancellingBackend()
    delegations = Delegations(log, hub, timeout_s=30)  # type: ignore[arg-type]
    delegations.attach(Call(backend))  # type: ignore[arg-type]
    assert backend.on_delegation_cancel is not None
    await backend.on_delegation(DelegationRequest("d1", "Run the whole test suite"))
    await backend.on_delegation_cancel("d1")
    [_, cancel] = hub.sent
    assert (cancel.type, cancel.reason) == ("call.delegate.cancel", "barge_in")  # type: ignore[attr-defined]
    [done] = [e for e in log.events if e["type"] == "delegation.finished"]
    assert (done["ok"], done["answer"]) == (False, TALKED_OVER)
    await delegations.on_frame(CallDelegateResult(**ids(1), ok=True, answer="late"))
    assert backend.told == [], "nothing is said for a cancelled request"
    await backend.on_delegation_cancel("d1")  # again, or unknown: nothing happens
    assert len(hub.sent) == 2


async def test_timeouts_and_hang_ups_say_why_they_cancel() -> None:
    hub, log, backend = Hub(), Log(), Backend()
    delegations = Delegations(log, hub, timeout_s=0.05)  # type: ignore[arg-type]
    call = Call(backend)
    delegations.attach(call)  # type: ignore[arg-type]
    await backend.on_delegation(DelegationRequest("d1", "Slow question"))
    await asyncio.sleep(0.2)
    assert [(f.type, getattr(f, "reason", None)) for f in hub.sent][-1] == (
        "call.delegate.cancel",
        "timeout",
    )
    assert backend.told and backend.told[-1][0] == "result"
    delegations.timeout_s = 30
    await backend.on_delegation(DelegationRequest("d2", "Another"))
    await delegations.call_ended(call)  # type: ignore[arg-type]
    assert hub.sent[-1].reason == "call_ended"  # type: ignore[attr-defined]
    await delegations.close()
