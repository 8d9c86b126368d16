"""Approvals in the chat: Codex asks to run a command or apply a patch, the person decides.

:meth:`Approvals.ask` sends the request with Approve and Deny buttons (callback data
``appr:<id>:approve`` / ``appr:<id>:deny``) and waits for a tap; no tap within
``[telegram] approval_timeout_s`` means deny. The message is then edited to say what was decided.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any

import structlog
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, ContextTypes

from bridgehost.telegram.sending import deliver, edit_text, send_text

if TYPE_CHECKING:
    from bridgehost.codex.turns import ApprovalRequest, Decision

log = structlog.get_logger("bridgehost.telegram.approvals")

PREFIX = "appr:"


def describe(request: ApprovalRequest) -> str:
    """The question as the chat shows it."""
    what = "run a command" if request.kind == "command" else "change files"
    lines = [f"🔐 Codex asks to {what}:", request.summary]
    if request.reason and request.reason != request.summary:
        lines.append(f"Why: {request.reason}")
    if request.cwd:
        lines.append(f"In: {request.cwd}")
    return "\n".join(lines)


class Approvals:
    """Open approval questions of one chat."""

    def __init__(self, bot: Bot, chat_id: int, timeout_s: float) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._open: dict[str, asyncio.Future[Decision]] = {}

    async def ask(self, request: ApprovalRequest) -> Decision:
        """Ask in the chat and wait for the answer (deny when none comes in time)."""
        key = f"{next(self._ids)}"
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("✅ Approve", callback_data=f"{PREFIX}{key}:approve"),
                    InlineKeyboardButton("⛔ Deny", callback_data=f"{PREFIX}{key}:deny"),
                ]
            ]
        )
        question = describe(request)
        message = await send_text(self.bot, self.chat_id, question, markup=markup)
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._open[key] = future
        timed_out = False
        try:
            decision = await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            decision, timed_out = "deny", True
        finally:
            self._open.pop(key, None)
        if timed_out:
            verdict = f"⛔ Denied: no answer within {self.timeout_s:g} s."
        else:
            verdict = "✅ Approved." if decision == "approve" else "⛔ Denied."
        if message is not None:
            await edit_text(self.bot, message, f"{question}\n\n{verdict}")
        log.info("approval decided", kind=request.kind, decision=decision, timed_out=timed_out)
        return decision

    def answer(self, key: str, decision: Decision) -> bool:
        """A tap on a button; False when that question is no longer open."""
        future = self._open.get(key)
        if future is None or future.done():
            return False
        future.set_result(decision)
        return True

    async def on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The ``appr:`` callback query handler."""
        query = update.callback_query
        if query is None or not query.data:
            return
        key, _, choice = query.data.removeprefix(PREFIX).partition(":")
        decision: Decision = "approve" if choice == "approve" else "deny"
        found = self.answer(key, decision)
        await deliver(
            "answerCallbackQuery",
            lambda: query.answer(None if found else "This question is no longer open."),
        )

    def handler(self) -> CallbackQueryHandler[Any, Any]:
        """The handler to add to the application."""
        return CallbackQueryHandler(self.on_callback, pattern=f"^{PREFIX}")
