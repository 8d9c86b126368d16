"""The bot's handlers: access gate, commands, intents and notes.

Every update first passes :func:`gate` (handler group -1): strangers are refused (see
:mod:`bridgehost.telegram.access`), and an update id already handled is dropped, so a restart
that sees an update again never repeats its side effect. Then:

- ``/call`` (or a "call me"-style message) starts a call, ``/call status`` reports;
- ``/hangup`` ends the live call; ``/status``, ``/capabilities``, ``/help``, ``/start`` inform;
- other text during a live call becomes a call note (it goes into the handoff and, through the
  gateway, to the live voice model as quoted data); outside a call it is a turn in the bound
  Codex thread (:mod:`bridgehost.telegram.conversation`).

A ``/call`` or ``/hangup`` that waited in Telegram while the bridge was down for longer than
:data:`STALE_AFTER` is not acted on: the user is asked to send it again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from telegram import Bot, BotCommand, Message, Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bridgehost.basics import utc_now
from bridgehost.state.chat_inbox import ChatInbox
from bridgehost.telegram import launch, views
from bridgehost.telegram.access import Sender, Verdict
from bridgehost.telegram.intents import match_intent
from bridgehost.telegram.sending import deliver, send_text

if TYPE_CHECKING:
    from bridgehost.telegram.runtime import BridgeRuntime

log = structlog.get_logger("bridgehost.telegram.commands")

STALE_AFTER = timedelta(minutes=5)

COMMANDS = [
    BotCommand("call", "Start a live voice call (/call status: how calls stand)"),
    BotCommand("hangup", "End the live call"),
    BotCommand("status", "The bridge, the gateway and the bound thread"),
    BotCommand("new", "Start a new Codex thread and bind it"),
    BotCommand("threads", "Recent Codex threads, tap one to bind it"),
    BotCommand("stop", "Interrupt the running Codex turn"),
    BotCommand("capabilities", "Every call prerequisite, with fixes"),
    BotCommand("help", "What this bot does"),
]
"""The bot's command menu (``setMyCommands``)."""

HELP = """\
I connect you by voice with the Codex agent on your machine.

/call: start a live call (or just say "call me")
/call status: the call surface, the current and recent calls, today's budget
/hangup: end the live call; the recap follows when it has ended
/status: the bridge, the gateway and the bound Codex thread
/capabilities: every prerequisite of a call, with fixes

Outside a call, every message (text, photo, document, voice note) goes to the bound Codex \
thread and its answer comes back here:
/new: start a new Codex thread and bind it
/threads: recent threads, tap one to bind it
/stop: interrupt the running Codex turn

Text you send during a call reaches the voice model as a note and goes into the handoff; \
after the call, Codex's answer to the handoff follows the recap."""


def _sender(update: Update) -> Sender:
    chat, user = update.effective_chat, update.effective_user
    return Sender(
        chat.id if chat else None,
        chat.type if chat else None,
        user.id if user else None,
        bool(user and user.is_bot),
    )


def _runtime(context: ContextTypes.DEFAULT_TYPE) -> BridgeRuntime:
    return context.application.bot_data["runtime"]  # type: ignore[no-any-return]


async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Group -1: note the update offset, ignore strangers, drop updates already handled."""
    rt = _runtime(context)
    ChatInbox(rt.store).advance_offset(update.update_id)
    sender = _sender(update)
    if rt.access.check(sender) is not Verdict.SERVE:
        raise ApplicationHandlerStop
    if not rt.store.first_time_update(update.update_id):
        log.info("dropped an update handled before", update_id=update.update_id)
        raise ApplicationHandlerStop


async def confirm_handled_updates(rt: BridgeRuntime, bot: Bot) -> int | None:
    """At start-up, before polling: tell Telegram every update below the stored offset was
    handled (``getUpdates`` with that offset), so none comes again after a crash or ``kill``.

    Returns the offset confirmed (None when nothing was stored yet).
    """
    offset = ChatInbox(rt.store).offset()
    if offset is None:
        return None
    await deliver("getUpdates", lambda: bot.get_updates(offset=offset, limit=1, timeout=0))
    log.info("confirmed handled telegram updates", offset=offset)
    return offset


def _stale(message: Message | None) -> bool:
    return message is not None and utc_now() - message.date > STALE_AFTER


async def _stale_reply(context: ContextTypes.DEFAULT_TYPE, message: Message, what: str) -> None:
    sent = message.date.strftime("%H:%M UTC")
    await send_text(
        context.bot,
        message.chat_id,
        f"Your {what} from {sent} reached me only "
        f"now (I was offline). Send it again if you still want it.",
    )


def _start_launch(context: ContextTypes.DEFAULT_TYPE, update: Update) -> None:
    rt = _runtime(context)
    context.application.create_task(
        launch.launch(rt, context.bot), update=update, name=f"call-{update.update_id}"
    )


async def call_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/call`` (launch; ``on``/``enable`` too) and ``/call status``."""
    args = [a.lower() for a in context.args or []]
    if args[:1] == ["status"]:
        await _call_status(update, context)
        return
    if _stale(update.effective_message):
        await _stale_reply(context, update.effective_message, "/call")  # type: ignore[arg-type]
        return
    _start_launch(context, update)


async def _call_status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = _runtime(context)
    snap = await views.snapshot(rt)
    text = views.call_status_text(rt, snap)
    if rt.invites is not None:
        text += "\n" + "\n".join(rt.invites.status_lines())
    await send_text(context.bot, rt.chat_id, text)


async def hangup_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/hangup``."""
    if _stale(update.effective_message):
        await _stale_reply(context, update.effective_message, "/hangup")  # type: ignore[arg-type]
        return
    await launch.hangup(_runtime(context), context.bot)


async def status_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/status``."""
    rt = _runtime(context)
    text = views.status_text(rt, await views.snapshot(rt))
    conversation = context.application.bot_data.get("conversation")
    if conversation is not None:
        text = f"{text}\n{conversation.status_line()}"
    await send_text(context.bot, rt.chat_id, text)


async def capabilities_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/capabilities``."""
    rt = _runtime(context)
    await send_text(context.bot, rt.chat_id, views.capabilities_text(await views.snapshot(rt)))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/help``."""
    await send_text(context.bot, _runtime(context).chat_id, HELP)


async def start_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/start``: a greeting and the help."""
    user = update.effective_user
    name = f", {user.first_name}" if user and user.first_name else ""
    await send_text(context.bot, _runtime(context).chat_id, f"Hi{name}! {HELP}")


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any other ``/command``."""
    await send_text(
        context.bot,
        _runtime(context).chat_id,
        "I don't know that command. /help lists what I can do.",
    )


async def text_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Plain text: an intent, a note for the live call, or a turn in the bound thread."""
    rt = _runtime(context)
    message = update.effective_message
    text = (message.text or "") if message else ""
    intent = match_intent(text)
    if intent == "status":
        await _call_status(update, context)
        return
    if intent == "call":
        if _stale(message):
            await _stale_reply(context, message, "call request")  # type: ignore[arg-type]
            return
        _start_launch(context, update)
        return
    call = rt.current_call()
    conversation = context.application.bot_data.get("conversation")
    if call is None and conversation is not None and message is not None:
        await conversation.accept(update.update_id, {"text": text}, message.message_id)
        return
    if call is not None and rt.channel is not None:
        from bridgehost.telegram.call_notes import send_call_note

        await send_call_note(rt, call["call_id"], text)
    rt.store.add_note(text, call["call_id"] if call else None)
    log.info("stored a note", call_id=call["call_id"] if call else None, chars=len(text))
    reply = (
        "📝 Added to this call's notes; it goes into the handoff."
        if call
        else '📝 Noted for your next call. Send /call (or say "call me") to start one.'
    )
    await send_text(
        context.bot, rt.chat_id, reply, reply_to=message.message_id if message else None
    )


async def other_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Photos, voice notes and documents go to the conversation; anything else: say so."""
    conversation = context.application.bot_data.get("conversation")
    message = update.effective_message
    if conversation is not None and message is not None:
        from bridgehost.telegram.attachments import accept_attachment

        if await accept_attachment(conversation, message, update.update_id):
            return
    await send_text(
        context.bot,
        _runtime(context).chat_id,
        "I take text, photos, documents and voice notes. Send it as one of those.",
    )


def register(application: Application[Any, Any, Any, Any, Any, Any], rt: BridgeRuntime) -> None:
    """Install the gate and every handler; ``rt`` is reachable as ``bot_data["runtime"]``."""
    application.bot_data["runtime"] = rt
    application.add_handler(TypeHandler(Update, gate), group=-1)
    for name, callback in (
        ("call", call_command),
        ("hangup", hangup_command),
        ("status", status_command),
        ("capabilities", capabilities_command),
        ("help", help_command),
        ("start", start_command),
    ):
        application.add_handler(CommandHandler(name, callback))
    application.add_handler(MessageHandler(filters.COMMAND, unknown_command))
    application.add_handler(MessageHandler(filters.TEXT, text_message))
    application.add_handler(MessageHandler(filters.ALL, other_message))
