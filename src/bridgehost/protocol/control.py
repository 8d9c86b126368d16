"""The gateway's local control API (``/control/*``): request and response bodies.

``bridgectl`` and the bridge daemon send these through :class:`bridgehost.gateway_api.GatewayApi`;
the gateway reads them in :mod:`bridgehost.gateway.routes_admin`. Every error is
:class:`ErrorResponse`. ``POST /control/arm`` answers JSON lines: any number of
:class:`ArmProgress`, then one :class:`ArmResult` or :class:`ErrorResponse`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bridgehost.protocol._errors import describe_validation
from bridgehost.protocol.end_reasons import EndReason

DEFAULT_ARM_SOURCE = "bridgectl"
DEFAULT_DISARM_REASON = "bridgectl"
MAX_REASON = 64

Reason = Annotated[str, Field(max_length=1000)]


class Body(BaseModel):
    """A control API body: strict types, unknown fields ignored."""

    # Validators are built on first use, not at import (see protocol.events.CallEventBase).
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, defer_build=True)

    hints: ClassVar[dict[str, str]] = {}
    """Per field, what it must be (the error message for any problem with that field)."""


class BodyError(ValueError):
    """A request body with an invalid field; the message names it and says what it must be."""


_Model = TypeVar("_Model", bound=Body)


def parse_body(model: type[_Model], body: Any) -> _Model:
    """``body`` (parsed JSON) as ``model``; :class:`BodyError` names the first bad field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        where, problem = describe_validation(exc.errors()[0])
        if not where:
            raise BodyError(f"The request body {problem}.") from None
        raise BodyError(f"'{where}' {model.hints.get(where, problem)}.") from None


class ErrorBody(Body):
    """``{"code", "message"}``: a stable machine code and a sentence a person can act on."""

    code: str
    message: str


class ErrorResponse(Body):
    """Every control API error."""

    error: ErrorBody


class ArmRequest(Body):
    """``POST /control/arm {source?}``: who arms (the surface's ``armed_by``)."""

    source: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")] = DEFAULT_ARM_SOURCE
    hints = {
        "source": "must be 1-32 letters, digits, '_', '.' or '-' (who arms: telegram, bridgectl…)"
    }


class ArmProgress(Body):
    """One progress line while the tunnel and the public origin come up."""

    progress: str


class ArmResult(Body):
    """The last line of a successful arm: the surface (``armed``, ``launch_url``…)."""

    result: dict[str, Any]


class DisarmRequest(Body):
    """``POST /control/disarm {reason?}``: why (recorded on the surface)."""

    reason: Reason | None = None

    hints = {"reason": "must be a string, such as 'bridgectl'"}

    @property
    def effective_reason(self) -> str:
        """The reason cut to 64 characters; ``bridgectl`` when none was given."""
        return (self.reason or "")[:MAX_REASON] or DEFAULT_DISARM_REASON


class DisarmResponse(Body):
    """The surface is disarmed."""

    armed: Literal[False] = False
    reason: str


class HangupRequest(Body):
    """``POST /control/hangup {call_id?, reason?}``: end the live call (only if it is
    ``call_id``); ``reason`` defaults to ``operator_hangup``."""

    call_id: Annotated[str, Field(max_length=64)] | None = None
    reason: Reason | None = None

    hints = {"reason": "must be a string, such as 'operator_hangup'"}

    @field_validator("reason")
    @classmethod
    def _short(cls, value: str | None) -> str | None:
        return value[:MAX_REASON] if value else None

    @property
    def effective_reason(self) -> str:
        """The reason to record on the call."""
        return self.reason or EndReason.OPERATOR_HANGUP


class HangupResponse(Body):
    """The call is ending with ``reason``."""

    ok: Literal[True] = True
    call_id: str
    reason: str | None
