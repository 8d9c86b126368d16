"""``bridgectl telegram discover``: find the chat id to put in ``[telegram] authorized_chat_id``.

It long-polls the Bot API (``[telegram] api_base_url``) with short ``getUpdates`` calls for a
bounded time and reports whoever sent ``/start``. It does not change the bot's webhook or its
``allowed_updates``; while bridge-telegram polls the same bot, Telegram refuses a second poller.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import click

from bridgehost._cli_common import bridgectl_options
from bridgehost.ctl._context import load
from bridgehost.ctl._output import (
    EXIT_NOT_READY,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CtlError,
    emit_json,
    note,
    progress,
    run,
)

if TYPE_CHECKING:
    from telegram import Message

POLL_S = 5
"""Long-poll timeout of one ``getUpdates`` call."""


@dataclass(frozen=True)
class Found:
    """Who sent ``/start``."""

    chat_id: int
    chat_type: str
    name: str
    username: str | None
    user_id: int | None

    @property
    def config_line(self) -> str:
        """The line to add under ``[telegram]``."""
        return f"authorized_chat_id = {self.chat_id}"


def _is_start(message: Message | None) -> bool:
    if message is None or not message.text:
        return False
    return message.text.split()[0].split("@")[0] == "/start"


def _found(message: Message) -> Found:
    chat, user = message.chat, message.from_user
    if chat.type == "private":
        name = " ".join(filter(None, [chat.first_name, chat.last_name])) or str(chat.id)
    else:
        name = chat.title or str(chat.id)
    return Found(
        chat.id,
        chat.type,
        name,
        chat.username or (user.username if user else None),
        user.id if user else None,
    )


async def _poll(root: str, token: str, wait_s: int, *, as_json: bool) -> Found | None:
    from telegram import Bot
    from telegram.error import (
        BadRequest,
        Conflict,
        EndPointNotFound,
        InvalidToken,
        NetworkError,
        TelegramError,
    )

    def fail(message: str, exit_code: int, code: str) -> CtlError:
        return CtlError(message, exit_code=exit_code, code=code, as_json=as_json)

    try:
        async with Bot(token, base_url=f"{root}/bot") as bot:
            progress(f"Send /start to your bot @{bot.username} now… (waiting {wait_s} s)")
            deadline = time.monotonic() + wait_s
            offset: int | None = None
            while (remaining := deadline - time.monotonic()) > 0:
                updates = await bot.get_updates(offset=offset, timeout=int(min(POLL_S, remaining)))
                for update in updates:
                    if _is_start(update.message):
                        return _found(update.message)  # type: ignore[arg-type]
                    offset = update.update_id + 1
    except InvalidToken as exc:
        raise fail(
            "Telegram rejected TELEGRAM_BOT_TOKEN (Unauthorized); copy the token from "
            "@BotFather again",
            EXIT_USAGE,
            "bad_token",
        ) from exc
    except EndPointNotFound as exc:
        raise fail(
            f"{root} does not look like a Bot API server ({exc.message}); check "
            "[telegram] api_base_url",
            EXIT_USAGE,
            "bad_api_base_url",
        ) from exc
    except Conflict as exc:
        raise fail(
            f"Telegram refused getUpdates ({exc.message}): another process is polling "
            "this bot, or a webhook is set; stop bridge-telegram (systemctl stop "
            "bridge-telegram) and run again",
            EXIT_NOT_READY,
            "conflict",
        ) from exc
    except BadRequest as exc:
        raise fail(
            f"Telegram refused getUpdates: {exc.message}", EXIT_NOT_READY, "refused"
        ) from exc
    except NetworkError as exc:
        raise fail(
            f"cannot reach the Bot API at {root} ({exc.message}); check the network "
            "and [telegram] api_base_url",
            EXIT_UNREACHABLE,
            "unreachable",
        ) from exc
    except TelegramError as exc:
        raise fail(f"Telegram answered: {exc.message}", EXIT_NOT_READY, "refused") from exc
    return None


@click.group("telegram")
@bridgectl_options
def telegram() -> None:
    """Telegram helpers for setting up the bot."""


@telegram.command("discover")
@click.option(
    "--timeout",
    "wait_s",
    type=click.IntRange(1, 600),
    default=60,
    show_default=True,
    help="How long to wait for /start, in seconds.",
)
@bridgectl_options
@click.pass_context
def discover(ctx: click.Context, wait_s: int, as_json: bool) -> None:
    """Wait for someone to send /start to the bot; print their chat id and the config line.

    Stop bridge-telegram first: Telegram allows one poller per bot. Exit 1 when nobody sent
    /start in time.
    """
    loaded = load(ctx, as_json=as_json)
    token = loaded.secrets.telegram_bot_token
    if token is None:
        raise CtlError(
            "TELEGRAM_BOT_TOKEN is not set; put TELEGRAM_BOT_TOKEN=<token from "
            "@BotFather> in .env beside bridge.config.toml (or export it) and run "
            "again",
            exit_code=EXIT_USAGE,
            code="no_token",
            as_json=as_json,
        )
    root = loaded.config.telegram.api_base_url
    found = run(_poll(root, token.get_secret_value(), wait_s, as_json=as_json))
    if found is None:
        raise CtlError(
            f"nobody sent /start within {wait_s} s; open the bot's chat in Telegram, "
            "send /start, and run this again (--timeout to wait longer)",
            code="timeout",
            as_json=as_json,
        )
    where = str(loaded.path) if loaded.path else "bridge.config.toml"
    current = loaded.config.telegram.authorized_chat_id
    if as_json:
        payload: dict[str, Any] = {
            **asdict(found),
            "config_line": found.config_line,
            "config_path": where,
            "already_configured": current == found.chat_id,
        }
        emit_json(payload)
        return
    handle = f", @{found.username}" if found.username else ""
    kind = "private chat with" if found.chat_type == "private" else f"{found.chat_type}"
    click.echo(f"Found chat {found.chat_id} ({kind} {found.name}{handle}).")
    if current == found.chat_id:
        click.echo(f"{where} already has it: {found.config_line}")
        return
    click.echo(f"Add this line under [telegram] in {where}:")
    click.echo(f"  {found.config_line}")
    if current is not None:
        note(f"{where} currently authorizes chat {current}; replace that line")
