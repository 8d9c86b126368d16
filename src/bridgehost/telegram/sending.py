"""Talking to the Bot API without ever crashing the daemon.

Every send and edit goes through :func:`deliver`: ``429 Too Many Requests`` waits the
``retry_after`` Telegram asks for (up to :data:`MAX_RETRY_AFTER_S`), network errors and time-outs
retry with a short backoff, ``403`` (the user blocked the bot) and other refusals are logged and
reported as ``None``. :func:`on_error` is the application's error handler: it logs first and
never raises.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import structlog
from telegram import Bot, InlineKeyboardMarkup, Message, ReplyParameters, Update
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import ContextTypes
from telegram.warnings import PTBDeprecationWarning

log = structlog.get_logger("bridgehost.telegram.send")

T = TypeVar("T")

MAX_ATTEMPTS = 4
MAX_RETRY_AFTER_S = 60.0
"""A longer ``retry_after`` is not waited for: the message is dropped and logged."""
BACKOFF_S = (0.5, 1.0, 2.0, 4.0)
MAX_TEXT = 4000
"""Telegram's limit is 4096 characters; longer texts are cut with an ellipsis."""


def retry_after_s(exc: RetryAfter) -> float:
    """Seconds Telegram asked us to wait (without PTB's deprecation warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: Any = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def clip(text: str) -> str:
    """``text`` cut to what one message may hold."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


async def deliver(
    what: str, call: Callable[[], Awaitable[T]], *, attempts: int = MAX_ATTEMPTS
) -> T | None:
    """Run one Bot API call with retries; None when it finally failed (already logged)."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except RetryAfter as exc:
            wait = retry_after_s(exc)
            if wait > MAX_RETRY_AFTER_S or attempt == attempts:
                log.warning("telegram rate limit: giving up", what=what, retry_after=wait)
                return None
            log.info("telegram rate limit: waiting", what=what, retry_after=wait)
            await asyncio.sleep(wait + 0.1)
        except Forbidden as exc:
            log.warning(
                "telegram refused: the user blocked the bot or left the chat",
                what=what,
                error=exc.message,
            )
            return None
        except InvalidToken as exc:
            log.error("telegram rejected the bot token", what=what, error=exc.message)
            return None
        except BadRequest as exc:
            if "message is not modified" in exc.message:
                return None
            log.error("telegram refused the request", what=what, error=exc.message)
            return None
        except (TimedOut, NetworkError) as exc:
            if attempt == attempts:
                log.warning("telegram unreachable: giving up", what=what, error=str(exc))
                return None
            await asyncio.sleep(BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)])
        except TelegramError as exc:
            log.error("telegram error", what=what, error=str(exc))
            return None
    return None  # pragma: no cover - the loop always returns


async def send_text(
    bot: Bot,
    chat_id: int,
    text: str,
    *,
    markup: InlineKeyboardMarkup | None = None,
    reply_to: int | None = None,
) -> Message | None:
    """Send plain text (no parse mode, so nothing needs escaping); None if it failed."""
    kwargs: dict[str, Any] = {"chat_id": chat_id, "text": clip(text)}
    if markup is not None:
        kwargs["reply_markup"] = markup
    if reply_to is not None:
        kwargs["reply_parameters"] = ReplyParameters(reply_to, allow_sending_without_reply=True)
    return await deliver("sendMessage", lambda: bot.send_message(**kwargs))


async def edit_text(
    bot: Bot, message: Message, text: str, *, markup: InlineKeyboardMarkup | None = None
) -> bool:
    """Replace a message's text (and inline keyboard); False if it failed."""
    result = await deliver(
        "editMessageText",
        lambda: bot.edit_message_text(
            text=clip(text),
            chat_id=message.chat_id,
            message_id=message.message_id,
            reply_markup=markup,
        ),
    )
    return result is not None


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The application's error handler: log the failure; the daemon carries on."""
    update_id = update.update_id if isinstance(update, Update) else None
    error = context.error
    if isinstance(error, (NetworkError, RetryAfter, TimedOut)):
        log.warning("telegram call failed", update_id=update_id, error=str(error))
        return
    log.error(
        "telegram handler failed",
        update_id=update_id,
        error=f"{type(error).__name__}: {error}",
        exc_info=(type(error), error, error.__traceback__) if error else None,
    )
