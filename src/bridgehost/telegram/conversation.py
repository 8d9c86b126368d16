"""The chat as a conversation with the bound Codex thread.

A message from the authorized chat outside a call is kept in the inbox
(:mod:`bridgehost.state.chat_inbox`) first, then becomes a turn in the bound thread
(:class:`bridgehost.codex.turns.TurnRunner`). Messages are answered one at a time, in order: one
that arrives while a turn runs waits in line (the chat is told it is queued). The answer streams
into a placeholder message (typing action, edits at most every :data:`EDIT_EVERY_S`), then is
rendered as Telegram HTML (:mod:`bridgehost.telegram.rendering`).

Exactly once: a message is marked done only when its answer is in the chat. One that cannot
reach Codex (app-server down, thread gone) stays in the inbox, the chat is told, and it is tried
again every :data:`RETRY_EVERY_S`; after a restart, a retry first looks for a turn that already
carries the message (``clientUserMessageId`` ``tg-<update id>``) and posts that answer instead of
asking again.

Commands: ``/new`` (a new thread, bound), ``/threads`` (recent threads, ``bind:`` buttons),
``/stop`` (``turn/interrupt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from bridgehost.codex import CodexError
from bridgehost.codex.threads import list_threads
from bridgehost.codex.turns import ApprovalRequest, Decision, TurnInput, TurnResult, TurnRunner
from bridgehost.state.chat_inbox import ChatInbox, InboxEntry
from bridgehost.telegram.approvals import Approvals
from bridgehost.telegram.handoff_reply import HandoffReplies
from bridgehost.telegram.rendering import preview, render
from bridgehost.telegram.sending import deliver, edit_text, send_text

if TYPE_CHECKING:
    from bridgehost.telegram.runtime import BridgeRuntime

log = structlog.get_logger("bridgehost.telegram.conversation")

EDIT_EVERY_S = 1.5
"""Least time between two edits of a streaming answer (Telegram allows about one a second)."""
TYPING_EVERY_S = 4.0
"""Telegram shows "typing…" for about 5 s per sendChatAction."""
RETRY_EVERY_S = 5.0
"""How often a message that could not reach Codex is tried again."""
PLACEHOLDER = "⏳ Codex is working on it…"
BIND_PREFIX = "bind:"


def message_key(update_id: int) -> str:
    """The ``clientUserMessageId`` of the turn carrying a chat message."""
    return f"tg-{update_id}"


class _Stream:
    """Streams one answer into its placeholder: typing, rate-limited edits."""

    def __init__(self, bot: Bot, chat_id: int, placeholder: Message | None, approvals: Approvals):
        self.bot = bot
        self.chat_id = chat_id
        self.placeholder = placeholder
        self.approvals = approvals
        self.text = ""
        self._last_edit = 0.0
        self._last_typing = 0.0
        self._shown = ""

    async def typing(self) -> None:
        now = time.monotonic()
        if now - self._last_typing >= TYPING_EVERY_S:
            self._last_typing = now
            await deliver(
                "sendChatAction",
                lambda: self.bot.send_chat_action(chat_id=self.chat_id, action=ChatAction.TYPING),
                attempts=1,
            )

    async def on_delta(self, text: str) -> None:
        self.text += text
        await self.typing()
        now = time.monotonic()
        shown = preview(self.text)
        due = now - self._last_edit >= EDIT_EVERY_S
        if self.placeholder is not None and due and shown != self._shown:
            self._last_edit, self._shown = now, shown
            await edit_text(self.bot, self.placeholder, shown)

    async def on_approval(self, request: ApprovalRequest) -> Decision:
        return await self.approvals.ask(request)


class Conversation:
    """The chat's conversation with the bound thread (one per daemon)."""

    def __init__(self, rt: BridgeRuntime, runner: TurnRunner, bot: Bot) -> None:
        self.rt = rt
        self.runner = runner
        self.bot = bot
        self.inbox = ChatInbox(rt.store)
        self.approvals = Approvals(bot, rt.chat_id, rt.config.telegram.approval_timeout_s)
        self._wake = asyncio.Event()
        self._busy: int | None = None
        self._told_unreachable: set[int] = set()
        runner.share(rt.config.codex.home)  # the codex sink appends handoffs through it
        self.handoff_replies = HandoffReplies(rt.store, runner, self.post_reply)

    # -- intake ---------------------------------------------------------------------------

    async def accept(self, update_id: int, payload: dict[str, Any], reply_to: int | None) -> None:
        """Keep a chat message and wake the worker; say so when it has to wait."""
        ahead = len(self.inbox.pending())
        if not self.inbox.add(update_id, {**payload, "reply_to": reply_to}):
            return
        if ahead:
            await send_text(
                self.bot,
                self.rt.chat_id,
                f"🕒 Queued: {ahead} message(s) ahead of this one.",
                reply_to=reply_to,
            )
        self._wake.set()

    def thread_id(self) -> str | None:
        """The bound thread."""
        bound = self.rt.binding_view()["thread_id"]
        return str(bound) if bound else None

    # -- the worker -------------------------------------------------------------------------

    async def run(self) -> None:
        """Answer inbox messages in order, and post handoff answers, forever (cancel to stop)."""
        replies = asyncio.create_task(self.handoff_replies.run(), name="handoff-replies")
        try:
            await self._answer_inbox()
        finally:
            replies.cancel()
            await asyncio.gather(replies, return_exceptions=True)

    async def _answer_inbox(self) -> None:
        while True:
            self._wake.clear()
            entries = self.inbox.pending()
            retry = False
            for entry in entries:
                if not await self._handle(entry):
                    retry = True
                    break
            if retry:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), RETRY_EVERY_S)
            elif not entries:
                await self._wake.wait()

    async def _handle(self, entry: InboxEntry) -> bool:
        """Answer one message; False when Codex could not be reached (kept for a retry)."""
        self._busy = entry.update_id
        try:
            result = await self._answer(entry)
        except CodexError as exc:
            attempts = self.inbox.failed(entry.update_id, str(exc))
            log.warning(
                "codex unreachable; message kept", update_id=entry.update_id, error=str(exc)
            )
            if entry.update_id not in self._told_unreachable:
                self._told_unreachable.add(entry.update_id)
                await send_text(
                    self.bot,
                    self.rt.chat_id,
                    f"⚠️ Codex is not reachable right now ({exc}). I kept your message and "
                    f"will try again every {RETRY_EVERY_S:g} s (attempt {attempts}).",
                    reply_to=entry.payload.get("reply_to"),
                )
            return False
        finally:
            self._busy = None
        await self._post(entry, result)
        self.inbox.done(entry.update_id)
        self._told_unreachable.discard(entry.update_id)
        return True

    async def _answer(self, entry: InboxEntry) -> tuple[TurnResult, Message | None]:
        thread_id = self.thread_id()
        if thread_id is None:
            thread_id = await self.runner.start_thread(await self._workspace())
            self.rt.store.bind(thread_id)
            log.info("started and bound a thread for the chat", thread_id=thread_id)
        key = message_key(entry.update_id)
        placeholder = await self._placeholder(entry)
        if entry.attempts or entry.placeholder_id is not None:
            earlier = await self.runner.find_turn(thread_id, key)
            if earlier is not None:
                return earlier, placeholder
        stream = _Stream(self.bot, self.rt.chat_id, placeholder, self.approvals)
        await stream.typing()
        inputs = [TurnInput.of_text(entry.payload.get("text") or "")]
        inputs += [TurnInput.of_image(p) for p in entry.payload.get("images") or []]
        inputs = [i for i in inputs if i.kind == "image" or i.text]
        result = await self.runner.run(
            thread_id, inputs, stream, approval_policy="untrusted", client_message_id=key
        )
        return result, placeholder

    async def _placeholder(self, entry: InboxEntry) -> Message | None:
        if entry.placeholder_id is not None:
            return Message.de_json(
                {
                    "message_id": entry.placeholder_id,
                    "date": int(time.time()),
                    "chat": {"id": self.rt.chat_id, "type": "private"},
                },
                self.bot,
            )
        sent = await send_text(
            self.bot, self.rt.chat_id, PLACEHOLDER, reply_to=entry.payload.get("reply_to")
        )
        if sent is not None:
            self.inbox.set_placeholder(entry.update_id, sent.message_id)
        return sent

    async def _post(self, entry: InboxEntry, answer: tuple[TurnResult, Message | None]) -> None:
        result, placeholder = answer
        if result.status == "interrupted":
            text = result.text + "\n\n⏹ Stopped." if result.text else "⏹ Stopped."
        elif result.status == "failed":
            text = f"⚠️ The turn failed: {result.error or 'no reason given'}"
        else:
            text = result.text or "(Codex gave no answer.)"
        await self.post_markdown(text, placeholder)

    async def post_reply(self, text: str, reply_to: int | None) -> None:
        """Post ``text`` (Markdown) in the chat, its first message a reply to ``reply_to``."""
        await self.post_markdown(text, reply_to=reply_to)

    async def post_markdown(
        self, text: str, placeholder: Message | None = None, *, reply_to: int | None = None
    ) -> None:
        """Post ``text`` (Markdown) in the chat: into ``placeholder`` first, when given; the
        first new message answers ``reply_to``, when given."""
        rendered = render(text)
        for index, chunk in enumerate(rendered.messages):
            if index == 0 and placeholder is not None and await self._replace(placeholder, chunk):
                continue
            kwargs: dict[str, Any] = {}
            if index == 0 and reply_to is not None:
                kwargs["reply_parameters"] = ReplyParameters(
                    reply_to, allow_sending_without_reply=True
                )
            await deliver(
                "sendMessage",
                lambda chunk=chunk, kwargs=kwargs: self.bot.send_message(  # type: ignore[misc]
                    chat_id=self.rt.chat_id, text=chunk, parse_mode=ParseMode.HTML, **kwargs
                ),
            )
        for document in rendered.documents:
            await deliver(
                "sendDocument",
                lambda document=document: self.bot.send_document(  # type: ignore[misc]
                    chat_id=self.rt.chat_id,
                    document=document.content.encode(),
                    filename=document.filename,
                ),
            )

    async def _replace(self, message: Message, html_text: str) -> bool:
        """Edit ``message`` to ``html_text``; True when it shows that text now."""

        async def edit() -> bool:
            try:
                await self.bot.edit_message_text(
                    text=html_text,
                    chat_id=message.chat_id,
                    message_id=message.message_id,
                    parse_mode=ParseMode.HTML,
                )
            except BadRequest as exc:
                if "message is not modified" in exc.message.lower():
                    return True
                raise
            return True

        return bool(await deliver("editMessageText", edit))

    async def _workspace(self) -> str | None:
        home = Path.home()
        return str(home) if home.is_dir() else None

    async def workspace_inbox(self) -> Path:
        """Where documents from the chat are saved (``[telegram] inbox_dir``)."""
        configured = Path(self.rt.config.telegram.inbox_dir).expanduser()
        if configured.is_absolute():
            return configured
        thread_id = self.thread_id()
        cwd = await self.runner.thread_cwd(thread_id) if thread_id else None
        return Path(cwd or Path.home()) / configured

    # -- status and commands ------------------------------------------------------------------

    def status_line(self) -> str:
        """One line for ``/status``: the thread, the running turn and its age."""
        thread_id = self.thread_id()
        if thread_id is None:
            return "Conversation: no thread yet (your next message starts one; /new too)."
        running = self.runner.running(thread_id)
        queued = max(0, len(self.inbox.pending()) - (1 if running else 0))
        turn = (
            f"turn {running.turn_id or '(starting)'} running for {running.age_s:.0f} s"
            if running
            else "no turn running"
        )
        return f"Conversation: thread {thread_id}; {turn}; {queued} queued."

    async def new_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/new``: start a thread and bind it."""
        try:
            thread_id = await self.runner.start_thread(await self._workspace())
        except CodexError as exc:
            await send_text(self.bot, self.rt.chat_id, f"⚠️ Could not start a thread: {exc}")
            return
        self.rt.store.bind(thread_id)
        await send_text(self.bot, self.rt.chat_id, f"🆕 New thread {thread_id}, bound.")

    async def threads_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/threads``: recent threads with a button to bind each."""
        try:
            threads = await list_threads(await self.runner.client(), limit=8)
        except CodexError as exc:
            await send_text(self.bot, self.rt.chat_id, f"⚠️ Could not list threads: {exc}")
            return
        if not threads:
            await send_text(self.bot, self.rt.chat_id, "No threads yet. Send a message or /new.")
            return
        bound = self.thread_id()
        rows = [
            [
                InlineKeyboardButton(
                    ("● " if t.id == bound else "") + t.title[:40],
                    callback_data=f"{BIND_PREFIX}{t.id}",
                )
            ]
            for t in threads
        ]
        await send_text(
            self.bot,
            self.rt.chat_id,
            "Recent threads (tap one to bind it):",
            markup=InlineKeyboardMarkup(rows),
        )

    async def bind_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A ``bind:<thread id>`` button."""
        query = update.callback_query
        if query is None or not query.data:
            return
        thread_id = query.data.removeprefix(BIND_PREFIX)
        self.rt.store.bind(thread_id)
        await deliver("answerCallbackQuery", lambda: query.answer("Bound."))
        await send_text(self.bot, self.rt.chat_id, f"🔗 Bound thread {thread_id}.")

    async def stop_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/stop``: interrupt the running turn."""
        thread_id = self.thread_id()
        stopped = bool(thread_id) and await self.runner.interrupt(str(thread_id))
        await send_text(
            self.bot,
            self.rt.chat_id,
            "⏹ Stopping the running turn." if stopped else "No turn is running.",
        )

    def handlers(self) -> list[Any]:
        """The handlers to add to the application (before the generic message handlers)."""
        return [
            CommandHandler("new", self.new_command),
            CommandHandler("threads", self.threads_command),
            CommandHandler("stop", self.stop_command),
            CallbackQueryHandler(self.bind_callback, pattern=f"^{BIND_PREFIX}"),
            self.approvals.handler(),
        ]
