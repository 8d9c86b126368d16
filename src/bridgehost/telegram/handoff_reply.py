"""After a call: the agent's answer to the handoff, posted in the chat below the recap.

With ``handoff.codex_mode = "turn"`` the ``codex`` sink runs a turn with the handoff in the bound
thread, through the bridge's own app-server connection (the conversation's
:class:`~bridgehost.codex.turns.TurnRunner`, shared with :meth:`TurnRunner.share`), and its
receipt ``codex:<thread>:turn:<status>:<turn id>`` names that turn. :class:`HandoffReplies`
watches the outbox: once the codex delivery has a turn and the ``telegram`` sink's recap is in
the chat (receipt ``telegram:<chat>:<message id>``; or that sink is not used), it waits for the
turn to finish and posts the agent's final answer, rendered like every answer, as a reply to the
recap. Each call's answer is posted once (the calls answered are kept in ``bridge.db``), also
across restarts; deliveries older than :data:`REPLY_WINDOW` are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from bridgehost.basics import iso, utc_now
from bridgehost.codex import CodexError
from bridgehost.codex.turns import final_text

if TYPE_CHECKING:
    from bridgehost.codex.turns import TurnRunner
    from bridgehost.state.bridge_store import BridgeStore

log = structlog.get_logger("bridgehost.telegram.handoff_reply")

POLL_EVERY_S = 1.0
"""How often the outbox is looked at for a handoff turn whose answer is not posted yet."""
REPLY_WINDOW = timedelta(hours=6)
"""Handoff turns delivered longer ago than this are not answered in the chat any more."""
POSTED_KEY = "handoff_replies_posted"
KEEP_POSTED = 200

Post = Callable[[str, int | None], Awaitable[None]]
"""Posts Markdown in the chat, as a reply to a message id (or not)."""


@dataclass(frozen=True, slots=True)
class HandoffTurn:
    """A call's handoff turn in the bound thread, and the recap to answer below."""

    call_id: str
    thread_id: str
    turn_id: str
    recap_message_id: int | None


def _turn_of(receipt: str | None) -> tuple[str, str] | None:
    """``(thread id, turn id)`` from a codex receipt ``codex:<thread>:turn:<status>:<turn>``."""
    parts = (receipt or "").split(" ", 1)[0].split(":")
    if len(parts) >= 5 and parts[0] == "codex" and parts[2] == "turn" and parts[4]:
        return parts[1], parts[4]
    return None


def _message_of(receipt: str | None) -> int | None:
    """The message id from a telegram receipt ``telegram:<chat>:<message id>``."""
    parts = (receipt or "").split(":")
    if len(parts) == 3 and parts[0] == "telegram" and parts[2].isdigit():
        return int(parts[2])
    return None


class HandoffReplies:
    """Posts each call's handoff answer once; see the module docstring."""

    def __init__(self, store: BridgeStore, runner: TurnRunner, post: Post) -> None:
        self.store = store
        self.runner = runner
        self.post = post

    def _posted(self) -> list[str]:
        value = self.store.db.get_setting(POSTED_KEY, [])
        return [str(v) for v in value] if isinstance(value, list) else []

    def _mark_posted(self, call_id: str) -> None:
        with self.store.db.transaction():
            posted = [c for c in self._posted() if c != call_id] + [call_id]
            self.store.db.set_setting(POSTED_KEY, posted[-KEEP_POSTED:])

    def due(self) -> list[HandoffTurn]:
        """Handoff turns whose answer is not in the chat yet and whose recap is (or no recap
        comes)."""
        since = iso(utc_now() - REPLY_WINDOW)
        rows = self.store.db.query(
            "SELECT call_id, sink, status, receipt FROM handoff_outbox WHERE call_id IN "
            "(SELECT call_id FROM handoff_outbox WHERE sink = 'codex' AND status = 'delivered' "
            "AND delivered_at >= ?) ORDER BY created_at",
            (since,),
        )
        by_call: dict[str, dict[str, Any]] = {}
        for row in rows:
            by_call.setdefault(str(row["call_id"]), {})[str(row["sink"])] = dict(row)
        posted = set(self._posted())
        due: list[HandoffTurn] = []
        for call_id, sinks in by_call.items():
            turn = _turn_of(sinks["codex"]["receipt"])
            if call_id in posted or turn is None:
                continue
            recap = sinks.get("telegram")
            if recap is not None and recap["status"] != "delivered":
                if recap["status"] != "failed":
                    continue  # the recap comes first
                recap = None
            recap_id = _message_of(recap["receipt"]) if recap else None
            due.append(HandoffTurn(call_id, turn[0], turn[1], recap_id))
        return due

    async def answer(self, turn: HandoffTurn) -> bool:
        """Post the answer when the turn has finished; False while it still runs."""
        found = await self.runner.read_turn(turn.thread_id, turn.turn_id)
        status = str(found.get("status")) if found else "missing"
        if status == "inProgress":
            return False
        text = final_text(found) if found else ""
        if status == "failed":
            text = "⚠️ Codex could not answer the handoff: the turn failed."
        elif status == "missing":
            text = ""
        elif not text:
            text = "(Codex gave no answer to the handoff.)"
        if text:
            await self.post(text, turn.recap_message_id)
        self._mark_posted(turn.call_id)
        log.info(
            "handoff answer posted",
            call_id=turn.call_id,
            turn_id=turn.turn_id,
            status=status,
            chars=len(text),
        )
        return True

    async def run(self) -> None:
        """Look for handoff answers to post, forever (cancel to stop)."""
        while True:
            for turn in self.due():
                with contextlib.suppress(CodexError):  # Codex is away: next round
                    await self.answer(turn)
            await asyncio.sleep(POLL_EVERY_S)


__all__ = ["HandoffReplies", "HandoffTurn"]
