"""Who the bot serves: exactly one private chat, ``telegram.authorized_chat_id``.

Everyone else learns nothing: a stranger's message reaches no thread and gets no answer, in a
private chat as in groups and channels. Every refusal is logged with the user and chat ids (the
first per sender per :data:`WARN_EVERY_S` as a warning, the rest at debug level, so a flood
cannot flood the journal). The bot never says which chat it serves, never echoes the sender's
id, and never lists its commands to strangers.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import structlog

log = structlog.get_logger("bridgehost.telegram.access")

WARN_EVERY_S = 3600.0
"""At most one warning line in the journal per stranger per hour."""
MAX_TRACKED_USERS = 10_000


class Verdict(Enum):
    """What to do with an update."""

    SERVE = "serve"
    """From the authorized private chat: handle it."""
    IGNORE = "ignore"
    """Anything else (strangers, groups, channels, updates without a chat): no answer."""


@dataclass(frozen=True)
class Sender:
    """The parts of an update access control looks at."""

    chat_id: int | None
    chat_type: str | None
    user_id: int | None
    is_bot: bool = False


class Access:
    """Decides, per update, whether to serve it or ignore it."""

    def __init__(
        self,
        authorized_chat_id: int,
        *,
        warn_every_s: float = WARN_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.authorized_chat_id = authorized_chat_id
        self.warn_every_s = warn_every_s
        self._clock = clock
        self._warned: OrderedDict[int, float] = OrderedDict()

    def is_authorized(self, sender: Sender) -> bool:
        """The authorized user, writing in their private chat with the bot."""
        return (
            sender.chat_type == "private"
            and not sender.is_bot
            and sender.chat_id == self.authorized_chat_id
            and sender.user_id == self.authorized_chat_id
        )

    def check(self, sender: Sender) -> Verdict:
        """Serve the authorized chat; ignore anyone else (logged)."""
        if self.is_authorized(sender):
            return Verdict.SERVE
        key = sender.user_id if sender.user_id is not None else sender.chat_id
        due = key is not None and self._due(key)
        level = log.warning if due else log.debug
        level(
            "refused an unauthorized telegram update",
            user_id=sender.user_id,
            chat_id=sender.chat_id,
            chat_type=sender.chat_type,
        )
        return Verdict.IGNORE

    def _due(self, key: int) -> bool:
        """True (and remembered) when ``key`` was not warned about within the window."""
        now = self._clock()
        last = self._warned.get(key)
        if last is not None and now - last < self.warn_every_s:
            return False
        self._warned[key] = now
        self._warned.move_to_end(key)
        while len(self._warned) > MAX_TRACKED_USERS:
            self._warned.popitem(last=False)
        return True
