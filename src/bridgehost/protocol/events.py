"""Call events: the models, who may send each, their bounds, and the server-side stamp.

Whatever a browser or backend reports is checked here before it reaches a call's log: the type
must be one we know and the sender (:data:`Source`) may send, every field is typed and bounded,
unknown fields are dropped. The gateway then stamps server time (``at``) and a per-call sequence
number (``seq``); the browser's own clock, if given as ``at``, is kept only as ``client_at``.

A new event is one more :class:`CallEventBase` subclass listed in :data:`CallEvent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic_core import ErrorDetails

from bridgehost.protocol._errors import describe_validation

Source = Literal["browser", "backend", "gateway"]

MAX_TEXT = 8000
MAX_SHORT = 500
MAX_CLIENT_AT = 40
MAX_NUMBER = 10**12

Text = Annotated[str, Field(max_length=MAX_TEXT)]
Short = Annotated[str, Field(max_length=MAX_SHORT)]
Code = Annotated[str, Field(max_length=64)]
Count = Annotated[int, Field(ge=0, lt=MAX_NUMBER)]
Seconds = Annotated[float, Field(ge=0, lt=MAX_NUMBER)]

_EVERYONE: frozenset[Source] = frozenset({"browser", "backend", "gateway"})
_REPORTERS: frozenset[Source] = frozenset({"browser", "backend"})
_GATEWAY: frozenset[Source] = frozenset({"gateway"})


class EventError(ValueError):
    """An event that cannot be accepted; the message says which field and why."""


class CallEventBase(BaseModel):
    """What every call event shares: its ``type``, who may send it, and the client's clock."""

    # Validators are built on first use, not at import: the gateway answers /healthz without
    # them (tests/protocol build every one, so a broken model still fails there).
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, defer_build=True)

    sources: ClassVar[frozenset[Source]] = _EVERYONE
    """Who may report this event."""

    type: str
    client_at: str | None = Field(default=None, validation_alias="at")
    """The sender's own timestamp (``at`` on input), kept only if it is a short string."""

    @field_validator("client_at", mode="wrap")
    @classmethod
    def _keep_short_string(cls, value: Any, handler: Any) -> str | None:
        if isinstance(value, str) and len(value) <= MAX_CLIENT_AT:
            return str(handler(value))
        return None


class CallStarted(CallEventBase):
    """Media flows: the call has begun (the budget was already running since connect)."""

    type: Literal["call.started"]


class CallStartFailed(CallEventBase):
    """The page or backend could not start the call."""

    sources = _REPORTERS
    type: Literal["call.start_failed"]
    message: Short | None = None


class CallIdleWarning(CallEventBase):
    """Nobody spoke for a while; the call ends in ``remaining_ms``."""

    sources = _GATEWAY
    type: Literal["call.idle_warning"]
    remaining_ms: Count | None = None


class CallWarning(CallEventBase):
    """A warning the page shows (``kind``: ``ending_soon``…)."""

    sources = _GATEWAY
    type: Literal["call.warning"]
    kind: Code | None = None
    remaining_ms: Count | None = None


class CallErrorEvent(CallEventBase):
    """Something went wrong in the backend or the gateway."""

    sources = frozenset({"backend", "gateway"})
    type: Literal["call.error"]
    code: Code | None = None
    message: Short | None = None


class CallEnded(CallEventBase):
    """The last event of every call: why it ended (an :class:`EndReason` name, or a
    backend's own reason), who ended it, and how long the browser was connected."""

    sources = _GATEWAY
    type: Literal["call.ended"]
    reason: Code | None = None
    ended_by: Annotated[str, Field(max_length=32)] | None = None
    duration_ms: Count | None = None


class Vad(CallEventBase):
    """Voice activity: someone started or stopped speaking."""

    sources = _REPORTERS
    type: Literal["vad"]
    state: Literal["speech_started", "speech_stopped"]


class UserTranscriptFinal(CallEventBase):
    """What the user said, final."""

    sources = _REPORTERS
    type: Literal["user.transcript.final"]
    text: Text | None = None


class AssistantTranscriptFinal(CallEventBase):
    """What the assistant said, final."""

    sources = _REPORTERS
    type: Literal["assistant.transcript.final"]
    text: Text | None = None


class TranscriptUnavailable(CallEventBase):
    """The backend cannot transcribe this call."""

    sources = frozenset({"backend"})
    type: Literal["transcript.unavailable"]
    reason: Short | None = None


class ResponseInterrupted(CallEventBase):
    """The user spoke over the assistant; its audio was cut at ``audio_end_ms``."""

    sources = _REPORTERS
    type: Literal["response.interrupted"]
    audio_end_ms: Count | None = None


class Usage(CallEventBase):
    """What the backend reports it used."""

    sources = frozenset({"backend"})
    type: Literal["usage"]
    input_audio_s: Seconds | None = None
    output_audio_s: Seconds | None = None
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    # Billed classes that never overlap, each priced once (bridgehost.cost).
    text_input_tokens: Count | None = None
    audio_input_tokens: Count | None = None
    cached_input_tokens: Count | None = None
    text_output_tokens: Count | None = None
    audio_output_tokens: Count | None = None
    transcription_input_tokens: Count | None = None
    transcription_output_tokens: Count | None = None
    transcription_s: Seconds | None = None
    live_session_s: Seconds | None = None
    """Seconds of GPT-Live session time since the last report (billed per minute)."""


class ChatMessage(CallEventBase):
    """A message shown in the call's chat."""

    sources = _GATEWAY
    type: Literal["chat.message"]
    text: Text | None = None


class ChatNoteEvent(CallEventBase):
    """A message the caller typed in the Telegram chat during the call (``call.note`` from the
    bridge): the live voice model gets it as quoted data, and the handoff keeps it."""

    sources = _GATEWAY
    type: Literal["chat.note"]
    text: Text


class DelegationStarted(CallEventBase):
    """The voice model handed a question to Codex (the page shows "Asking Codex: …")."""

    sources = _GATEWAY
    type: Literal["delegation.started"]
    delegation_id: Short
    question: Text


class DelegationProgress(CallEventBase):
    """What Codex reports while it works on a delegation."""

    sources = _GATEWAY
    type: Literal["delegation.progress"]
    delegation_id: Short
    text: Text


class DelegationFinished(CallEventBase):
    """Codex answered a delegation (``ok``) or could not; the page shows "Codex answered"."""

    sources = _GATEWAY
    type: Literal["delegation.finished"]
    delegation_id: Short
    ok: bool
    answer: Text | None = None
    turn_id: Short | None = None


CallEvent = Annotated[
    CallStarted
    | CallStartFailed
    | CallIdleWarning
    | CallWarning
    | CallErrorEvent
    | CallEnded
    | Vad
    | UserTranscriptFinal
    | AssistantTranscriptFinal
    | TranscriptUnavailable
    | ResponseInterrupted
    | Usage
    | ChatMessage
    | ChatNoteEvent
    | DelegationStarted
    | DelegationProgress
    | DelegationFinished,
    Field(discriminator="type"),
]
"""Every call event, told apart by ``type``."""


@cache
def call_event_adapter() -> TypeAdapter[CallEvent]:
    """Validates any call event, told apart by ``type`` (built on first use, not at import)."""
    return TypeAdapter(CallEvent)


EVENT_MODELS: dict[str, type[CallEventBase]] = {
    get_args(model.model_fields["type"].annotation)[0]: model
    for model in get_args(get_args(CallEvent)[0])
}
"""Each event type's model."""

EVENT_TYPES = frozenset(EVENT_MODELS)

ACTIVITY_TYPES = frozenset(
    {"vad", "user.transcript.final", "assistant.transcript.final", "response.interrupted"}
)
"""Events that show someone is talking: they reset the idle timers."""


def validate_event(raw: Any, source: Source) -> dict[str, Any]:
    """Check one reported event and return its clean form (type plus known fields only)."""
    if not isinstance(raw, Mapping):
        raise EventError("an event must be a JSON object")
    kind = raw.get("type")
    model = EVENT_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise EventError(f"unknown event type {str(kind)[:64]!r}")
    if source not in model.sources:
        raise EventError(f"{source} may not send {kind!r}")
    present = {name: value for name, value in raw.items() if value is not None}
    try:
        event = model.model_validate(present)
    except ValidationError as exc:
        raise EventError(_describe(str(kind), exc.errors()[0])) from None
    clean = event.model_dump(exclude_none=True)
    if "client_at" in clean:  # after the fields, as the log has always had it
        clean["client_at"] = clean.pop("client_at")
    return clean


def _describe(kind: str, error: ErrorDetails) -> str:
    if kind == "vad" and error["loc"][:1] == ("state",):
        return "vad.state must be speech_started or speech_stopped"
    where, problem = describe_validation(error)
    return f"{kind}.{where} {problem}"


def counts_as_activity(event: Mapping[str, Any]) -> bool:
    """Whether an event shows someone is talking (it resets the idle timers)."""
    return event["type"] in ACTIVITY_TYPES
