"""A loopback stand-in for OpenAI's GPT-Live API, written against the ``openai`` SDK's types.

``async with FakeLive(api_key=…, script=[…]) as fake:`` serves on 127.0.0.1 and a random port:

- ``POST /v1/live/sessions`` ``{session, transport: {type: "webrtc", sdp}}``: the session
  object is strict (unknown fields rejected, as the real service does; reference §3) and must
  parse as the SDK's ``SessionConfig``; a Realtime model is refused with ``invalid_model``; an
  aiortc peer (``iceServers=[]``, loopback candidates only) answers. 201 with
  ``{session: {id: "live_…"}, transport: {type: "webrtc", sdp}}`` (``LiveCreateResponse``).
- ``GET /v1/live/sessions/{id}/attach``: the sideband WebSocket. It gets every server event from
  the moment it joins (replay is UNCONFIRMED upstream, so none here) and accepts the client
  commands under client delegation: ``session.thinking.append`` /
  ``session.commentary.append`` (``delegation_id`` required, nullable, must name a known
  delegation; ``content`` at most 500 tokens) are acknowledged with ``….appended``;
  ``response.create`` and ``response.item.create`` fail with ``invalid_request_error`` as they
  do in client mode; ``session.start`` fails on a sideband; ``session.close`` drains, sends
  ``session.closed {reason: "close_requested"}`` and closes the socket with 1000.
- The browser's ``oai-events`` channel gets only ``client.data_channel.allowed_server_events``
  and may send only ``allowed_client_events``.

Every server event the fake sends is validated against the SDK's model of its type, and every
client command against the SDK's client event model, so the fake cannot drift from the SDK.

The model follows a *script* once the sideband is attached: ``("user", text)`` and
``("assistant", text)`` speak transcript deltas word by word with timeline stamps;
``("delegate", None)`` sends ``session.delegation.created`` at the current offset and waits
(up to ``delegation_wait_s``) for a commentary append with its id, which it then "says".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, get_args

from aiohttp import WSMsgType, web
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from openai.types.live import (
    BuiltInVoice,
    CommentaryAppendedEvent,
    CommentaryAppendEvent,
    DelegationCreatedEvent,
    ErrorEvent,
    InputTranscriptDeltaEvent,
    OutputTranscriptDeltaEvent,
    SessionClosedEvent,
    SessionCloseEvent,
    SessionConfig,
    SessionStartedEvent,
    SessionUsageUpdatedEvent,
    ThinkingAppendedEvent,
    ThinkingAppendEvent,
)
from openai.types.live.input_audio_mute_event import InputAudioMuteEvent
from openai.types.live.input_audio_unmute_event import InputAudioUnmuteEvent
from openai.types.live.instructions_append_event import InstructionsAppendEvent
from openai.types.live.response_create_event import ResponseCreateEvent
from openai.types.live.response_item_create_event import ResponseItemCreateEvent
from openai.types.live.session_start_event import SessionStartEvent
from openai.types.live.session_update_event import SessionUpdateEvent
from pydantic import BaseModel, ValidationError

from .openai_common import bearer_key, error_response, invalid_key_response, new_id
from .openai_webrtc import ToneTrack, loopback_only_ice

Script = list[tuple[str, str | None]]

SERVER_MODELS: dict[str, type[BaseModel]] = {
    "session.started": SessionStartedEvent,
    "session.closed": SessionClosedEvent,
    "session.usage.updated": SessionUsageUpdatedEvent,
    "session.input_transcript.delta": InputTranscriptDeltaEvent,
    "session.output_transcript.delta": OutputTranscriptDeltaEvent,
    "session.delegation.created": DelegationCreatedEvent,
    "session.thinking.appended": ThinkingAppendedEvent,
    "session.commentary.appended": CommentaryAppendedEvent,
    "error": ErrorEvent,
}
CLIENT_MODELS: dict[str, type[BaseModel]] = {
    "session.start": SessionStartEvent,
    "session.update": SessionUpdateEvent,
    "session.input_audio.mute": InputAudioMuteEvent,
    "session.input_audio.unmute": InputAudioUnmuteEvent,
    "session.instructions.append": InstructionsAppendEvent,
    "session.thinking.append": ThinkingAppendEvent,
    "session.commentary.append": CommentaryAppendEvent,
    "response.item.create": ResponseItemCreateEvent,
    "response.create": ResponseCreateEvent,
    "session.close": SessionCloseEvent,
}
SESSION_FIELDS = frozenset(SessionConfig.model_fields)
VOICES = frozenset(get_args(BuiltInVoice))
MAX_APPEND_TOKENS = 500
CHARS_PER_TOKEN = 4


class LiveError(Exception):
    """A refused command: becomes an ``error`` event."""

    def __init__(self, message: str, code: str, type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message, self.code, self.type_ = message, code, type_


def check_session(cfg: Any) -> None:
    """Refuse a startup session config the way the service does (strict object)."""
    if not isinstance(cfg, dict):
        raise LiveError("Invalid 'session': expected an object.", "invalid_type")
    unknown = sorted(set(cfg) - SESSION_FIELDS)
    if unknown:
        raise LiveError(f"Unknown parameter: 'session.{unknown[0]}'.", "unknown_parameter")
    try:
        SessionConfig.model_validate(cfg)
    except ValidationError as exc:
        where = ".".join(map(str, exc.errors()[0]["loc"]))
        raise LiveError(f"Invalid 'session.{where}'.", "invalid_value") from None
    model = cfg["model"]
    if "realtime" in model or not model.startswith("gpt-live"):
        raise LiveError(
            f"The model '{model}' is not supported on /v1/live/sessions.", "invalid_model"
        )
    voice = ((cfg.get("audio") or {}).get("output") or {}).get("voice", "marin")
    if isinstance(voice, str) and voice not in VOICES:
        raise LiveError(f"Voice '{voice}' is not available.", "forbidden")
    if len(cfg.get("input") or []) > 128:
        raise LiveError("'session.input' has more than 128 messages.", "invalid_value")


class LiveSession:
    """One Live session: the peer, its sidebands, the script, and what happened."""

    def __init__(self, fake: FakeLive, session_id: str, cfg: dict[str, Any], offer: str) -> None:
        self.fake = fake
        self.id = session_id
        self.config = cfg
        self.offer = offer
        self.started_at = time.monotonic()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tone = ToneTrack()
        self.channel: RTCDataChannel | None = None
        self.sidebands: set[web.WebSocketResponse] = set()
        self.events: list[dict[str, Any]] = []
        self.client_events: list[tuple[str, dict[str, Any]]] = []
        #: When each server event was sent (by ``event_id``) and each client event received.
        self.sent_at: dict[str, float] = {}
        self.received_at: list[float] = []
        self.refused: list[tuple[str, str]] = []
        self.delegations: dict[str, int] = {}
        self.commentary: dict[str, list[str]] = {}
        self.thinking: dict[str | None, list[str]] = {}
        self.closed = asyncio.Event()
        self.close_reason: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._script_started = False

    # -- records and helpers -------------------------------------------------------------------
    def now_ms(self) -> int:
        """The session timeline: milliseconds since creation."""
        return int((time.monotonic() - self.started_at) * 1000)

    def resource(self) -> dict[str, Any]:
        """The resolved session (``SessionResource``)."""
        return {
            "id": self.id,
            "expires_at": int(time.time()) + 7200,
            "status": "active",
            **self.config,
        }

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def emit(self, event: dict[str, Any]) -> None:
        """Send one server event (validated against the SDK) to sidebands and the browser."""
        event.setdefault("event_id", new_id("event", 21))
        model = SERVER_MODELS.get(event["type"])
        if model is not None:
            model.model_validate(event)  # the fake must speak the SDK's schema
        self.events.append(event)
        self.sent_at[event["event_id"]] = time.monotonic()
        text = json.dumps(event)
        for ws in list(self.sidebands):
            if not ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(text)
        if self.channel is not None and self.channel.readyState == "open":
            allowed = (self.config.get("client") or {}).get("data_channel", {})
            selectors = allowed.get("allowed_server_events", "all")
            if selectors == "all" or {"type": event["type"]} in selectors:
                self.channel.send(text)

    async def error(self, exc: LiveError, client_event_id: str | None) -> None:
        """An ``error`` event for a refused command (the session goes on)."""
        error: dict[str, Any] = {"type": exc.type_, "code": exc.code, "message": exc.message}
        if client_event_id:
            error["client_event_id"] = client_event_id
        await self.emit({"type": "error", "error": error})

    # -- life cycle ----------------------------------------------------------------------------
    async def answer(self) -> str:
        """Answer the browser's offer with the aiortc peer."""
        self.pc.on("datachannel", self._on_datachannel)
        await self.pc.setRemoteDescription(RTCSessionDescription(self.offer, "offer"))
        if any(t.kind == "audio" for t in self.pc.getTransceivers()):
            self.pc.addTrack(self.tone)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    def start_script(self) -> None:
        """Begin: ``session.started``, then the script, then usage every ``usage_every_s``."""
        if not self._script_started:
            self._script_started = True
            self._spawn(self._run())

    async def _run(self) -> None:
        await self.emit({"type": "session.started", "session": self.resource()})
        self._spawn(self._usage())
        for role, text in self.fake.script:
            if self.closed.is_set():
                return
            if role == "delegate":
                await self._delegate()
            else:
                await self.speak(role, text or "")
            await asyncio.sleep(self.fake.pause_s)

    async def speak(self, role: str, text: str) -> None:
        """Transcript deltas, word by word, on the timeline."""
        kind = "input" if role == "user" else "output"
        for i, word in enumerate(text.split()):
            start = self.now_ms()
            await asyncio.sleep(self.fake.word_s)
            delta = word if i == 0 else f" {word}"
            end = self.now_ms()
            await self.emit(
                {
                    "type": f"session.{kind}_transcript.delta",
                    "delta": delta,
                    "start_ms": start,
                    "end_ms": max(end, start + 1),
                }
            )

    async def _delegate(self) -> None:
        delegation_id = new_id("item", 21)
        self.delegations[delegation_id] = self.now_ms()
        await self.emit(
            {
                "type": "session.delegation.created",
                "offset_ms": self.delegations[delegation_id],
                "delegation": {"id": delegation_id, "type": "delegation", "target": "client"},
            }
        )
        deadline = time.monotonic() + self.fake.delegation_wait_s
        while not self.commentary.get(delegation_id) and time.monotonic() < deadline:
            if self.closed.is_set():
                return
            await asyncio.sleep(0.02)
        for said in self.commentary.get(delegation_id, []):
            await self.speak("assistant", said)

    async def _usage(self) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(self.fake.usage_every_s)
            if self.closed.is_set():
                return
            await self.emit({"type": "session.usage.updated", "usage": self._seconds()})

    def _seconds(self) -> dict[str, Any]:
        return {"seconds": round(time.monotonic() - self.started_at, 3)}

    async def close(self, reason: str, client_event_id: str | None = None) -> None:
        """Finalize: ``session.closed`` with final usage, then close sidebands and the peer."""
        if self.closed.is_set():
            return
        await asyncio.sleep(self.fake.close_drain_s)
        event: dict[str, Any] = {
            "type": "session.closed",
            "reason": reason,
            "session": self.resource(),
            "usage": self._seconds(),
        }
        if client_event_id:
            event["client_event_id"] = client_event_id
        await self.emit(event)
        self.closed.set()
        self.close_reason = reason
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        for ws in list(self.sidebands):
            await ws.close(code=1000, message=b"session closed")
        await self.pc.close()

    # -- client commands -----------------------------------------------------------------------
    async def command(self, raw: str, *, via: str) -> None:
        """Handle one client command from ``via`` (``sideband`` or ``data_channel``)."""
        try:
            event = json.loads(raw)
        except ValueError:
            await self.error(LiveError("Invalid JSON.", "invalid_json"), None)
            return
        if not isinstance(event, dict):
            return
        client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        kind = event.get("type")
        self.client_events.append((via, event))
        self.received_at.append(time.monotonic())
        try:
            await self._command(event, str(kind), via, client_event_id)
        except LiveError as exc:
            self.refused.append((via, str(kind)))
            await self.error(exc, client_event_id)

    async def _command(
        self, event: dict[str, Any], kind: str, via: str, client_event_id: str | None
    ) -> None:
        model = CLIENT_MODELS.get(kind)
        if model is None:
            raise LiveError(
                f"Invalid value: '{kind}'. Supported values are: {', '.join(CLIENT_MODELS)}.",
                "invalid_value",
            )
        if via == "data_channel":
            allowed = (self.config.get("client") or {}).get("data_channel", {})
            permitted = allowed.get("allowed_client_events", "all")
            if permitted != "all" and kind not in permitted:
                raise LiveError(f"'{kind}' is not allowed on this data channel.", "forbidden")
        try:
            model.model_validate(event)
        except ValidationError as exc:
            where = ".".join(map(str, exc.errors()[0]["loc"]))
            raise LiveError(f"Invalid '{where}'.", "invalid_value") from None
        if kind == "session.start":
            raise LiveError("The session has already started.", "session_already_started")
        if kind in ("response.create", "response.item.create"):
            raise LiveError(f"{kind} requires Responses delegation.", "invalid_request_error")
        if kind == "session.update":
            raise LiveError(
                "Only Responses delegation settings can change.", "immutable_field_update"
            )
        if kind in ("session.thinking.append", "session.commentary.append"):
            await self._append(event, kind, client_event_id)
        elif kind == "session.close":
            self._spawn(self.close("close_requested", client_event_id))

    async def _append(self, event: dict[str, Any], kind: str, client_event_id: str | None) -> None:
        if "delegation_id" not in event:
            raise LiveError(
                "Missing required parameter: 'delegation_id'.", "missing_required_parameter"
            )
        delegation_id, content = event["delegation_id"], event["content"]
        if delegation_id is not None and delegation_id not in self.delegations:
            raise LiveError(f"Unknown delegation '{delegation_id}'.", "unknown_delegation")
        if len(content) > MAX_APPEND_TOKENS * CHARS_PER_TOKEN:
            raise LiveError("'content' is longer than 500 tokens.", "string_above_max_length")
        if kind == "session.commentary.append":
            self.commentary.setdefault(delegation_id, []).append(content)
        else:
            self.thinking.setdefault(delegation_id, []).append(content)
        now = self.now_ms()
        ack: dict[str, Any] = {
            "type": kind.replace(".append", ".appended"),
            "delegation_id": delegation_id,
            "content": content,
            "start_ms": now,
            "end_ms": now + 1,
        }
        if client_event_id:
            ack["client_event_id"] = client_event_id
        await self.emit(ack)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != "oai-events" or self.channel is not None:
            return
        self.channel = channel
        channel.on(
            "message", lambda message: self._spawn(self.command(message, via="data_channel"))
        )


class FakeLive:
    """The fake GPT-Live API server; see the module docstring."""

    def __init__(
        self,
        api_key: str = "sk-test-live",
        *,
        script: Script | None = None,
        word_s: float = 0.02,
        pause_s: float = 0.05,
        usage_every_s: float = 0.3,
        delegation_wait_s: float = 10.0,
        close_drain_s: float = 0.05,
    ) -> None:
        self.api_key = api_key
        self.script: Script = list(script or [("user", "Hello there"), ("assistant", "Hi!")])
        self.word_s, self.pause_s = word_s, pause_s
        self.usage_every_s = usage_every_s
        self.delegation_wait_s = delegation_wait_s
        self.close_drain_s = close_drain_s
        self.port = 0
        self.sessions: dict[str, LiveSession] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail_next: tuple[int, str, str] | None = None
        self._stack = contextlib.ExitStack()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """What ``OPENAI_BASE_URL`` is set to."""
        return f"http://127.0.0.1:{self.port}/v1"

    def last(self) -> LiveSession:
        """The most recently created session."""
        return list(self.sessions.values())[-1]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll ``predicate`` until true (``TimeoutError`` after ``timeout``)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)

    async def start(self) -> Self:
        """Listen on 127.0.0.1 (a free port)."""
        self._stack.enter_context(loopback_only_ice())
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/v1/live/sessions", self._create)
        app.router.add_get("/v1/live/sessions/{session_id}/attach", self._attach)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Close every session and stop listening."""
        for session in list(self.sessions.values()):
            if not session.closed.is_set():
                await session.close("connection_lost")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._stack.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _create(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(("create", request.path))
        key = bearer_key(request)
        if key != self.api_key:
            return invalid_key_response(key)
        if self.fail_next is not None:
            status, code, message = self.fail_next
            self.fail_next = None
            return error_response(status, message, code=code)
        try:
            body = await request.json()
        except ValueError:
            return error_response(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict) or set(body) - {"session", "transport"}:
            return error_response(400, "Unknown parameter.", code="unknown_parameter")
        transport = body.get("transport") or {}
        if transport.get("type") != "webrtc" or not str(transport.get("sdp", "")).startswith("v=0"):
            return error_response(
                400, "Invalid 'transport.sdp': expected an SDP offer.", param="transport.sdp"
            )
        try:
            check_session(body.get("session"))
        except LiveError as exc:
            return error_response(400, exc.message, code=exc.code, param="session")
        session = LiveSession(self, new_id("live", 24), body["session"], transport["sdp"])
        try:
            answer = await session.answer()
        except Exception as exc:  # aiortc raises ValueError and friends for bad SDP
            await session.pc.close()
            return error_response(400, f"Invalid 'transport.sdp': {exc}", param="transport.sdp")
        self.sessions[session.id] = session
        return web.json_response(
            {"session": {"id": session.id}, "transport": {"type": "webrtc", "sdp": answer}},
            status=201,
        )

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(("attach", request.path))
        key = bearer_key(request)
        if key != self.api_key:
            return invalid_key_response(key)
        session = self.sessions.get(request.match_info["session_id"])
        if session is None or session.closed.is_set():
            return error_response(404, "Session not found.", code="session_not_found")
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        session.sidebands.add(ws)
        session.start_script()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await session.command(msg.data, via="sideband")
        session.sidebands.discard(ws)
        return ws


__all__ = ["FakeLive", "LiveError", "LiveSession", "check_session"]
