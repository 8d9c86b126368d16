"""Requests and answers of the bridge's local invite socket (``bridgectl`` and ``bridgehost mcp``
to ``bridge-telegram``).

Routes: ``POST /invite`` (:class:`InviteRequest`), ``POST /message`` (:class:`MessageRequest`),
``POST /ask`` (:class:`AskRequest`), ``GET /invites`` (:class:`RecentInvites`). Every answer to
a valid request is an :class:`Outcome` with HTTP 200 (a refusal by the rules is an outcome, not
an error); bad requests get ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Origin = Literal["agent", "operator"]
"""Who asked: the agent through ``bridgehost mcp``, or the operator through ``bridgectl``."""
Urgency = Literal["low", "normal", "high"]

MAX_REASON = 500
MAX_TEXT = 3500
MAX_OPTIONS = 6
MAX_OPTION = 40


class OutcomeKind(StrEnum):
    """What happened to a request; the tools' results start with it."""

    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    REPLACED = "replaced"
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    QUIET_HOURS = "quiet_hours"
    RATE_LIMITED = "rate_limited"
    BUDGET_SPENT = "budget_spent"
    NOT_READY = "not_ready"
    FAILED = "failed"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    origin: Origin = "operator"


def _not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


class InviteRequest(_Request):
    """Ask the person for a call; ``wait_s`` > 0 waits that long for Start or Not now."""

    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON)]
    urgency: Urgency = "normal"
    wait_s: Annotated[float, Field(ge=0, le=900)] = 0.0

    _reason = field_validator("reason")(_not_blank)


class MessageRequest(_Request):
    """Post a text to the chat."""

    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]

    _text = field_validator("text")(_not_blank)


class AskRequest(_Request):
    """Ask a question with buttons; wait up to ``timeout_s`` (default ``[invites]``) for one."""

    question: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    options: Annotated[list[str], Field(min_length=1, max_length=MAX_OPTIONS)]
    timeout_s: Annotated[float, Field(gt=0, le=900)] | None = None

    _question = field_validator("question")(_not_blank)

    @field_validator("options")
    @classmethod
    def _options(cls, values: list[str]) -> list[str]:
        cleaned = [value.strip() for value in values]
        if any(not value or len(value) > MAX_OPTION for value in cleaned):
            raise ValueError(f"every option must have 1 to {MAX_OPTION} characters")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("options must differ from each other")
        return cleaned


class Outcome(BaseModel):
    """What happened, in a sentence, with the invite's details when one was sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: OutcomeKind
    detail: str
    invite_id: str | None = None
    launch_url: str | None = None
    expires_at: str | None = None
    choice: str | None = None


class InviteView(BaseModel):
    """One invite as ``GET /invites`` and ``/call status`` show it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    invite_id: str
    origin: Origin
    reason: str
    urgency: Urgency
    status: str
    created_at: str
    expires_at: str
    call_id: str | None = None


class RecentInvites(BaseModel):
    """``GET /invites``: newest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    invites: list[InviteView]
