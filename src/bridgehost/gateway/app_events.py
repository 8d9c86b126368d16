"""The per-call :class:`bridgehost.providers.SessionEvents` a backend session reports to."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import structlog

from bridgehost.gateway.calls import CallManager
from bridgehost.gateway.events import EventError
from bridgehost.gateway.session import CallSession

log = structlog.get_logger("bridgehost.gateway.backend_events")


class CallEvents:
    """Routes a backend's events, audio and end into the call."""

    def __init__(self, calls: CallManager, session: CallSession) -> None:
        self.calls = calls
        self.session = session

    async def event(self, event: Mapping[str, Any]) -> None:
        """Validate and log one backend event; a bad one is logged and dropped."""
        try:
            await self.calls.ingest(self.session, event, "backend")
        except EventError as exc:
            log.warning(
                "backend sent an invalid event", call_id=self.session.call_id, error=str(exc)
            )

    async def audio(self, chunk: bytes) -> None:
        """Relay audio to the browser, if it is connected."""
        socket = self.session.browser
        if socket is not None and not socket.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await socket.send_bytes(chunk)

    async def ended(self, reason: str) -> None:
        """The backend ended the session itself."""
        await self.calls.request_end(self.session, reason[:64] or "backend_ended", "backend")
