"""The bridge's invite desk: invites, messages and questions on behalf of the agent or operator.

One code path for ``bridgectl call invite`` and the ``bridgehost mcp`` tools, reached through the
bridge's local socket (:mod:`bridgehost.telegram.invite_socket`). An invite is checked against the
rules in order (quiet hours, rate limit, readiness and the call budget), arms the call surface
through the gateway (which mints the one live launch token, so an older invite's link stops
working and its message is edited to say so; ``/call``'s newer link does the same), and is sent
through :mod:`~bridgehost.telegram.sending` with two buttons: the Mini App (``web_app``) and
"Not now" (``inv:no:<id>``). An open invite expires after ``[invites] expiry_s``; the next call
the gateway prepares takes the open invite's reason as the first part of its context. Questions
carry one ``ask:<id>:<n>`` button per option. Every step is an audit event with its origin
(:mod:`bridgehost.state.invite_store`).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update, WebAppInfo
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bridgehost.basics import iso, parse_iso, utc_now
from bridgehost.gateway_api import GatewayApi, GatewayApiError
from bridgehost.invites import rules
from bridgehost.protocol.invites import (
    AskRequest,
    InviteRequest,
    InviteView,
    MessageRequest,
    Origin,
    Outcome,
    OutcomeKind,
    RecentInvites,
)
from bridgehost.providers import ContextPart
from bridgehost.state.invite_store import InviteStore
from bridgehost.telegram import views
from bridgehost.telegram.launch import BUTTON_TEXT
from bridgehost.telegram.sending import deliver, edit_text, send_text

if TYPE_CHECKING:
    from telegram import Message

    from bridgehost.telegram.runtime import BridgeRuntime

log = structlog.get_logger("bridgehost.telegram.invites")

INVITE_PREFIX = "inv:"
ASK_PREFIX = "ask:"
DECLINE_TEXT = "Not now"
REASON_PRIORITY = 1000
"""Above every other context part: the call's context starts with the invite's reason."""
INVITE_KINDS = ("invite.sent",)
MESSAGE_KINDS = ("message.sent", "ask.sent")
ARM_SLACK_S = 15.0
URGENCY_MARK = {"low": "", "normal": "", "high": "❗ "}


@dataclass
class _Ask:
    """A question waiting for a button."""

    question: str
    options: list[str]
    origin: Origin
    answer: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _id() -> str:
    return secrets.token_hex(4)


def _view(row: dict[str, Any]) -> InviteView:
    return InviteView(
        invite_id=row["invite_id"],
        origin=row["origin"],
        reason=row["reason"],
        urgency=row["urgency"],
        status=row["status"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        call_id=row["call_id"],
    )


class InviteDesk:
    """Sends invites, messages and questions; answers the ``inv:``/``ask:`` buttons."""

    def __init__(self, rt: BridgeRuntime, bot: Bot, store: InviteStore | None = None) -> None:
        self.rt, self.bot = rt, bot
        self.store = store or InviteStore.open(rt.config.storage.root)
        self._decisions: dict[str, asyncio.Future[OutcomeKind]] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._asks: dict[str, _Ask] = {}
        self._lock = asyncio.Lock()

    @property
    def rules(self) -> Any:
        """``[invites]``."""
        return self.rt.config.invites

    # -- life cycle ----------------------------------------------------------------------

    def resume(self) -> None:
        """Expiry timers for invites left open by an earlier run."""
        for row in self.store.open_invites():
            self._schedule_expiry(row)

    async def close(self) -> None:
        """Stop the timers, release waiting questions, close the store."""
        for task in self._timers.values():
            task.cancel()
        await asyncio.gather(*self._timers.values(), return_exceptions=True)
        for ask in self._asks.values():
            if not ask.answer.done():
                ask.answer.cancel()
        self.store.close()

    # -- rules ---------------------------------------------------------------------------

    def _refusal(self, origin: Origin, kinds: tuple[str, ...], limit: int) -> Outcome | None:
        now = utc_now()
        if (until := rules.quiet_until(self.rules, now)) is not None:
            return Outcome(
                outcome=OutcomeKind.QUIET_HOURS,
                detail=f"Not sent: it is quiet hours ({self.rules.quiet_hours}) until "
                f"{rules.local_clock(until, self.rules)}. Try again after that, or leave it "
                "for the next time the person writes.",
            )
        sent = self.store.sent_since(kinds, now - rules.RATE_WINDOW)
        if (next_at := rules.rate_limited_until(sent, limit, now)) is not None:
            return Outcome(
                outcome=OutcomeKind.RATE_LIMITED,
                detail=f"Not sent: {limit} were already sent in the last hour (the limit). "
                f"The next one is possible at {rules.local_clock(next_at, self.rules)}.",
            )
        return None

    async def _readiness_refusal(self) -> Outcome | None:
        snap = await views.snapshot(self.rt)
        if snap.readiness.ready or snap.only_disarmed:
            return None
        budget = next((c for c in snap.failures if c.name == "Call budget"), None)
        if budget is not None:
            return Outcome(
                outcome=OutcomeKind.BUDGET_SPENT,
                detail=f"Not sent: today's call budget is spent ({budget.detail}). "
                f"{budget.fix or ''}".strip(),
            )
        first = snap.failures[0]
        return Outcome(
            outcome=OutcomeKind.NOT_READY,
            detail=f"Not sent: a call could not start now ({first.name}: {first.detail}). "
            + (f"Fix: {first.fix}" if first.fix else ""),
        )

    def _refused(self, kind: str, origin: Origin, outcome: Outcome, **detail: Any) -> Outcome:
        self.store.log_event(kind, origin, {"outcome": outcome.outcome, **detail})
        log.info(kind, origin=origin, outcome=str(outcome.outcome))
        return outcome

    # -- invites -------------------------------------------------------------------------

    async def invite(self, request: InviteRequest) -> Outcome:
        """Send an invite (or say why not); with ``wait_s``, wait for Start or Not now."""
        origin = request.origin
        if not self.rt.config.realtime.enabled:
            outcome = Outcome(
                outcome=OutcomeKind.NOT_READY,
                detail="Not sent: live calls are switched off (realtime.enabled = false).",
            )
            return self._refused("invite.refused", origin, outcome, reason=request.reason)
        async with self._lock, self.rt.call_lock:
            refusal = self._refusal(origin, INVITE_KINDS, self.rules.max_per_hour)
            refusal = refusal or await self._readiness_refusal()
            if refusal is not None:
                return self._refused("invite.refused", origin, refusal, reason=request.reason)
            try:
                armed = await self._arm()
            except (GatewayApiError, TimeoutError) as exc:
                outcome = Outcome(
                    outcome=OutcomeKind.FAILED,
                    detail=f"Not sent: the call surface could not be armed: "
                    f"{str(exc) or 'the gateway did not answer in time'}",
                )
                return self._refused("invite.refused", origin, outcome, reason=request.reason)
            outcome = await self._send_invite(request, armed)
        if outcome.outcome is not OutcomeKind.SENT or request.wait_s <= 0:
            return outcome
        return await self._await_decision(outcome, request.wait_s)

    async def _arm(self) -> dict[str, Any]:
        wait_s = self.rt.config.realtime.startup_timeout_ms / 1000 + ARM_SLACK_S
        async with GatewayApi(self.rt.config, self.rt.secrets, timeout_s=wait_s) as api:
            async with asyncio.timeout(wait_s + ARM_SLACK_S):
                return await api.arm(None, source="invite")

    async def _send_invite(self, request: InviteRequest, armed: dict[str, Any]) -> Outcome:
        now = utc_now()
        expires = now + timedelta(seconds=self.rules.expiry_s)
        token_expiry = parse_iso(armed.get("expires_at"))
        if token_expiry is not None and token_expiry < expires:
            expires = token_expiry
        for older in self.store.open_invites():
            await self._close(older, OutcomeKind.REPLACED, "Replaced by a newer invite below.")
        invite_id = _id()
        launch_url = str(armed["launch_url"])
        text = (
            f"{URGENCY_MARK[request.urgency]}Your Codex agent would like a call"
            f"{'' if request.origin == 'agent' else ' (sent by the operator)'}:\n\n"
            f"{request.reason}\n\nThe button works until "
            f"{rules.local_clock(expires, self.rules)}."
        )
        markup = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton(BUTTON_TEXT, web_app=WebAppInfo(launch_url))],
                [
                    InlineKeyboardButton(
                        DECLINE_TEXT, callback_data=f"{INVITE_PREFIX}no:{invite_id}"
                    )
                ],
            ]
        )
        message = await send_text(self.bot, self.rt.chat_id, text, markup=markup)
        if message is None:
            outcome = Outcome(
                outcome=OutcomeKind.FAILED,
                detail="Not sent: Telegram refused the message (see the bridge's log).",
            )
            return self._refused("invite.refused", request.origin, outcome, reason=request.reason)
        row = {
            "invite_id": invite_id,
            "origin": request.origin,
            "reason": request.reason,
            "urgency": request.urgency,
            "created_at": iso(now),
            "expires_at": iso(expires),
            "launch_url": launch_url,
            "message_id": message.message_id,
        }
        self.store.add_invite(row)
        self.store.log_event(
            "invite.sent",
            request.origin,
            {"reason": request.reason, "urgency": request.urgency, "expires_at": iso(expires)},
            invite_id,
        )
        log.info("invite sent", invite_id=invite_id, origin=request.origin, expires_at=iso(expires))
        self._decisions[invite_id] = asyncio.get_running_loop().create_future()
        self._schedule_expiry({**row, "status": "open"})
        return Outcome(
            outcome=OutcomeKind.SENT,
            detail=f"Sent: the person got the invite with a Start button; it expires at "
            f"{rules.local_clock(expires, self.rules)}.",
            invite_id=invite_id,
            launch_url=launch_url,
            expires_at=iso(expires),
        )

    async def replaced_by_call_link(self) -> int:
        """``/call`` sent a newer launch link, which stops the open invite's link working:
        close the open invites as replaced (their messages lose their buttons and say so).
        Returns how many were closed."""
        closed = 0
        for older in self.store.open_invites():
            closed += await self._close(
                older, OutcomeKind.REPLACED, "Replaced by a newer call link below."
            )
        return closed

    async def _await_decision(self, sent: Outcome, wait_s: float) -> Outcome:
        assert sent.invite_id is not None
        decision = self._decisions.get(sent.invite_id)
        if decision is None:
            return sent
        try:
            async with asyncio.timeout(wait_s):
                kind = await asyncio.shield(decision)
        except TimeoutError:
            return sent.model_copy(
                update={
                    "detail": sent.detail + " No answer yet; the person may still tap Start "
                    "before it expires."
                }
            )
        texts = {
            OutcomeKind.DECLINED: "Declined: the person tapped Not now. Do not ask again soon; "
            "carry on, or send a message instead.",
            OutcomeKind.ACCEPTED: "Accepted: the person started the call; the reason leads "
            "the call's context.",
            OutcomeKind.EXPIRED: "Expired: nobody tapped the button in time.",
            OutcomeKind.REPLACED: "Replaced: a newer invite took this one's place.",
        }
        return sent.model_copy(update={"outcome": kind, "detail": texts.get(kind, sent.detail)})

    def _schedule_expiry(self, row: dict[str, Any]) -> None:
        expires = parse_iso(row["expires_at"]) or utc_now()
        invite_id = row["invite_id"]

        async def expire() -> None:
            await asyncio.sleep(max(0.0, (expires - utc_now()).total_seconds()))
            current = self.store.invite(invite_id)
            if current is not None:
                await self._close(current, OutcomeKind.EXPIRED, "This invite has expired.")

        self._timers[invite_id] = asyncio.create_task(expire(), name=f"invite-{invite_id}")

    async def _close(self, row: dict[str, Any], kind: OutcomeKind, note: str) -> bool:
        """Close an open invite as ``kind``; its message loses its buttons and says why."""
        invite_id = row["invite_id"]
        if not self.store.close_invite(invite_id, kind.value):
            return False
        self.store.log_event(f"invite.{kind.value}", row["origin"], {}, invite_id)
        log.info("invite closed", invite_id=invite_id, status=kind.value)
        timer = self._timers.pop(invite_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        if (decision := self._decisions.pop(invite_id, None)) and not decision.done():
            decision.set_result(kind)
        if row.get("message_id") and kind is not OutcomeKind.ACCEPTED:
            await self._edit(row["message_id"], f"{row['reason']}\n\n{note}")
        return True

    async def _edit(self, message_id: int, text: str) -> None:
        await deliver(
            "editMessageText",
            lambda: self.bot.edit_message_text(
                text=text, chat_id=self.rt.chat_id, message_id=message_id, reply_markup=None
            ),
        )

    # -- the call ------------------------------------------------------------------------

    def leading_parts(self, call_id: str) -> list[ContextPart]:
        """The open invite's reason as the first context part of ``call_id`` (claiming it)."""
        open_invites = self.store.open_invites()
        if not open_invites:
            return []
        row = open_invites[-1]
        if not self.store.close_invite(row["invite_id"], OutcomeKind.ACCEPTED.value, call_id):
            return []
        self.store.log_event(
            "invite.accepted", row["origin"], {"call_id": call_id}, row["invite_id"]
        )
        if (timer := self._timers.pop(row["invite_id"], None)) is not None:
            timer.cancel()
        if (decision := self._decisions.pop(row["invite_id"], None)) and not decision.done():
            decision.set_result(OutcomeKind.ACCEPTED)
        who = "The Codex agent" if row["origin"] == "agent" else "The operator"
        return [
            ContextPart(
                "Why this call was requested",
                f"{who} asked the person for this call. Reason: {row['reason']}",
                REASON_PRIORITY,
            )
        ]

    # -- messages and questions ----------------------------------------------------------

    async def message(self, request: MessageRequest) -> Outcome:
        """Post ``text`` to the chat (or say why not)."""
        refusal = self._refusal(request.origin, MESSAGE_KINDS, self.rules.max_messages_per_hour)
        if refusal is not None:
            return self._refused("message.refused", request.origin, refusal, text=request.text)
        prefix = "🤖 " if request.origin == "agent" else ""
        sent = await send_text(self.bot, self.rt.chat_id, prefix + request.text)
        if sent is None:
            outcome = Outcome(
                outcome=OutcomeKind.FAILED,
                detail="Not sent: Telegram refused the message (see the bridge's log).",
            )
            return self._refused("message.refused", request.origin, outcome, text=request.text)
        self.store.log_event("message.sent", request.origin, {"text": request.text})
        log.info("message sent", origin=request.origin, chars=len(request.text))
        return Outcome(outcome=OutcomeKind.SENT, detail="Sent: the message is in the chat.")

    async def ask(self, request: AskRequest) -> Outcome:
        """Ask with one button per option; the choice, or ``no_answer`` after the timeout."""
        refusal = self._refusal(request.origin, MESSAGE_KINDS, self.rules.max_messages_per_hour)
        if refusal is not None:
            return self._refused("ask.refused", request.origin, refusal, question=request.question)
        ask_id = _id()
        markup = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton(option, callback_data=f"{ASK_PREFIX}{ask_id}:{index}")]
                for index, option in enumerate(request.options)
            ]
        )
        pending = _Ask(request.question, list(request.options), request.origin)
        self._asks[ask_id] = pending
        try:
            message = await send_text(
                self.bot, self.rt.chat_id, f"❓ {request.question}", markup=markup
            )
            if message is None:
                outcome = Outcome(
                    outcome=OutcomeKind.FAILED,
                    detail="Not sent: Telegram refused the question (see the bridge's log).",
                )
                return self._refused(
                    "ask.refused", request.origin, outcome, question=request.question
                )
            self.store.log_event(
                "ask.sent",
                request.origin,
                {"question": request.question, "options": request.options},
            )
            return await self._await_answer(ask_id, pending, message, request)
        finally:
            self._asks.pop(ask_id, None)

    async def _await_answer(
        self, ask_id: str, pending: _Ask, message: Message, request: AskRequest
    ) -> Outcome:
        timeout = request.timeout_s or self.rules.ask_timeout_s
        try:
            async with asyncio.timeout(timeout):
                choice = await pending.answer
        except TimeoutError:
            self.store.log_event("ask.unanswered", request.origin, {"question": request.question})
            await edit_text(self.bot, message, f"❓ {request.question}\n\n(no answer in time)")
            return Outcome(
                outcome=OutcomeKind.NO_ANSWER,
                detail=f"No answer: nobody chose an option within {timeout:g} s.",
            )
        self.store.log_event(
            "ask.answered", request.origin, {"question": request.question, "choice": choice}
        )
        await edit_text(self.bot, message, f"❓ {request.question}\n\n✅ {choice}")
        return Outcome(
            outcome=OutcomeKind.ANSWERED, detail=f"The person chose: {choice}", choice=choice
        )

    # -- buttons -------------------------------------------------------------------------

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``inv:no:<id>`` declines an invite; ``ask:<id>:<n>`` answers a question."""
        query = update.callback_query
        if query is None or not query.data:
            return
        data = query.data
        reply = "This button is no longer active."
        if data.startswith(f"{INVITE_PREFIX}no:"):
            row = self.store.invite(data.removeprefix(f"{INVITE_PREFIX}no:"))
            if row is not None and await self._close(
                row, OutcomeKind.DECLINED, "You said not now. The agent was told."
            ):
                reply = "OK, not now."
        elif data.startswith(ASK_PREFIX):
            ask_id, _, index = data.removeprefix(ASK_PREFIX).partition(":")
            pending = self._asks.get(ask_id)
            if pending is not None and index.isdigit() and int(index) < len(pending.options):
                if not pending.answer.done():
                    pending.answer.set_result(pending.options[int(index)])
                reply = f"You chose: {pending.options[int(index)]}"
        await deliver("answerCallbackQuery", lambda: query.answer(reply))

    # -- views ---------------------------------------------------------------------------

    def recent(self, limit: int = 5) -> RecentInvites:
        """The newest invites."""
        return RecentInvites(invites=[_view(row) for row in self.store.recent_invites(limit)])

    def status_lines(self) -> list[str]:
        """``/call status``'s lines about recent invites."""
        recent = self.recent().invites
        if not recent:
            return ["Recent invites: none"]
        lines = ["Recent invites:"]
        for invite in recent:
            when = parse_iso(invite.created_at)
            clock = rules.local_clock(when, self.rules) if when else "?"
            reason = invite.reason if len(invite.reason) <= 60 else invite.reason[:59] + "…"
            lines.append(f"- {clock} {invite.status} ({invite.origin}): {reason}")
        return lines


def register(application: Application[Any, Any, Any, Any, Any, Any], desk: InviteDesk) -> None:
    """Install the ``inv:`` and ``ask:`` button handlers."""
    application.add_handler(
        CallbackQueryHandler(desk.on_button, pattern=f"^({INVITE_PREFIX}|{ASK_PREFIX})")
    )


def leading_parts(rt: BridgeRuntime, call_id: str) -> list[ContextPart]:
    """The open invite's reason for ``call_id``'s context, if the daemon runs a desk."""
    desk = getattr(rt, "invites", None)
    if not isinstance(desk, InviteDesk):
        return []
    try:
        return desk.leading_parts(call_id)
    except Exception as exc:  # the call must start even if the invite log is unreadable
        log.warning("invite reason left out of the call context", call_id=call_id, error=str(exc))
        return []
