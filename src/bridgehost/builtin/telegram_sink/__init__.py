"""The ``telegram`` handoff sink: a recap of each finished call in the bot's chat.

The recap says how long the call lasted, why it ended, the summary, and where the handoff went
(the other sinks' outbox rows). It is sent with python-telegram-bot to
``[telegram] authorized_chat_id`` through ``[telegram] api_base_url``.

Idempotent by call id: the moment Telegram answers, the message id is saved as the outbox
row's receipt (:func:`bridgehost.handoff.current_delivery`), and a later attempt for the same
call that finds a receipt returns it without sending again. Outside the outbox, the sink
remembers what it sent in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bridgehost import hookimpl
from bridgehost.providers import HandoffSink, Health, ProviderContext, ProviderStartError

if TYPE_CHECKING:
    from telegram import Bot

RECAP_WAIT_S = 15.0
"""How long the recap waits for the other sinks' first attempt, to say where the handoff went."""
MAX_MESSAGE = 4000
RECEIPT_PREFIX = "telegram:"


def _where(delivery: Mapping[str, Any]) -> str:
    status, sink = delivery["status"], delivery["sink"]
    if status == "delivered":
        return f"• {sink}: {delivery.get('receipt') or 'delivered'}"
    if status == "failed":
        return f"• {sink}: failed ({delivery.get('last_error')})"
    if delivery.get("attempts") and delivery.get("last_error"):
        return f"• {sink}: retrying ({delivery['last_error']})"
    return f"• {sink}: on its way"


def recap_text(artifact: Mapping[str, Any], others: list[dict[str, Any]] | None = None) -> str:
    """The recap message for an artifact (plain text, at most 4000 characters)."""
    from bridgehost.handoff._markdown import describe_end, format_duration  # loaded on first use

    lines = [
        f"📞 Call ended after {format_duration(artifact.get('duration_s'))}",
        f"Reason: {describe_end(artifact.get('end_reason'))}",
        "",
    ]
    lines.append(str(artifact.get("summary") or "(no summary)"))
    if not artifact.get("summarized"):
        lines.append(f"(Not summarized automatically: {artifact.get('summary_error')})")
    counts = []
    for key, label in (
        ("decisions", "decision"),
        ("action_items", "action item"),
        ("open_questions", "open question"),
    ):
        count = len(artifact.get(key) or [])
        counts.append(f"{count} {label}{'' if count == 1 else 's'}")
    lines += ["", " · ".join(counts)]
    if others:
        lines += ["", "Handoff:", *(_where(d) for d in others)]
    text = "\n".join(lines)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


class TelegramRecapSink:
    """Sends one recap per call to the authorized chat; see the module docstring."""

    def __init__(self, context: ProviderContext) -> None:
        self.chat_id = context.config.telegram.authorized_chat_id
        self.base_url = f"{context.config.telegram.api_base_url}/bot"
        token = context.secrets.telegram_bot_token
        self._token = token.get_secret_value() if token else None
        self._bot: Bot | None = None
        self._sent: dict[str, str] = {}
        self.recap_wait_s = RECAP_WAIT_S

    def _problem(self) -> str | None:
        if not self._token:
            return "TELEGRAM_BOT_TOKEN is not set"
        if self.chat_id is None:
            return "[telegram] authorized_chat_id is not set"
        return None

    async def start(self) -> None:
        """Check the token and chat id and open the Bot API client."""
        if problem := self._problem():
            raise ProviderStartError(
                f"telegram sink: {problem}", fix="set it (see `bridgectl config check`)"
            )
        if self._bot is None:
            from telegram import Bot  # python-telegram-bot, loaded when the sink is used

            assert self._token is not None
            self._bot = Bot(self._token, base_url=self.base_url)
            await self._bot.initialize()

    async def stop(self) -> None:
        """Close the Bot API client."""
        if self._bot is not None:
            bot, self._bot = self._bot, None
            await bot.shutdown()

    async def health(self) -> Health:
        """Healthy when a token and a chat id are configured."""
        if problem := self._problem():
            return Health(ok=False, detail=problem, fix="set it, then restart bridge-telegram")
        return Health(ok=True, detail=f"posting call recaps to chat {self.chat_id}")

    async def _others(self) -> list[dict[str, Any]] | None:
        from bridgehost.handoff.outbox import current_delivery

        delivery = current_delivery()
        if delivery is None:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.recap_wait_s
        while True:
            others = delivery.other_deliveries()
            waiting = [
                d
                for d in others
                if d["status"] == "delivering" or (d["status"] == "pending" and not d["attempts"])
            ]
            if not waiting or loop.time() >= deadline:
                return others
            await asyncio.sleep(0.2)

    async def deliver(self, artifact: Mapping[str, Any]) -> str:
        """Send the recap once per call; return ``telegram:<chat>:<message id>``."""
        from bridgehost.handoff.outbox import current_delivery

        call_id = str(artifact["call_id"])
        delivery = current_delivery()
        earlier = delivery.receipt if delivery is not None else self._sent.get(call_id)
        if earlier and earlier.startswith(RECEIPT_PREFIX):
            return earlier
        await self.start()
        assert self._bot is not None and self.chat_id is not None
        text = recap_text(artifact, await self._others())
        message = await self._bot.send_message(self.chat_id, text)
        receipt = f"{RECEIPT_PREFIX}{self.chat_id}:{message.message_id}"
        if delivery is not None:
            delivery.save_receipt(receipt)
        self._sent[call_id] = receipt
        return receipt


@hookimpl
def bridgehost_register_handoff_sinks() -> list[HandoffSink]:
    """Register the ``telegram`` sink: a recap of every call in the authorized chat.

    Needs ``TELEGRAM_BOT_TOKEN`` and ``[telegram] authorized_chat_id``; listed in
    ``handoff.sinks`` by default.
    """
    return [
        HandoffSink(
            name="telegram",
            description="post a recap of each call (duration, reason, summary, where the "
            "handoff went) to the authorized Telegram chat",
            factory=TelegramRecapSink,
        )
    ]
