"""The ``echo`` realtime backend: offline, plays the caller's audio back after a short delay.

It needs no key and no network, so an operator can test the microphone, the tunnel and the whole
call path without spending money, and the demo runs on it. Audio travels over the gateway's call
socket (relay transport). There is no speech model, so the transcript is marked unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bridgehost import hookimpl
from bridgehost.providers import (
    Health,
    ProviderContext,
    RealtimeBackend,
    SessionEvents,
    SessionSetup,
)

MAX_QUEUED_CHUNKS = 500


class EchoSettings(BaseModel):
    """The ``[plugins.echo]`` table."""

    # Built when the config selects this backend and validates its table, not at registration.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    delay_ms: int = Field(
        600,
        ge=0,
        le=10_000,
        description="How long until the caller's audio comes back",
        json_schema_extra={"unit": "ms"},
    )


class EchoSession:
    """One call: a queue of chunks, each sent back once its delay has passed."""

    def __init__(self, events: SessionEvents, delay_s: float) -> None:
        self.events = events
        self.delay_s = delay_s
        self._queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(MAX_QUEUED_CHUNKS)
        self._task = asyncio.create_task(self._play())

    async def _play(self) -> None:
        while True:
            due, chunk = await self._queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self.events.audio(chunk)

    async def answer_offer(self, sdp: str) -> str:
        """Not supported: echo is relay-only."""
        raise NotImplementedError("the echo backend uses the relay transport")

    async def send_audio(self, chunk: bytes) -> None:
        """Queue a chunk to come back later; drop it if the queue is full."""
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait((time.monotonic() + self.delay_s, chunk))

    async def add_context(self, text: str) -> None:
        """Nothing: echo has no model to tell (the note still reaches the call log)."""

    async def close(self, reason: str) -> None:
        """Stop playing back."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class EchoBackend:
    """The backend object the gateway holds."""

    transport: Literal["webrtc", "relay"] = "relay"

    def __init__(self, context: ProviderContext) -> None:
        settings = context.settings
        self.delay_s = (settings.delay_ms if isinstance(settings, EchoSettings) else 600) / 1000

    async def start(self) -> None:
        """Nothing to connect to."""

    async def stop(self) -> None:
        """Nothing to release."""

    async def health(self) -> Health:
        """Always ready."""
        return Health(ok=True, detail="echo backend: plays audio back, no transcript")

    async def open_session(self, setup: SessionSetup, events: SessionEvents) -> EchoSession:
        """Start echoing for one call, and say why there will be no transcript."""
        await events.event(
            {
                "type": "transcript.unavailable",
                "reason": "the echo backend plays audio back and does not transcribe",
            }
        )
        return EchoSession(events, self.delay_s)


@hookimpl
def bridgehost_register_realtime_backends() -> list[RealtimeBackend]:
    """Register the ``echo`` backend."""
    return [
        RealtimeBackend(
            name="echo",
            description="offline: plays the caller's audio back; for testing mic and network",
            factory=EchoBackend,
            transport="relay",
            settings_model=EchoSettings,
        )
    ]
