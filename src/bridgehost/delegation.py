"""Delegation during a call: what a backend session and the gateway exchange.

A voice model that wants the coding agent to look something up *delegates*: GPT-Live sends
``session.delegation.created``, OpenAI Realtime calls the ask-Codex function tool. The backend
session turns either into one :class:`DelegationRequest` and hands it to ``on_delegation`` (set
by the gateway, like ``Tunnel.on_url_change``). The gateway asks the bridge, which runs a turn
on the bound Codex thread, and answers through the session's :meth:`DelegatingSession.
delegation_progress` and :meth:`DelegatingSession.delegation_result`.

A backend that cannot delegate simply lacks these members; the gateway checks with
:func:`supports_delegation`.

Corrections and barge-in. A request that arrives while an earlier one of the same call is still
unanswered is taken as the caller correcting or adding to it: the gateway merges the two into
one new revision and cancels the older one (:data:`CancelReason` ``corrected``). A backend that
can tell the caller talked over a running request (Realtime: ``input_audio_buffer.
speech_started`` while the ask-Codex call is open) also has ``on_delegation_cancel``
(:class:`CancellingSession`); the gateway sets it, and the request is cancelled (``barge_in``).
A cancelled or timed-out request interrupts its Codex turn, or leaves the thread's line if it
was still waiting there; when the call ends, a running turn goes on and its answer goes to the
chat.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

MAX_SPOKEN_TOKENS = 500
"""GPT-Live's limit for one append (``content`` at most 500 tokens)."""
CHARS_PER_TOKEN = 3.5
"""A cautious estimate for English prose, so the spoken answer stays under the limit."""
MAX_QUESTION = 4000


@dataclass(frozen=True, slots=True)
class DelegationRequest:
    """One piece of work the voice model handed to the coding agent.

    :param delegation_id: the backend's id (GPT-Live's ``delegation.id``, Realtime's
        ``call_id``); every answer names it.
    :param question: what the caller asked, in their words.
    :param transcript: the conversation up to the request, for context.
    :param revision: 1 for a new request; higher when the caller corrected a running one.
    """

    delegation_id: str
    question: str
    transcript: str = ""
    revision: int = 1


OnDelegation = Callable[[DelegationRequest], Awaitable[None]]
OnDelegationCancel = Callable[[str], Awaitable[None]]
"""Called with the delegation id the caller talked over (the request is no longer wanted)."""
CancelReason = Literal["corrected", "barge_in", "timeout", "call_ended"]
"""Why a delegation was cancelled; every reason but ``call_ended`` stops its Codex turn."""


@runtime_checkable
class DelegatingSession(Protocol):
    """A backend session that can hand work to the coding agent during the call."""

    on_delegation: OnDelegation | None

    async def delegation_progress(self, delegation_id: str, text: str) -> None:
        """Quiet progress the voice model may use (not spoken on arrival)."""

    async def delegation_result(self, delegation_id: str, text: str, *, ok: bool) -> None:
        """The answer (or the failure) the voice model should say, speakable and short."""


@runtime_checkable
class CancellingSession(Protocol):
    """A delegating session that can tell when the caller talked over a running request."""

    on_delegation_cancel: OnDelegationCancel | None


def supports_delegation(session: object) -> bool:
    """Whether a backend session can delegate (it has the :class:`DelegatingSession` members)."""
    return isinstance(session, DelegatingSession)


_CODE_BLOCK = re.compile(r"```.*?(```|$)", re.DOTALL)
_MARKUP = re.compile(r"[*_#>`|]+")


def speakable(text: str, *, max_tokens: int = MAX_SPOKEN_TOKENS) -> str:
    """``text`` made fit to be said aloud: no code blocks or markup, at most ``max_tokens``
    (estimated), cut at a sentence end when it must be cut."""
    plain = _CODE_BLOCK.sub(" (code is in the chat) ", text)
    plain = _MARKUP.sub("", plain)
    plain = " ".join(plain.split())
    limit = int(max_tokens * CHARS_PER_TOKEN) - 40
    if len(plain) <= limit:
        return plain
    cut = plain[:limit]
    end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
    cut = cut[: end + 1] if end > limit // 2 else cut.rsplit(" ", 1)[0] + "…"
    return cut + " The full answer is in the chat."


__all__ = [
    "MAX_SPOKEN_TOKENS",
    "CancelReason",
    "CancellingSession",
    "DelegatingSession",
    "DelegationRequest",
    "OnDelegation",
    "OnDelegationCancel",
    "speakable",
    "supports_delegation",
]
