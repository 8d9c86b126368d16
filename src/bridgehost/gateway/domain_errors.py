"""Why the gateway refuses a call or an arm, in the gateway's own terms (no HTTP here).

Domain code (the budget, the call registry, the call surface, the bridge hub) raises these;
:func:`bridgehost.gateway.errors.error_middleware` answers each with the status of
:data:`bridgehost.gateway.errors.DOMAIN_STATUS` and the JSON error shape
``{"error": {"code", "message"}}``. ``code`` is the stable machine code, ``message`` one sentence
a person can act on.
"""

from __future__ import annotations

from typing import ClassVar

from bridgehost.protocol.end_reasons import EndReason


class DomainError(Exception):
    """A refusal with a stable ``code`` (a class attribute) and a ``message`` for a person."""

    code: ClassVar[str]
    default_message: ClassVar[str | None] = None

    def __init__(self, message: str | None = None) -> None:
        text = message if message is not None else self.default_message
        if text is None:
            raise TypeError(f"{type(self).__name__} needs a message")
        super().__init__(text)
        self.message = text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class BudgetExhausted(DomainError):
    """Today's spending cap (``realtime.max_daily_cost_usd``) is reached."""

    code = EndReason.DAILY_COST_CAP.value


class CallConflict(DomainError):
    """Another call is already active or being prepared (the one-call rule)."""

    code = "call_in_progress"
    default_message = (
        "Another call is already active or being prepared. Hang it up or "
        "wait for it to end, then try again."
    )


class BridgeNotConnected(DomainError):
    """bridge-telegram's control channel is not connected."""

    code = "bridge_not_connected"
    default_message = (
        "The bridge control channel is not connected. Start bridge-telegram "
        "(systemctl start bridge-telegram) and check REALTIME_CONTROL_SECRET."
    )


class PrepareTimeout(DomainError):
    """The bridge did not answer ``call.prepare`` in time."""

    code = "prepare_timeout"
    default_message = (
        "The bridge did not prepare the call in time (it reads the bound "
        "Codex thread). Try again; if it keeps happening, check "
        "journalctl -u bridge-telegram."
    )


class TunnelFailed(DomainError):
    """The tunnel provider did not start, or started without a public URL."""

    code = "tunnel_failed"


class PublicUnreachable(DomainError):
    """The public Mini App origin did not answer through the tunnel in time."""

    code = "public_unreachable"


__all__ = [
    "BridgeNotConnected",
    "BudgetExhausted",
    "CallConflict",
    "DomainError",
    "PrepareTimeout",
    "PublicUnreachable",
    "TunnelFailed",
]
