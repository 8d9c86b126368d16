"""Revisions of a delegation: a correction supersedes the running request, stale frames drop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bridgehost.delegation import DelegationRequest
from bridgehost.gateway.delegations import Delegations
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
