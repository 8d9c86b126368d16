"""The bridge's side of ``/ws/bridge`` (the frames are in :mod:`bridgehost.protocol.bridge`).

:class:`ControlChannel` is the one bridge client: bridge-telegram runs it, and so does the demo.
It connects to ``realtime.effective_control_url`` with ``Authorization: Bearer
<REALTIME_CONTROL_SECRET>``, says ``bridge.hello`` with its status, and then, until it is
cancelled: answers ``call.prepare`` (each in its own task, through ``prepare``), stores every
``call.event`` through its :class:`EventRecorder` (bridge-telegram's
:class:`~bridgehost.telegram.handover.CallTracker`) before it sends ``call.ack``, sends
``bridge.status`` when the status changes and every :data:`STATUS_EVERY_S`, and sends
``call.hangup`` for ``/hangup``. A lost connection is retried forever with bounded exponential
backoff and jitter; each attempt is bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from bridgehost.protocol.bridge import (
    CLOSE_REPLACED,
    BridgeHello,
    BridgeStatus,
    CallAck,
    CallDelegate,
    CallDelegateCancel,
    CallEventFrame,
    CallHangup,
    CallPrepare,
    CallPrepareResult,
    Frame,
    FrameError,
    HelloOk,
    UnknownFrame,
    parse_from_gateway,
)
from bridgehost.protocol.end_reasons import EndReason

log = structlog.get_logger("bridgehost.telegram.control")

OPEN_TIMEOUT_S = 5.0
HELLO_OK_TIMEOUT_S = 30.0
"""The gateway replays unacknowledged events before ``hello.ok``; this bounds the wait."""
STATUS_POLL_S = 2.0
STATUS_EVERY_S = 30.0
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

Prepare = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""Answers one ``call.prepare`` (its ``call``): ``{allowed, reason?, context: {parts}}``."""
Status = Callable[[], dict[str, Any]]


class EventRecorder(Protocol):
    """Where forwarded call events are stored before they are acknowledged."""

    def record(self, call_id: str, event: dict[str, Any]) -> bool:
        """Store one event (idempotent by ``(call_id, seq)``); True the first time."""


class Backoff:
    """Exponential delays with jitter: half fixed, half random, capped at ``cap``."""

    def __init__(self, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_MAX_S) -> None:
        self.base, self.cap, self.failures = base, cap, 0

    def next(self) -> float:
        """The delay before the next attempt."""
        ceiling: float = min(self.cap, self.base * 2 ** min(self.failures, 30))
        self.failures += 1
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """A connection worked: start again from ``base``."""
        self.failures = 0


def describe_failure(url: str, exc: BaseException) -> str:
    """Why a connection attempt failed, as a sentence with the fix."""
    if isinstance(exc, InvalidStatus):
        code = exc.response.status_code
        if code in (401, 403):
            return (
                f"the gateway refused the control secret (HTTP {code}): set the same "
                "REALTIME_CONTROL_SECRET for bridge-gateway and bridge-telegram"
            )
        if code == 404:
            return (
                f"nothing serves the control channel at {url} (HTTP 404): check "
                "realtime.control_url"
            )
        return f"the gateway answered HTTP {code} at {url}"
    if isinstance(exc, InvalidURI):
        return f"realtime.control_url {url!r} is not a WebSocket URL"
    if isinstance(exc, ConnectionClosed):
        frame = exc.rcvd
        if frame is not None and frame.code == CLOSE_REPLACED:
            return "another bridge with the same realtime.bridge_id took over the channel"
        if frame is not None:
            return f"the gateway closed the channel ({frame.code} {frame.reason})".strip()
        return "the connection to the gateway was lost"
    if isinstance(exc, TimeoutError):
        return f"the gateway at {url} did not answer in time"
    if isinstance(exc, OSError):
        return (
            f"the gateway at {url} is not answering ({exc.strerror or exc}): start "
            "bridge-gateway (systemctl start bridge-gateway)"
        )
    return f"{type(exc).__name__}: {exc}"


class ControlChannel:
    """The control channel client; run :meth:`run` as a task and cancel it to stop."""

    def __init__(
        self,
        url: str,
        secret: str,
        bridge_id: str,
        *,
        tracker: EventRecorder,
        prepare: Prepare,
        status: Status,
        backoff: Backoff | None = None,
    ) -> None:
        self.url, self.bridge_id = url, bridge_id
        self._secret = secret
        self.tracker, self.prepare, self.status = tracker, prepare, status
        self.backoff = backoff or Backoff()
        self.last_error: str | None = None
        self.connected_once = False
        self._ws: ClientConnection | None = None
        self._hello_ok = False
        self._up = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._nudge = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        #: ``call.delegate`` / ``call.delegate.cancel`` go here (telegram.call_delegations).
        self.on_delegate: Callable[[Frame], Awaitable[None]] | None = None

    @property
    def connected(self) -> bool:
        """Connected and greeted (``hello.ok`` received)."""
        return self._ws is not None and self._hello_ok

    async def wait_connected(self) -> None:
        """Wait until the channel is connected and greeted."""
        await self._up.wait()

    def nudge(self) -> None:
        """The status may have changed: send it now rather than at the next poll."""
        self._nudge.set()

    async def run(self) -> None:
        """Connect, serve, reconnect; forever, until cancelled."""
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc)
            finally:
                self._ws, self._hello_ok = None, False
                self._up.clear()
            await asyncio.sleep(self.backoff.next())

    def _failed(self, exc: BaseException) -> None:
        error = describe_failure(self.url, exc)
        (log.warning if error != self.last_error else log.debug)(
            "control channel unavailable; retrying", error=error
        )
        self.last_error = error

    async def _session(self) -> None:
        async with connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self._secret}"},
            open_timeout=OPEN_TIMEOUT_S,
            close_timeout=2.0,
            ping_interval=20.0,
            ping_timeout=20.0,
            max_size=MAX_MESSAGE_BYTES,
            proxy=None,
        ) as ws:
            self._ws = ws
            sent = self.status()
            await ws.send(BridgeHello(bridge_id=self.bridge_id, status=sent).to_json())
            heartbeat = asyncio.create_task(self._heartbeat(sent))
            try:
                async with asyncio.timeout(HELLO_OK_TIMEOUT_S) as deadline:
                    async for raw in ws:
                        await self._dispatch(raw)
                        if self._hello_ok and deadline.when() is not None:
                            deadline.reschedule(None)
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
            if ws.close_code not in (None, 1000):
                raise ws.close_exc

    async def _heartbeat(self, sent: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        last_at = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), STATUS_POLL_S)
            self._nudge.clear()
            current = self.status()
            due = current != sent or loop.time() - last_at >= STATUS_EVERY_S
            if due and await self.send(BridgeStatus(status=current)):
                sent, last_at = current, loop.time()

    async def _dispatch(self, raw: str | bytes) -> None:
        try:
            frame = parse_from_gateway(raw)
        except UnknownFrame as exc:
            log.debug("ignored a control channel message", type=exc.kind)
            return
        except FrameError as exc:
            log.warning("gateway sent a bad frame on the control channel", error=str(exc))
            return
        if isinstance(frame, HelloOk):
            self._hello_ok, self.last_error, self.connected_once = True, None, True
            self._up.set()
            self.backoff.reset()
            log.info("control channel connected", url=self.url)
        elif isinstance(frame, CallEventFrame):
            await self._event(frame)
        elif isinstance(frame, CallPrepare):
            task = asyncio.create_task(self._answer_prepare(frame))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(frame, CallDelegate | CallDelegateCancel) and self.on_delegate is not None:
            await self.on_delegate(frame)

    async def _event(self, frame: CallEventFrame) -> None:
        call_id, event = frame.call_id, frame.event.model_dump()
        try:
            self.tracker.record(call_id, event)
        except Exception as exc:  # not acknowledged: the gateway replays it after a reconnect
            log.error(
                "could not store a call event; reconnecting to have it replayed",
                call_id=call_id,
                seq=frame.event.seq,
                error=str(exc),
            )
            if self._ws is not None:
                await self._ws.close(code=1011, reason="store failed")
            return
        await self.send(CallAck(call_id=call_id, seq=frame.event.seq))
        if frame.event.type in ("call.started", "call.ended"):
            self.nudge()

    async def _answer_prepare(self, frame: CallPrepare) -> None:
        call = frame.call.model_dump()
        try:
            answer = CallPrepareResult.model_validate(
                {**await self.prepare(call), "reply_to": frame.id}
            )
        except Exception as exc:  # a bug must become a refusal, not a gateway time-out
            log.exception("preparing a call failed", call_id=frame.call.call_id)
            answer = CallPrepareResult(
                reply_to=frame.id,
                allowed=False,
                context={"parts": []},
                reason=f"The bridge failed to prepare the call ({type(exc).__name__}). "
                "See journalctl -u bridge-telegram.",
            )
        await self.send(answer)
        self.nudge()

    async def send(self, frame: Frame) -> bool:
        """Send one frame; False when not connected."""
        ws = self._ws
        if ws is None:
            return False
        try:
            async with self._send_lock:
                await ws.send(frame.to_json())
        except (ConnectionClosed, WebSocketException, OSError):
            return False
        return True

    async def hangup(self, call_id: str | None, reason: str = EndReason.TELEGRAM_HANGUP) -> bool:
        """Ask the gateway to end the call (``call_id`` None: whichever is running)."""
        if not self.connected:
            return False
        return await self.send(CallHangup(call_id=call_id, reason=reason))

    async def close(self) -> None:
        """Cancel prepares in flight (the run task is cancelled by its owner)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
