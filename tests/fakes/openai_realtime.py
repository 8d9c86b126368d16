"""A tiny scripted "voice model": the GA Realtime event vocabulary, independent of transport.

One :class:`RealtimeModel` runs one session (a WebRTC call or a plain WebSocket). It takes client
events and input audio, and emits server events through an ``emit`` coroutine: server-VAD turns
(``speech_started``/``speech_stopped``/``committed``), the user item and its transcription (only
when the session turned transcription on, as the real API), and a response whose transcript
comes from a script of ``(user text, assistant text)`` pairs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from openai.types.realtime import ConversationItemCreateEvent
from pydantic import ValidationError

from .openai_common import new_id
from .openai_realtime_session import (
    TONE_100MS,
    SessionError,
    chunks,
    merge_session,
    pcm16_rms,
    transcription_enabled,
    turn_detection,
    usage,
    validate_session,
)

Emit = Callable[[dict[str, Any]], Awaitable[None]]
OnClose = Callable[[int, str], Awaitable[None]]
OnSpeak = Callable[[float], None]

FALLBACK_REPLY = "Okay."


class RealtimeModel:
    """One realtime session's scripted model; see the module docstring."""

    def __init__(
        self,
        session: dict[str, Any],
        script: list[tuple[str, str]],
        *,
        emit: Emit,
        webrtc: bool,
        on_close: OnClose | None = None,
        on_speak: OnSpeak | None = None,
        turn_ms: float = 600.0,
        speech_rms: float = 0.0,
        delta_delay: float = 0.01,
        seconds_per_word: float = 0.08,
    ) -> None:
        self.session = session
        self.script = list(script)
        self.webrtc = webrtc
        self.turn_ms = turn_ms
        self.speech_rms = speech_rms
        self.delta_delay = delta_delay
        self.seconds_per_word = seconds_per_word
        #: Server events emitted, in order (with their ``event_id``).
        self.events: list[dict[str, Any]] = []
        #: Client events received, in order.
        self.client_events: list[dict[str, Any]] = []
        #: Items added with ``conversation.item.create``, in order, as the server stored them.
        self.conversation_items: list[dict[str, Any]] = []
        #: Final transcripts as ``(role, text)``.
        self.transcript: list[tuple[str, str]] = []
        self._emit, self._on_close, self._on_speak = emit, on_close, on_speak
        self._conversation_id = new_id("conv", 21)
        self._next_entry = 0
        self._pending_reply: str | None = None
        self._last_item_id: str | None = None
        self._audio_ms = 0.0
        self._buffer_ms = 0.0
        self._speech_item: str | None = None
        self._speech_start_ms = 0.0
        self._speech_ms = 0.0
        self._task: asyncio.Task[None] | None = None
        self._response_id: str | None = None
        self._closed = False

    # --- plumbing ---------------------------------------------------------------------------
    async def send(self, event: dict[str, Any]) -> None:
        """Stamp an ``event_id``, record, and emit one server event."""
        event = {
            "type": event["type"],
            "event_id": new_id("event", 21),
            **{k: v for k, v in event.items() if k != "type"},
        }
        self.events.append(event)
        await self._emit(event)

    async def error(
        self,
        message: str,
        *,
        code: str | None,
        param: str | None = None,
        event_id: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        """Emit an ``error`` event (the session stays open, as for most real errors)."""
        await self.send(
            {
                "type": "error",
                "error": {
                    "type": type_,
                    "code": code,
                    "message": message,
                    "param": param,
                    "event_id": event_id,
                },
            }
        )

    async def start(self) -> None:
        """Emit ``session.created`` (the first server event of every session)."""
        await self.send({"type": "session.created", "session": self.session})

    async def aclose(self) -> None:
        """Stop whatever turn or response is running; emit nothing more."""
        self._closed = True
        if self._task and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def busy(self) -> bool:
        """Whether a turn or response is being produced."""
        return self._task is not None and not self._task.done()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._task = asyncio.get_running_loop().create_task(coro)

    def _take_entry(self) -> tuple[str, str] | None:
        if self._next_entry >= len(self.script):
            return None
        self._next_entry += 1
        return self.script[self._next_entry - 1]

    # --- audio in ---------------------------------------------------------------------------
    async def feed_audio(self, ms: float, rms: float = 0.0) -> None:
        """Account ``ms`` of input audio; with server VAD, frames at ``rms >= speech_rms`` are
        speech and ``turn_ms`` of speech makes one scripted turn (no barge-in while busy)."""
        self._audio_ms += ms
        self._buffer_ms += ms
        td = turn_detection(self.session)
        if self._closed or td is None or self.busy:
            return
        speech = rms >= self.speech_rms
        if self._speech_item is None:
            if not speech or self._next_entry >= len(self.script):
                return
            self._speech_item = new_id("item", 21)
            self._speech_start_ms = self._audio_ms - ms
            self._speech_ms = 0.0
            await self.send(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": int(self._speech_start_ms),
                    "item_id": self._speech_item,
                }
            )
        if speech:
            self._speech_ms += ms
        if self._speech_ms >= self.turn_ms:
            item_id, self._speech_item = self._speech_item, None
            self._spawn(self._vad_turn(item_id, bool(td.get("create_response", True))))

    async def _vad_turn(self, item_id: str, create_response: bool) -> None:
        entry = self._take_entry() or ("", FALLBACK_REPLY)
        await self.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": int(self._audio_ms),
                "item_id": item_id,
            }
        )
        await self._commit(item_id, entry[0])
        self._pending_reply = entry[1]
        if create_response:
            await self._respond({})

    async def _commit(self, item_id: str, text: str) -> None:
        prev, self._last_item_id = self._last_item_id, item_id
        audio_ms, self._buffer_ms = self._buffer_ms, 0.0
        await self.send(
            {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": prev}
        )
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self.send({"type": "conversation.item.added", "previous_item_id": prev, "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": prev, "item": item})
        if not transcription_enabled(self.session):
            return
        ids = {"item_id": item_id, "content_index": 0}
        for word in chunks(text):
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    **ids,
                    "delta": word,
                    "logprobs": None,
                }
            )
        tokens = max(1, int(audio_ms / 100))
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                **ids,
                "transcript": text,
                "logprobs": None,
                "usage": {
                    "type": "tokens",
                    "input_tokens": tokens,
                    "output_tokens": len(chunks(text)),
                    "total_tokens": tokens + len(chunks(text)),
                    "input_token_details": {"audio_tokens": tokens, "text_tokens": 0},
                },
            }
        )
        self.transcript.append(("user", text))

    # --- response out -----------------------------------------------------------------------
    async def _respond(self, params: dict[str, Any]) -> None:
        entry = None if self._pending_reply else self._take_entry()
        text = self._pending_reply or (entry[1] if entry else FALLBACK_REPLY)
        self._pending_reply = None
        resp_id = self._response_id = new_id("resp", 21)
        item_id = new_id("item", 21)
        modalities = params.get("output_modalities") or self.session.get("output_modalities")
        audio = "audio" in (modalities or ["audio"])
        output_audio = (self.session.get("audio") or {}).get("output") or {}
        response = {
            "object": "realtime.response",
            "id": resp_id,
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": self._conversation_id,
            "output_modalities": ["audio"] if audio else ["text"],
            "max_output_tokens": self.session.get("max_output_tokens", "inf"),
            "audio": {
                "output": {"format": output_audio.get("format"), "voice": output_audio.get("voice")}
            },
            "usage": None,
            "metadata": params.get("metadata"),
        }
        ids = {"response_id": resp_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        seconds = min(2.0, self.seconds_per_word * len(chunks(text))) if audio else 0.0
        try:
            await self.send({"type": "response.created", "response": response})
            await self.send(
                {
                    "type": "rate_limits.updated",
                    "rate_limits": [
                        {
                            "name": "requests",
                            "limit": 5000,
                            "remaining": 4999,
                            "reset_seconds": 0.012,
                        },
                        {
                            "name": "tokens",
                            "limit": 40000,
                            "remaining": 39000,
                            "reset_seconds": 1.5,
                        },
                    ],
                }
            )
            await self.send(
                {
                    "type": "response.output_item.added",
                    "response_id": resp_id,
                    "output_index": 0,
                    "item": item,
                }
            )
            await self.send(
                {
                    "type": "conversation.item.added",
                    "previous_item_id": self._last_item_id,
                    "item": item,
                }
            )
            part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
            await self.send({"type": "response.content_part.added", **ids, "part": part})
            if audio and self.webrtc:
                await self.send({"type": "output_audio_buffer.started", "response_id": resp_id})
                if self._on_speak:
                    self._on_speak(seconds)
            kind = "response.output_audio_transcript" if audio else "response.output_text"
            for word in chunks(text):
                await self.send({"type": f"{kind}.delta", **ids, "delta": word})
                if audio and not self.webrtc:
                    await self.send(
                        {
                            "type": "response.output_audio.delta",
                            **ids,
                            "delta": base64.b64encode(TONE_100MS).decode(),
                        }
                    )
                await asyncio.sleep(self.delta_delay)
            if audio:
                await self.send({"type": "response.output_audio.done", **ids})
                await self.send({"type": f"{kind}.done", **ids, "transcript": text})
                part, content = (
                    {"type": "audio", "transcript": text},
                    {"type": "output_audio", "transcript": text},
                )
            else:
                await self.send({"type": f"{kind}.done", **ids, "text": text})
                part = {"type": "text", "text": text}
                content = {"type": "output_text", "text": text}
            await self.send({"type": "response.content_part.done", **ids, "part": part})
            item = {**item, "status": "completed", "content": [content]}
            await self.send(
                {
                    "type": "response.output_item.done",
                    "response_id": resp_id,
                    "output_index": 0,
                    "item": item,
                }
            )
            prev, self._last_item_id = self._last_item_id, item_id
            await self.send(
                {"type": "conversation.item.done", "previous_item_id": prev, "item": item}
            )
            self.transcript.append(("assistant", text))
            await self.send(
                {
                    "type": "response.done",
                    "response": {
                        **response,
                        "status": "completed",
                        "output": [item],
                        "usage": usage(self._audio_ms, self.session, text, seconds),
                    },
                }
            )
            if audio and self.webrtc:
                await asyncio.sleep(seconds)
                await self.send({"type": "output_audio_buffer.stopped", "response_id": resp_id})
        except asyncio.CancelledError:
            if not self._closed:
                await self.send(
                    {
                        "type": "response.done",
                        "response": {
                            **response,
                            "status": "cancelled",
                            "usage": usage(self._audio_ms, self.session, "", 0.0),
                            "status_details": {"type": "cancelled", "reason": "client_cancelled"},
                        },
                    }
                )
            raise
        finally:
            self._response_id = None

    # --- client events ----------------------------------------------------------------------
    async def handle_client_message(self, raw: str | bytes) -> None:
        """Handle one client event (a JSON text message) as the GA server does."""
        try:
            event = json.loads(raw)
        except ValueError:
            await self.error(
                "We could not parse the JSON body of your request.", code="invalid_json"
            )
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            await self.error(
                "Missing required parameter: 'type'.",
                code="missing_required_parameter",
                param="type",
            )
            return
        self.client_events.append(event)
        handler = getattr(self, "_on_" + event["type"].replace(".", "_"), None)
        if handler is None:
            await self.error(
                f"Invalid value: '{event['type']}'.",
                code="invalid_value",
                param="type",
                event_id=event.get("event_id"),
            )
            return
        await handler(event)

    async def _on_session_update(self, event: dict[str, Any]) -> None:
        try:
            validate_session(event.get("session"))
        except SessionError as exc:
            await self.error(
                exc.message, code=exc.code, param=exc.param, event_id=event.get("event_id")
            )
            if exc.fatal and self._on_close:
                await self._on_close(4000, exc.code)
            return
        self.session = merge_session(self.session, event["session"])
        await self.send({"type": "session.updated", "session": self.session})

    async def _on_input_audio_buffer_append(self, event: dict[str, Any]) -> None:
        try:
            data = base64.b64decode(event.get("audio") or "", validate=True)
        except (binascii.Error, ValueError):
            await self.error(
                "Invalid 'audio': expected base64-encoded audio bytes.",
                code="invalid_value",
                param="audio",
                event_id=event.get("event_id"),
            )
            return
        await self.feed_audio(len(data) / 48.0, pcm16_rms(data) if self.speech_rms else 0.0)

    async def _on_input_audio_buffer_commit(self, event: dict[str, Any]) -> None:
        if self._buffer_ms < 100:
            await self.error(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms "
                f"of audio, but buffer only has {self._buffer_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
                event_id=event.get("event_id"),
            )
            return
        entry = self._take_entry() or ("", FALLBACK_REPLY)
        self._pending_reply = entry[1]
        item_id, self._speech_item = self._speech_item or new_id("item", 21), None
        await self._commit(item_id, entry[0])

    async def _on_input_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        self._buffer_ms, self._speech_item = 0.0, None
        await self.send({"type": "input_audio_buffer.cleared"})

    async def _on_output_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        await self.send({"type": "output_audio_buffer.cleared", "response_id": self._response_id})

    async def _on_conversation_item_create(self, event: dict[str, Any]) -> None:
        try:  # the fake takes exactly what the SDK's client event type describes
            ConversationItemCreateEvent.model_validate(event)
        except ValidationError as exc:
            first = exc.errors()[0]
            await self.error(
                f"Invalid conversation item: {first['msg']}.",
                code="invalid_value",
                param=".".join(str(part) for part in first["loc"]),
                event_id=event.get("event_id"),
            )
            return
        item = dict(event.get("item") or {})
        item.setdefault("id", new_id("item", 21))
        self.conversation_items.append(item)
        item.update(object="realtime.item", status="completed")
        prev, self._last_item_id = self._last_item_id, item["id"]
        for kind in ("conversation.item.added", "conversation.item.done"):
            await self.send({"type": kind, "previous_item_id": prev, "item": item})
        texts = [p.get("text", "") for p in item.get("content") or [] if isinstance(p, dict)]
        if item.get("role") == "user" and any(texts):
            self.transcript.append(("user", " ".join(t for t in texts if t)))

    async def _on_response_create(self, event: dict[str, Any]) -> None:
        if self.busy:
            await self.error(
                "Conversation already has an active response in progress: "
                f"{self._response_id}. Wait until the response is finished before creating a "
                "new one.",
                code="conversation_already_has_active_response",
                event_id=event.get("event_id"),
            )
            return
        self._spawn(self._respond(event.get("response") or {}))

    async def _on_response_cancel(self, event: dict[str, Any]) -> None:
        if not (self.busy and self._response_id):
            await self.error(
                "Cancellation failed: no active response found.",
                code="response_cancel_not_active",
                event_id=event.get("event_id"),
            )
            return
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
