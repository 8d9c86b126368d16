"""One call's live state on the gateway: its record, log, timers, browser socket and backend.

A :class:`CallSession` does no policy of its own; :class:`bridgehost.gateway.calls.CallManager`
drives it. What it guarantees: events are appended to the call's log (flushed to disk) in
sequence order, one at a time, before anyone else sees them.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from aiohttp import web

from bridgehost.basics import iso, utc_now
from bridgehost.providers import BackendSession
from bridgehost.state import CallLog
from bridgehost.state.gateway_store import CallRecord


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CallSession:
    """A call between bootstrap and ``call.ended``."""

    def __init__(self, record: CallRecord, log: CallLog, client_token: str) -> None:
        self.record = record
        self.log = log
        self._token_hash = _hash(client_token)
        self.backend: BackendSession | None = None
        self.browser: web.WebSocketResponse | None = None
        self.ending_reason: str | None = None
        self.ended_by: str | None = None
        self.ended = asyncio.Event()
        self.connected_at: datetime | None = None
        self.max_call_ms = record.max_call_ms
        self.rate_reservation: object | None = None
        self._client_events: dict[str | int, dict[str, Any]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._append_lock = asyncio.Lock()

    @property
    def call_id(self) -> str:
        """The call id."""
        return self.record.call_id

    @property
    def is_ending(self) -> bool:
        """A reason to end was recorded (or the call already ended)."""
        return self.ending_reason is not None or self.ended.is_set()

    def token_matches(self, token: object) -> bool:
        """Constant-time check of the per-call client token."""
        return isinstance(token, str) and secrets.compare_digest(_hash(token), self._token_hash)

    async def append(self, event: dict[str, Any]) -> dict[str, Any]:
        """Stamp server time and the next sequence number, then append and flush to the log."""
        async with self._append_lock:
            stamped = {"seq": self.record.last_seq + 1, "at": iso(utc_now()), **event}
            await asyncio.to_thread(self.log.append, stamped)
            self.record.last_seq = stamped["seq"]
            return stamped

    def seen_client_event(self, client_id: str | int) -> dict[str, Any] | None:
        """The logged event the browser already sent under this id, if any."""
        return self._client_events.get(client_id)

    def remember_client_event(self, client_id: str | int, stamped: dict[str, Any]) -> None:
        """Remember a browser event id (bounded: the oldest ids are forgotten first)."""
        self._client_events[client_id] = stamped
        if len(self._client_events) > 2000:
            self._client_events.pop(next(iter(self._client_events)))

    def connected_ms(self) -> int:
        """Milliseconds since the browser first connected (what the budget charges)."""
        if self.connected_at is None:
            return 0
        return max(0, int((utc_now() - self.connected_at).total_seconds() * 1000))

    # -- timers ------------------------------------------------------------------------

    def set_timer(
        self, name: str, delay_ms: float, action: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        """(Re)start a named one-shot timer that runs ``action`` on the event loop."""
        self.cancel_timer(name)
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.pop(name, None)
            task = loop.create_task(action(), name=f"call-{self.call_id}-{name}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

        self._timers[name] = loop.call_later(max(0.0, delay_ms / 1000), fire)

    def cancel_timer(self, name: str) -> None:
        """Stop a timer if it is pending."""
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def cancel_all_timers(self) -> None:
        """Stop every timer (the call is over)."""
        for name in list(self._timers):
            self.cancel_timer(name)

    def has_timer(self, name: str) -> bool:
        """Whether a timer is pending."""
        return name in self._timers

    async def send_browser(self, message: dict[str, Any]) -> bool:
        """Send a JSON message to the browser socket if it is open."""
        socket = self.browser
        if socket is None or socket.closed:
            return False
        try:
            await socket.send_json(message)
        except (ConnectionError, RuntimeError):
            return False
        return True

    def summary(self) -> dict[str, Any]:
        """The call for status output."""
        return {
            **self.record.to_json(),
            "browser_connected": self.browser is not None and not self.browser.closed,
            "ending_reason": self.ending_reason,
            "connected_ms": self.connected_ms(),
        }
