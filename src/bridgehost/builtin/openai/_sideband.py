"""The gateway's server-side ("sideband") WebSocket on one OpenAI WebRTC call.

``client.realtime.connect(call_id=…)`` (the official SDK) opens ``{base}/realtime?call_id=…``
with the server key; from then on OpenAI sends the call's server events here as well as to the
browser's data channel. A :class:`Sideband` reads them in one task and hands each parsed event
to ``on_event``. When the socket closes:

* because we closed it (:meth:`Sideband.close`): nothing more happens;
* normally (code 1000), or a re-attach finds the call gone (404): the call ended upstream, so
  ``on_lost("backend_ended")``;
* abnormally: it re-attaches up to ``reconnects`` times with a short backoff, and reports
  ``on_lost("sideband_lost")`` if that fails (the gateway then ends the call, because it
  would no longer see transcripts or be able to account for the call).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from structlog.typing import FilteringBoundLogger
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from bridgehost.builtin._openai_errors import handshake_error
from bridgehost.protocol.end_reasons import EndReason
from bridgehost.providers import ProviderStartError

if TYPE_CHECKING:  # the SDK takes ~0.7 s to import; the client comes from the caller
    from openai import AsyncOpenAI
    from openai.resources.realtime.realtime import AsyncRealtimeConnection

OnEvent = Callable[[dict[str, Any]], Awaitable[None]]
OnLost = Callable[[str], None]

CALL_ENDED = EndReason.BACKEND_ENDED.value
SIDEBAND_LOST = EndReason.SIDEBAND_LOST.value
MAX_BACKOFF_S = 2.0


class CallGone(ProviderStartError):
    """The call no longer exists upstream (the sideband handshake answered 404)."""


class Sideband:
    """One call's sideband: connect, read in the background, close; see the module docstring."""

    def __init__(
        self,
        client: AsyncOpenAI,
        call_id: str,
        *,
        on_event: OnEvent,
        on_lost: OnLost,
        timeout_s: float,
        reconnects: int,
        log: FilteringBoundLogger,
    ) -> None:
        self.client = client
        self.call_id = call_id
        self.on_event = on_event
        self.on_lost = on_lost
        self.timeout_s = timeout_s
        self.reconnects = reconnects
        self.log = log
        self.received = 0
        self._conn: AsyncRealtimeConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def url(self) -> str:
        """Where the sideband connects (no secrets in it)."""
        base = str(self.client.websocket_base_url or self.client.base_url)
        return f"{base.rstrip('/')}/realtime?call_id={self.call_id}"

    async def connect(self) -> None:
        """Open the WebSocket (bounded); raise :class:`ProviderStartError` with a fix."""
        manager = self.client.realtime.connect(
            call_id=self.call_id,
            # websockets.connect options the SDK passes through but does not declare
            websocket_connection_options={  # type: ignore[typeddict-unknown-key]
                "open_timeout": self.timeout_s,
                "close_timeout": 1.0,
                "ping_interval": 20.0,
            },
        )
        try:
            async with asyncio.timeout(self.timeout_s + 1.0):
                self._conn = await manager.enter()
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            error = handshake_error(exc, timeout_s=self.timeout_s, url=self.url)
            if isinstance(exc, InvalidStatus) and exc.response.status_code == 404:
                raise CallGone(str(error)) from exc
            raise error from exc

    def start(self) -> None:
        """Start reading events in the background (after a successful :meth:`connect`)."""
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"openai-sideband-{self.call_id}"
        )

    async def send(self, event: dict[str, Any]) -> None:
        """Send one client event to the call (``session.update``, ``response.create``…)."""
        if self._conn is None or self._closing:
            raise RuntimeError("the sideband is not connected")
        await self._conn.send_raw(json.dumps(event))

    async def close(self, drain_s: float) -> None:
        """Stop: let the reader drain for up to ``drain_s`` (final transcripts), then close."""
        self._closing = True
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_s):
                    await asyncio.shield(task)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.5):
                    await self._conn.close(code=1000, reason="gateway ended the call")
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- reading -----------------------------------------------------------------------------

    async def _run(self) -> None:
        attempts = 0
        while True:
            code = await self._pump()
            if self._closing:
                return
            if code == 1000:
                self.log.info("openai.sideband_closed", openai_call_id=self.call_id, code=code)
                self.on_lost(CALL_ENDED)
                return
            if attempts >= self.reconnects:
                self.log.warning("openai.sideband_lost", openai_call_id=self.call_id, code=code)
                self.on_lost(SIDEBAND_LOST)
                return
            attempts += 1
            await asyncio.sleep(min(MAX_BACKOFF_S, 0.25 * 2 ** (attempts - 1)))
            if self._closing:
                return
            try:
                await self.connect()
            except CallGone:
                self.on_lost(CALL_ENDED)
                return
            except ProviderStartError as exc:
                self.log.warning(
                    "openai.sideband_reconnect_failed",
                    openai_call_id=self.call_id,
                    attempt=attempts,
                    error=str(exc),
                )
                continue
            if self._closing and self._conn is not None:
                with contextlib.suppress(Exception):
                    await self._conn.close()
                return
            self.log.info(
                "openai.sideband_reattached", openai_call_id=self.call_id, attempt=attempts
            )

    async def _pump(self) -> int | None:
        """Read until the socket closes; return the close code (None when unknown)."""
        conn = self._conn
        if conn is None:
            return None
        while True:
            try:
                raw = await conn.recv_bytes()
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd is not None else None
            except OSError:
                return None
            try:
                event = json.loads(raw)
            except ValueError:
                self.log.warning("openai.sideband_bad_json", openai_call_id=self.call_id)
                continue
            if not isinstance(event, dict):
                continue
            self.received += 1
            try:
                await self.on_event(event)
            except Exception:  # one bad event must not stop the transcript
                self.log.exception(
                    "openai.sideband_event_failed",
                    openai_call_id=self.call_id,
                    event_type=str(event.get("type"))[:64],
                )


__all__ = ["CALL_ENDED", "SIDEBAND_LOST", "CallGone", "Sideband"]
