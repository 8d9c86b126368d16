"""A ``SessionEvents`` for the WebRTC backends' tests: it records what a backend session
reports and checks every event against the gateway's backend whitelist."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from bridgehost.gateway.events import validate_event


class Recorder:
    """A :class:`bridgehost.providers.SessionEvents` that checks events as the gateway does."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.end_reasons: list[str] = []

    async def event(self, event: Mapping[str, Any]) -> None:
        """Record one event; it must pass the gateway's backend whitelist unchanged."""
        assert validate_event(event, "backend") == dict(event)
        self.events.append(dict(event))

    async def audio(self, chunk: bytes) -> None:
        """WebRTC backends never relay audio."""
        raise AssertionError("a WebRTC backend must not relay audio")

    async def ended(self, reason: str) -> None:
        """Record that the backend ended the session."""
        self.end_reasons.append(reason)

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The events of one type."""
        return [e for e in self.events if e["type"] == kind]

    def types(self) -> list[str]:
        """The event types so far."""
        return [e["type"] for e in self.events]

    async def wait_for(
        self, event_type: str, timeout: float = 8.0, *, having: str | None = None
    ) -> dict[str, Any]:
        """The first event of that type (with the key ``having``, if given; bounded wait)."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if event["type"] == event_type and (having is None or having in event):
                        return event
                await asyncio.sleep(0.02)
