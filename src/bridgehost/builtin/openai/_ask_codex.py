"""The ask-Codex function tool of the ``openai`` Realtime backend.

Realtime has no delegation of its own, so the session declares one function tool,
:data:`ASK_CODEX_TOOL`, that says it asks the coding agent (Codex). When the model calls it,
``response.function_call_arguments.done`` carries the ``call_id`` and the ``question``; the
session hands a :class:`~bridgehost.delegation.DelegationRequest` (with the ``call_id`` as its
delegation id) to the gateway, which runs the same delegation path as GPT-Live (queue, timeout,
read-only sandbox, handoff). The answer goes back as a ``conversation.item.create`` of a
``function_call_output`` with the same ``call_id``, followed by ``response.create`` so the
model says it (:func:`answer_events`).

Barge-in: when the caller starts speaking again (``input_audio_buffer.speech_started``) while
an ask-Codex call is still open, the call is cancelled: its output says so
(:func:`cancel_events`, with no ``response.create``, since the model is about to answer the
caller's new words and may call the tool again), and the gateway stops the Codex turn. A new
ask-Codex call while an earlier one is open is merged with it by the gateway (a correction).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bridgehost.delegation import MAX_QUESTION, DelegationRequest

ASK_CODEX = "ask_codex"
"""The function's name."""
ASK_CODEX_TOOL: dict[str, Any] = {
    "type": "function",
    "name": ASK_CODEX,
    "description": "Ask the user's coding agent (Codex), which works in their project and its "
    "bound thread, a question about the code, the files, tests, errors or the work done so far. "
    "Say briefly that you are asking Codex first; the answer comes back as this call's output.",
    "parameters": {
        "type": "object",
        "properties": {
            "question": {
                "type": "string",
                "description": "The caller's question for Codex, complete and self-contained",
            }
        },
        "required": ["question"],
        "additionalProperties": False,
    },
}
INSTRUCTIONS = (
    "\n\n## Asking Codex\nWhen the caller asks about the code, the project or the work done so "
    "far, call ask_codex with their question instead of guessing, then say its answer in your "
    "own words. Never invent what Codex found; if it reports a failure, say so plainly."
)
"""Appended to the call's instructions when the tool is declared."""


def delegation_from(event: Mapping[str, Any]) -> DelegationRequest | None:
    """The request in a ``response.function_call_arguments.done`` for :data:`ASK_CODEX`."""
    if event.get("type") != "response.function_call_arguments.done":
        return None
    if event.get("name") not in (None, ASK_CODEX):
        return None
    call_id = event.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        return None
    try:
        arguments = json.loads(event.get("arguments") or "{}")
    except ValueError:
        arguments = {}
    question = arguments.get("question") if isinstance(arguments, dict) else None
    text = " ".join(question.split())[:MAX_QUESTION] if isinstance(question, str) else ""
    return DelegationRequest(delegation_id=call_id, question=text or "(no question given)")


BARGED_IN = "cancelled: the caller spoke again before Codex answered; ask again if still needed"
"""The output of an ask-Codex call the caller talked over."""


def cancel_events(call_id: str) -> list[dict[str, Any]]:
    """The output of an ask-Codex call the caller talked over (no ``response.create``)."""
    output = json.dumps({"ok": False, "error": BARGED_IN})
    return [
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call_id, "output": output},
        }
    ]


def answer_events(call_id: str, text: str, *, ok: bool) -> list[dict[str, Any]]:
    """The function call's output item, then ``response.create`` so the model speaks."""
    output = json.dumps({"ok": ok, "answer": text} if ok else {"ok": ok, "error": text})
    return [
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call_id, "output": output},
        },
        {"type": "response.create"},
    ]


__all__ = [
    "ASK_CODEX",
    "ASK_CODEX_TOOL",
    "BARGED_IN",
    "INSTRUCTIONS",
    "answer_events",
    "cancel_events",
    "delegation_from",
]
