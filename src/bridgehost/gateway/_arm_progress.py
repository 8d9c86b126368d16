"""Arming's progress lines, with keep-alives while it waits for something slow.

:meth:`bridgehost.gateway.surface.CallSurface.arm` may wait up to ``realtime.startup_timeout_ms``
for the tunnel or the public origin; ``POST /control/arm`` streams its lines to the client, whose
read timeout must not run out meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

Progress = Callable[[str], None]
"""Called with each progress line."""


class ArmProgress:
    """Arming's progress lines; while arming waits for something (:meth:`waiting_for`), a
    ``still waiting for … (N s)`` line whenever nothing was said for ``keepalive_s``."""

    def __init__(self, progress: Progress, keepalive_s: float) -> None:
        self._progress, self.keepalive_s = progress, keepalive_s
        self._what: str | None = None
        self._since = self._said_at = time.monotonic()

    def tell(self, text: str) -> None:
        """Say one progress line."""
        self._said_at = time.monotonic()
        self._progress(text)

    def waiting_for(self, what: str | None) -> None:
        """What arming waits for from now on (None: nothing slow, no keep-alive lines)."""
        self._what, self._since = what, time.monotonic()

    @contextlib.asynccontextmanager
    async def keeping_alive(self) -> AsyncIterator[None]:
        """Say the keep-alive lines while the block runs."""
        ticker = asyncio.create_task(self._tick())
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _tick(self) -> None:
        while True:
            quiet_s = time.monotonic() - self._said_at
            if quiet_s < self.keepalive_s:
                await asyncio.sleep(self.keepalive_s - quiet_s)
            elif self._what is None:
                await asyncio.sleep(self.keepalive_s)
            else:
                waited_s = time.monotonic() - self._since
                self.tell(f"still waiting for {self._what} ({waited_s:.0f} s)")
