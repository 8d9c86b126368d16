"""Answering the gateway's ``call.prepare``: may this call start, and with what context?

Refusals are sentences that name the fix ("No Codex thread is bound. Run: bridgectl bind
--latest"); the gateway shows them to the caller as they are. Context is the plugins'
``bridgehost_call_context`` parts, gathered in parallel through the plugin host, each within the
call's context budget (the builtin ``codex`` plugin's are the bound thread's recent turns), and
the notes the user queued in the chat before the call. When the time is up the answer goes out
with what has arrived; the rest is logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from bridgehost.basics import iso, utc_now
from bridgehost.providers import CallInfo, ContextPart
from bridgehost.state import validate_call_id
from bridgehost.telegram import invites

if TYPE_CHECKING:
    from bridgehost.telegram.runtime import BridgeRuntime

log = structlog.get_logger("bridgehost.telegram.prepare")

NOTES_MAX_AGE = timedelta(hours=24)
"""Notes queued longer ago than this are not brought into a call."""
NOTES_PRIORITY = 70

NOT_BOUND = "No Codex thread is bound. Run: bridgectl bind --latest"
DESKTOP_OWNS = "The desktop owns the session. Run: bridgectl claim"
DISABLED = (
    "Live calls are switched off on the bridge. Set enabled = true under [realtime] "
    "in bridge.config.toml and restart bridge-telegram."
)
WRONG_USER = (
    "This Telegram account is not the one this bridge serves. Start the call from "
    "the bridge's own chat."
)
MALFORMED = (
    "The gateway sent a malformed prepare request. Update bridge-gateway and "
    "bridge-telegram to the same version."
)


def context_budget_s(startup_timeout_ms: int) -> float:
    """How long context may take: well inside the gateway's own wait for the answer
    (``min(max(startup_timeout, 5 s), 30 s)``), at most 15 s."""
    gateway_wait = min(max(startup_timeout_ms / 1000, 5.0), 30.0)
    return max(1.0, min(15.0, gateway_wait * 0.6))


def refusal(rt: BridgeRuntime, call: Mapping[str, Any]) -> str | None:
    """Why this call may not start, as a sentence with its fix; None when it may."""
    call_id, user = call.get("call_id"), call.get("telegram_user_id")
    try:
        validate_call_id(call_id)  # type: ignore[arg-type]
    except ValueError:
        return MALFORMED
    if not rt.config.realtime.enabled:
        return DISABLED
    if isinstance(user, int) and user != rt.config.telegram.authorized_chat_id:
        return WRONG_USER
    view = rt.binding_view()
    if not view["thread_id"]:
        return NOT_BOUND
    if view["owner"] != "telegram":
        return DESKTOP_OWNS
    return None


def _notes_part(notes: list[str]) -> ContextPart | None:
    if not notes:
        return None
    return ContextPart(
        "Notes the user sent in Telegram before the call",
        "\n".join(f"- {note}" for note in notes),
        NOTES_PRIORITY,
    )


async def gather_context(
    rt: BridgeRuntime, info: CallInfo, notes: list[str], *, budget_s: float
) -> list[ContextPart]:
    """The plugins' parts (Codex's included) and the notes, highest priority first; a plugin
    not ready after ``budget_s`` is left out."""
    parts = await rt.host.call_context(info, rt.config, timeout_s=budget_s)
    if note_part := _notes_part(notes):
        parts.append(note_part)
    return sorted(parts, key=lambda p: -p.priority)


def part_json(part: ContextPart) -> dict[str, Any]:
    """A part as it travels to the gateway."""
    return {"title": part.title, "text": part.text, "priority": part.priority}


async def prepare_call(rt: BridgeRuntime, call: Mapping[str, Any]) -> dict[str, Any]:
    """The body of ``call.prepare.result`` (without ``reply_to``) for one prepare request."""
    reason = refusal(rt, call)
    call_id = str(call.get("call_id"))
    if reason is not None:
        log.info("refused to prepare a call", call_id=call_id, reason=reason)
        return {"allowed": False, "reason": reason, "context": {"parts": []}}
    view = rt.binding_view()
    user = call.get("telegram_user_id")
    user_id = user if isinstance(user, int) else None
    rt.store.set_call_details(call_id, thread_id=view["thread_id"], telegram_user_id=user_id)
    since = iso(utc_now() - NOTES_MAX_AGE) or ""
    notes = rt.store.claim_queued_notes(call_id, since=since)
    info = CallInfo(
        call_id=call_id,
        bridge_id=rt.config.realtime.bridge_id,
        telegram_user_id=user_id,
        thread_id=view["thread_id"],
    )
    parts = await gather_context(
        rt, info, notes, budget_s=context_budget_s(rt.config.realtime.startup_timeout_ms)
    )
    parts = invites.leading_parts(rt, call_id) + parts
    log.info("prepared a call", call_id=call_id, parts=len(parts), notes=len(notes))
    return {"allowed": True, "reason": None, "context": {"parts": [part_json(p) for p in parts]}}
