"""``/ws/bridge``: every frame of the control channel between the gateway and the bridge.

The bridge (bridge-telegram, or the demo's bridge) connects over loopback with
``Authorization: Bearer <REALTIME_CONTROL_SECRET>`` and sends ``bridge.hello`` first. Frames are
JSON text messages told apart by ``type``:

=======================  ==============  ======================================================
type                     direction       meaning
=======================  ==============  ======================================================
``bridge.hello``         bridge → gw     ``{bridge_id, status}``; the gateway replays
                                         unacknowledged events of every call, then answers
                                         ``hello.ok``
``bridge.status``        bridge → gw     ``{status}``: readiness as the bridge sees it
``call.prepare``         gw → bridge     ``{id, call: {call_id, bridge_id, telegram_user_id}}``
``call.prepare.result``  bridge → gw     ``{reply_to, allowed, reason?, context: {parts}}``
``call.event``           gw → bridge     ``{call_id, event}``: every logged event, in ``seq``
                                         order
``call.ack``             bridge → gw     ``{call_id, seq}``: the bridge holds events up to
                                         ``seq``
``call.hangup``          bridge → gw     ``{call_id?, reason}``: end the call (``/hangup``)
=======================  ==============  ======================================================

Delivery is at-least-once and ordered: events are replayed from the call's log after any
reconnect until the bridge acknowledges them, so nothing logged is lost across restarts of
either side. The bridge de-duplicates by ``(call_id, seq)``.

A frame whose ``type`` is known but whose fields are not is a protocol error
(:class:`FrameError`: the gateway closes the channel with :data:`CLOSE_BAD_HELLO` or
:data:`CLOSE_BAD_FRAME` and the problem as the close reason). A frame of a type the receiver
does not know is ignored, so a newer peer can talk to an older one. A new message (in-call
notes, delegation and its progress and result…) is one more model listed in
:data:`BridgeToGateway` or :data:`GatewayToBridge`, for the gateway, the bridge and the demo at
once.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from bridgehost.protocol._errors import describe_validation

CLOSE_BAD_HELLO = 4001
"""Close code: the first frame was not a valid ``bridge.hello``."""
CLOSE_BAD_FRAME = 4002
"""Close code: a frame was not JSON, or a known frame had invalid fields."""
CLOSE_REPLACED = 4008
"""Close code: another bridge with the same ``bridge_id`` connected."""
MAX_CLOSE_REASON_BYTES = 123
"""What a WebSocket close frame can carry as its reason."""

BridgeId = Annotated[str, Field(min_length=1, max_length=64)]
CallId = Annotated[str, Field(min_length=1, max_length=64)]


class Frame(BaseModel):
    """What every frame shares: its ``type``; fields a receiver does not know are dropped."""

    # Validators are built on first use, not at import (see protocol.events.CallEventBase).
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, defer_build=True)

    type: str

    def to_json(self) -> str:
        """The frame as one JSON text message."""
        return self.model_dump_json()


# -- bridge → gateway ----------------------------------------------------------------------


class BridgeHello(Frame):
    """The bridge's first frame: who it is and its readiness."""

    type: Literal["bridge.hello"] = "bridge.hello"
    bridge_id: BridgeId
    status: dict[str, Any] = Field(default_factory=dict)

    @field_validator("status", mode="before")
    @classmethod
    def _no_status(cls, value: Any) -> Any:
        return {} if value is None else value


class BridgeStatus(Frame):
    """The bridge's readiness changed (or it is time to say it again)."""

    type: Literal["bridge.status"] = "bridge.status"
    status: dict[str, Any]


class CallPrepareResult(Frame):
    """The bridge's answer to ``call.prepare``: allowed or not (with the reason), and context."""

    type: Literal["call.prepare.result"] = "call.prepare.result"
    reply_to: Annotated[str, Field(max_length=64)]
    allowed: bool = False
    reason: Annotated[str, Field(max_length=2000)] | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    """What the bridge adds to the call's instructions: ``{"parts": [{title, text}, ...]}``."""

    @field_validator("context", mode="before")
    @classmethod
    def _no_context(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("context")
    @classmethod
    def _parts_are_a_list(cls, value: dict[str, Any]) -> dict[str, Any]:
        parts = value.get("parts")
        if parts is not None and not (
            isinstance(parts, list) and all(isinstance(part, dict) for part in parts)
        ):
            raise ValueError("must have 'parts' as a list of objects")
        return value


class CallAck(Frame):
    """The bridge has stored a call's events up to ``seq``."""

    type: Literal["call.ack"] = "call.ack"
    call_id: CallId
    seq: Annotated[int, Field(ge=0)]


class CallHangup(Frame):
    """End the call (``call_id`` None: whichever is running); ``reason`` defaults to
    ``telegram_hangup`` and is cut to 64 characters."""

    type: Literal["call.hangup"] = "call.hangup"
    call_id: CallId | None = None
    reason: str | None = None

    @field_validator("reason")
    @classmethod
    def _short(cls, value: str | None) -> str | None:
        return value[:64] if value else None


class CallNote(Frame):
    """A message typed in the chat during the call: for the live voice model as quoted data
    (never instructions) and for the handoff."""

    type: Literal["call.note"] = "call.note"
    call_id: CallId
    text: Annotated[str, Field(min_length=1, max_length=4000)]


DelegationId = Annotated[str, Field(min_length=1, max_length=128)]
Revision = Annotated[int, Field(ge=1, lt=10**6)]


class CallDelegateProgress(Frame):
    """Codex is working on a delegation: a piece of what it says so far."""

    type: Literal["call.delegate.progress"] = "call.delegate.progress"
    call_id: CallId
    delegation_id: DelegationId
    revision: Revision
    text: Annotated[str, Field(max_length=8000)]


class CallDelegateResult(Frame):
    """Codex finished a delegation: its answer (``ok``) or why it could not (``error``)."""

    type: Literal["call.delegate.result"] = "call.delegate.result"
    call_id: CallId
    delegation_id: DelegationId
    revision: Revision
    ok: bool
    answer: Annotated[str, Field(max_length=64_000)] = ""
    turn_id: Annotated[str, Field(max_length=128)] | None = None
    error: Annotated[str, Field(max_length=2000)] | None = None


BridgeToGateway = Annotated[
    BridgeHello
    | BridgeStatus
    | CallPrepareResult
    | CallAck
    | CallHangup
    | CallNote
    | CallDelegateProgress
    | CallDelegateResult,
    Field(discriminator="type"),
]
"""Every frame the bridge sends."""


# -- gateway → bridge ----------------------------------------------------------------------


class HelloOk(Frame):
    """The gateway has replayed what the bridge missed: the channel is up."""

    type: Literal["hello.ok"] = "hello.ok"


class PrepareCall(BaseModel):
    """The call a ``call.prepare`` is about."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    call_id: CallId
    bridge_id: BridgeId
    telegram_user_id: int | None = None


class CallPrepare(Frame):
    """Prepare a call: the bridge answers ``call.prepare.result`` with ``reply_to = id``."""

    type: Literal["call.prepare"] = "call.prepare"
    id: Annotated[str, Field(min_length=1, max_length=64)]
    call: PrepareCall


class LoggedEvent(BaseModel):
    """A call event as the gateway logged it: stamped with ``seq`` and ``at``, plus its fields
    (see :mod:`bridgehost.protocol.events`)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, defer_build=True)

    seq: Annotated[int, Field(ge=1)]
    type: str


class CallEventFrame(Frame):
    """One logged event of a call, forwarded (or replayed) to the bridge."""

    type: Literal["call.event"] = "call.event"
    call_id: CallId
    event: LoggedEvent


class CallDelegate(Frame):
    """Ask Codex, in the call's bound thread, what the voice model delegated. Sent again with
    the same ``(call_id, delegation_id, revision)`` after a reconnect: the bridge runs each once."""

    type: Literal["call.delegate"] = "call.delegate"
    call_id: CallId
    delegation_id: DelegationId
    revision: Revision
    question: Annotated[str, Field(min_length=1, max_length=8000)]
    transcript: Annotated[str, Field(max_length=16_000)] = ""


class CallDelegateCancel(Frame):
    """The delegation is no longer wanted: corrected by a newer one, talked over by the caller
    (``barge_in``), timed out, or the call ended. Every reason but ``call_ended`` (the default,
    as from a gateway that sends none) interrupts its Codex turn or drops it from the line."""

    type: Literal["call.delegate.cancel"] = "call.delegate.cancel"
    call_id: CallId
    delegation_id: DelegationId
    revision: Revision
    reason: Literal["corrected", "barge_in", "timeout", "call_ended"] = "call_ended"


GatewayToBridge = Annotated[
    HelloOk | CallPrepare | CallEventFrame | CallDelegate | CallDelegateCancel,
    Field(discriminator="type"),
]
"""Every frame the gateway sends."""


# -- parsing -------------------------------------------------------------------------------


class FrameError(ValueError):
    """A frame that breaks the protocol; the message names the frame and the problem."""


class UnknownFrame(FrameError):
    """A frame of a type this side does not know (ignored, for newer peers)."""

    def __init__(self, kind: object) -> None:
        super().__init__(f"unknown frame type {str(kind)[:64]!r}")
        self.kind = kind


@cache
def _bridge_adapter() -> TypeAdapter[BridgeToGateway]:
    return TypeAdapter(BridgeToGateway)  # on the first frame, not at import


@cache
def _gateway_adapter() -> TypeAdapter[GatewayToBridge]:
    return TypeAdapter(GatewayToBridge)


_Parsed = TypeVar("_Parsed")


def _parse(adapter: TypeAdapter[_Parsed], data: str | bytes) -> _Parsed:
    try:
        message = json.loads(data)
    except RecursionError:
        raise FrameError("a frame must not nest arrays or objects this deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise FrameError("a frame must be a JSON object, and this one is not JSON") from None
    if not isinstance(message, dict):
        raise FrameError(f"a frame must be a JSON object, not {_json_kind(message)}")
    kind = message.get("type")
    if kind is None:
        raise FrameError("a frame needs a 'type'")
    try:
        return adapter.validate_python(message)
    except ValidationError as exc:
        error = exc.errors()[0]
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            raise UnknownFrame(kind) from None
        where, problem = describe_validation(error, skip=1)
        raise FrameError(f"{kind}.{where} {problem}") from None


def parse_from_bridge(data: str | bytes) -> BridgeToGateway:
    """One frame the bridge sent; :class:`UnknownFrame` or :class:`FrameError` otherwise."""
    return _parse(_bridge_adapter(), data)


def parse_from_gateway(data: str | bytes) -> GatewayToBridge:
    """One frame the gateway sent; :class:`UnknownFrame` or :class:`FrameError` otherwise."""
    return _parse(_gateway_adapter(), data)


def parse_hello(data: str | bytes) -> BridgeHello:
    """The bridge's first frame, which must be ``bridge.hello``."""
    try:
        frame = parse_from_bridge(data)
    except UnknownFrame as exc:
        raise FrameError(f"the first frame must be bridge.hello, not {exc.kind!r}") from None
    if not isinstance(frame, BridgeHello):
        raise FrameError(f"the first frame must be bridge.hello, not {frame.type!r}")
    return frame


def close_reason(problem: str) -> str:
    """``problem`` cut to fit a WebSocket close frame (123 bytes of UTF-8)."""
    encoded = problem.encode("utf-8", "replace")
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return problem
    return encoded[: MAX_CLOSE_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
