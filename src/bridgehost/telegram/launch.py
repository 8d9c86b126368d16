"""``/call`` (and "call me") and ``/hangup``: the two commands with side effects.

``/call`` computes readiness (:func:`bridgehost.telegram.views.snapshot`, budget included) and
then either refuses with every failing check and its fix, or mints a fresh invite through the
gateway's arm (which also arms a disarmed surface, with its progress edited into one message)
and sends the Mini App button. ``/hangup`` asks the gateway to end the call over the control
channel and answers "Hanging up…" at once; the recap comes later from the handoff pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, WebAppInfo

from bridgehost.basics import utc_now
from bridgehost.gateway_api import GatewayApi, GatewayApiError
from bridgehost.protocol.end_reasons import EndReason
from bridgehost.telegram import views
from bridgehost.telegram.sending import edit_text, send_text

if TYPE_CHECKING:
    from bridgehost.telegram.runtime import BridgeRuntime

log = structlog.get_logger("bridgehost.telegram.launch")

BUTTON_TEXT = "📞 Start the call"
PROGRESS_EDIT_EVERY_S = 1.0


def invite_markup(launch_url: str) -> InlineKeyboardMarkup:
    """The one-button inline keyboard that opens the Mini App."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(BUTTON_TEXT, web_app=WebAppInfo(launch_url))]]
    )


def invite_text(result: dict[str, Any], gateway: dict[str, Any] | None) -> str:
    """The text above the button: what the call is, how long the link lasts, the budget."""
    lines = [
        "Your call is ready. Tap the button to talk with your Codex agent; the bound "
        "thread is its context, and a handoff goes back to it when you hang up."
    ]
    expires = result.get("expires_at")
    with contextlib.suppress(TypeError, ValueError):
        minutes = max(
            1, round((datetime.fromisoformat(str(expires)) - utc_now()).total_seconds() / 60)
        )
        lines.append(f"The link works for one call and expires in {minutes} min.")
    if gateway is not None:
        lines.append(views.budget_line(gateway))
    return "\n".join(lines)


class ArmProgress:
    """Edits one message as the gateway reports arming progress (throttled)."""

    def __init__(self, bot: Bot, message: Message | None) -> None:
        self.bot, self.message = bot, message
        self._latest: str | None = None
        self._shown: str | None = None
        self._task: asyncio.Task[None] | None = None

    def update(self, line: str) -> None:
        """The gateway's progress callback (synchronous)."""
        self._latest = line
        if self.message is not None and self._task is None:
            self._task = asyncio.create_task(self._edit_loop())

    async def _edit_loop(self) -> None:
        assert self.message is not None
        while True:
            if self._latest and self._latest != self._shown:
                self._shown = self._latest
                await edit_text(self.bot, self.message, f"Arming… {self._latest}…")
            await asyncio.sleep(PROGRESS_EDIT_EVERY_S)

    async def stop(self) -> None:
        """No more edits."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _reply(
    rt: BridgeRuntime,
    bot: Bot,
    progress: Message | None,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
) -> None:
    """Edit the progress message into ``text`` if there is one, else send a new message."""
    if progress is not None and await edit_text(bot, progress, text, markup=markup):
        return
    await send_text(bot, rt.chat_id, text, markup=markup)


async def _arm(rt: BridgeRuntime, progress: ArmProgress) -> dict[str, Any]:
    """``POST /control/arm``: mints a fresh invite (arming first if needed)."""
    wait_s = rt.config.realtime.startup_timeout_ms / 1000 + 15
    async with GatewayApi(rt.config, rt.secrets, timeout_s=wait_s) as api:
        async with asyncio.timeout(wait_s + 15):
            return await api.arm(progress.update, source="telegram")


async def launch(rt: BridgeRuntime, bot: Bot) -> None:
    """The ``/call`` flow; one at a time (a second ``/call`` waits for the first)."""
    async with rt.call_lock:
        snap = await views.snapshot(rt)
        if not (snap.readiness.ready or snap.only_disarmed):
            log.info(
                "/call blocked",
                failures=[c.name for c in snap.failures],
                details=[c.detail for c in snap.failures],
                **rt.binding_view(),
                connected=rt.connected,
            )
            await send_text(bot, rt.chat_id, views.blocked_text(snap))
            return
        message = None
        if not snap.readiness.ready:
            message = await send_text(bot, rt.chat_id, "Arming… starting tunnel…")
        progress = ArmProgress(bot, message)
        try:
            result = await _arm(rt, progress)
        except (GatewayApiError, TimeoutError) as exc:
            await progress.stop()
            reason = str(exc) or "the gateway did not finish arming in time"
            log.warning("/call could not arm the surface", error=reason)
            await _reply(rt, bot, message, f"Arming failed: {reason}")
            return
        await progress.stop()
        if rt.invites is not None:  # the newer link stops an open invite's link working
            await rt.invites.replaced_by_call_link()
        log.info(
            "/call sent an invite",
            armed_now=message is not None,
            expires_at=result.get("expires_at"),
        )
        await _reply(
            rt,
            bot,
            message,
            invite_text(result, snap.gateway),
            invite_markup(str(result["launch_url"])),
        )


async def _gateway_call_id(rt: BridgeRuntime) -> tuple[str | None, bool]:
    """The gateway's current call id, and whether the gateway answered."""
    try:
        async with GatewayApi(rt.config, rt.secrets, timeout_s=views.STATUS_TIMEOUT_S) as api:
            async with asyncio.timeout(views.STATUS_TIMEOUT_S):
                status = await api.status()
    except (GatewayApiError, TimeoutError):
        return None, False
    call = status.get("call") or {}
    return call.get("call_id"), True


async def hangup(rt: BridgeRuntime, bot: Bot) -> None:
    """The ``/hangup`` flow: ask, answer at once, let the recap follow."""
    if rt.channel is None:
        await send_text(
            bot,
            rt.chat_id,
            "Live calls are switched off (realtime.enabled is false), so there is no call to end.",
        )
        return
    call_id, answered = await _gateway_call_id(rt)
    if not answered:
        known = rt.current_call()
        call_id = known["call_id"] if known else None
    if call_id is None:
        await send_text(bot, rt.chat_id, "No call is running.")
        return
    ack = await send_text(bot, rt.chat_id, "Hanging up… The recap follows once the call has ended.")
    if await rt.channel.hangup(call_id, EndReason.TELEGRAM_HANGUP):
        log.info("/hangup sent over the control channel", call_id=call_id)
        return
    try:
        async with GatewayApi(rt.config, rt.secrets, timeout_s=views.STATUS_TIMEOUT_S) as api:
            await api.hangup(EndReason.TELEGRAM_HANGUP, call_id)
        log.info("/hangup sent through the control API", call_id=call_id)
    except GatewayApiError as exc:
        text = "No call is running." if exc.code == "no_call" else f"Could not hang up: {exc}"
        log.warning("/hangup failed", call_id=call_id, error=str(exc))
        if ack is None or not await edit_text(bot, ack, text):
            await send_text(bot, rt.chat_id, text)
