"""A subscriber's view of an app-server connection's notifications."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, Self

from bridgehost.codex._errors import CodexError


class _Owner(Protocol):
    closed_reason: str | None
    _subscriptions: set[Subscription]


class Subscription:
    """Notifications for one subscriber, buffered in a bounded queue.

    Use it as a context manager so it is removed when you are done; iterate it, or ``await
    get(timeout)``. When the connection ends, iteration stops and ``get`` raises CodexError.
    """

    def __init__(self, owner: _Owner, methods: frozenset[str] | None, maxsize: int) -> None:
        self._owner = owner
        self._methods = methods
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def _offer(self, msg: dict[str, Any] | None) -> None:
        if msg is not None and self._methods is not None and msg.get("method") not in self._methods:
            return
        if self._queue.full():  # keep the newest: drop the oldest
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(msg)

    async def get(self, timeout: float | None = None) -> dict[str, Any]:
        """The next notification; TimeoutError after ``timeout``; CodexError once closed."""
        async with asyncio.timeout(timeout):
            msg = await self._queue.get()
        if msg is None:
            self._queue.put_nowait(None)
            raise CodexError(self._owner.closed_reason or "codex app-server connection closed")
        return msg

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            return await self.get()
        except CodexError:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop receiving notifications."""
        self._owner._subscriptions.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
