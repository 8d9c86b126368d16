"""The WebRTC side of the fake: one aiortc peer per ``POST /v1/realtime/calls``.

The peer answers the caller's offer, takes the ``oai-events`` data channel, decodes the caller's
audio into a :class:`RealtimeModel`, sends a tone on its own audio track while "speaking", and
fans every server event out to the data channel and to the call's sideband WebSockets.
aiortc always gets ``iceServers=[]`` (its default is a public STUN server), and while a fake runs
ICE gathers host candidates on 127.0.0.1 only (see :func:`loopback_only_ice`).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fractions
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import aioice.ice
from aiohttp import web
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from .openai_realtime import RealtimeModel

_SAMPLE_RATE = 48000
_FRAME_SAMPLES = 960  # 20 ms
_TONE = array.array(
    "h", (int(9000 * math.sin(2 * math.pi * 650 * i / _SAMPLE_RATE)) for i in range(_FRAME_SAMPLES))
).tobytes()  # 13 whole cycles
_SILENCE = bytes(_FRAME_SAMPLES * 2)

_ice_patch_depth = 0
_original_get_host_addresses = aioice.ice.get_host_addresses


def _loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else ["::1"]


@contextlib.contextmanager
def loopback_only_ice() -> Iterator[None]:
    """While active, every aiortc peer in this process gathers host candidates on loopback only
    (aioice skips 127.0.0.1 by default). Nestable; restores aioice on the outermost exit."""
    global _ice_patch_depth
    _ice_patch_depth += 1
    aioice.ice.get_host_addresses = _loopback_addresses
    try:
        yield
    finally:
        _ice_patch_depth -= 1
        if _ice_patch_depth == 0:
            aioice.ice.get_host_addresses = _original_get_host_addresses


class ToneTrack(MediaStreamTrack):
    """48 kHz mono audio: a 650 Hz tone while the model speaks, silence otherwise."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.speaking_until = 0.0
        self._start: float | None = None
        self._pts = 0

    def speak(self, seconds: float) -> None:
        """Play the tone for ``seconds`` from now."""
        self.speaking_until = time.monotonic() + seconds

    async def recv(self) -> AudioFrame:
        """The next 20 ms frame, paced in real time."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += _FRAME_SAMPLES
            await asyncio.sleep(max(0.0, self._start + self._pts / _SAMPLE_RATE - time.monotonic()))
        frame = AudioFrame(format="s16", layout="mono", samples=_FRAME_SAMPLES)
        frame.planes[0].update(_TONE if time.monotonic() < self.speaking_until else _SILENCE)
        frame.pts = self._pts
        frame.sample_rate = _SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, _SAMPLE_RATE)
        return frame


class FakeCall:
    """One WebRTC call: the aiortc peer, its scripted model, and what happened (for asserts)."""

    def __init__(
        self,
        call_id: str,
        offer_sdp: str,
        session: dict[str, Any],
        script: list[tuple[str, str]],
        *,
        model_options: dict[str, Any],
    ) -> None:
        self.call_id = call_id
        self.offer_sdp = offer_sdp
        self.answer_sdp: str | None = None
        self.hung_up = False
        self.end_reason: str | None = None
        self.ended = asyncio.Event()
        self.sidebands: set[web.WebSocketResponse] = set()
        self.frames_received = 0
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tone = ToneTrack()
        self.channel: RTCDataChannel | None = None
        self.model = RealtimeModel(
            session,
            script,
            emit=self._fan_out,
            webrtc=True,
            on_speak=self.tone.speak,
            **model_options,
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: list[str] = []
        self._end_task: asyncio.Task[None] | None = None

    # Records for tests ---------------------------------------------------------------------
    @property
    def session(self) -> dict[str, Any]:
        """The call's current effective session config."""
        return self.model.session

    @property
    def events(self) -> list[dict[str, Any]]:
        """Server events sent for this call, in order."""
        return self.model.events

    @property
    def client_events(self) -> list[dict[str, Any]]:
        """Client events received on the data channel or a sideband."""
        return self.model.client_events

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly view for ``GET /sim/state``."""
        return {
            "call_id": self.call_id,
            "session": self.session,
            "hung_up": self.hung_up,
            "ended": self.ended.is_set(),
            "end_reason": self.end_reason,
            "frames_received": self.frames_received,
            "sidebands": len(self.sidebands),
            "events": self.events,
            "client_events": [e.get("type") for e in self.client_events],
            "transcript": self.model.transcript,
        }

    # Life cycle -----------------------------------------------------------------------------
    async def answer(self) -> str:
        """Answer the offer (raises ``ValueError`` for an SDP aiortc cannot use)."""
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)
        await self.pc.setRemoteDescription(RTCSessionDescription(self.offer_sdp, "offer"))
        if any(t.kind == "audio" for t in self.pc.getTransceivers()):
            self.pc.addTrack(self.tone)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.answer_sdp = self.pc.localDescription.sdp
        await self.model.start()  # queued until the data channel opens
        return self.answer_sdp

    async def end(self, reason: str = "hangup") -> None:
        """End the call: stop the model, close the peer and every sideband (code 1000)."""
        if self.ended.is_set():
            return
        self.ended.set()
        self.end_reason = reason
        self.hung_up = self.hung_up or reason == "hangup"
        await self.model.aclose()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for ws in list(self.sidebands):
            await ws.close(code=1000, message=b"call ended")
        await self.pc.close()

    async def emit(self, event: dict[str, Any]) -> None:
        """Inject a server event (stamped and recorded like the model's own)."""
        await self.model.send(event)

    # Internals ------------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fan_out(self, event: dict[str, Any]) -> None:
        text = json.dumps(event)
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(text)
        elif self.channel is None or self.channel.readyState == "connecting":
            self._pending.append(text)
        for ws in list(self.sidebands):
            if not ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(text)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != "oai-events" or self.channel is not None:
            return
        self.channel = channel
        channel.on(
            "message", lambda message: self._spawn(self.model.handle_client_message(message))
        )

        def opened() -> None:
            for text in self._pending:
                channel.send(text)
            self._pending.clear()

        if channel.readyState == "open":
            opened()
        else:
            channel.on("open", opened)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._read_audio(track))

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        while not self.ended.is_set():
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.frames_received += 1
            rms = 0.0
            if self.model.speech_rms:
                samples = array.array("h", bytes(frame.planes[0]))
                rms = math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))
            await self.model.feed_audio(1000.0 * frame.samples / frame.sample_rate, rms)

    async def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed") and not self.ended.is_set():
            self._end_task = asyncio.get_running_loop().create_task(
                self.end(f"peer {self.pc.connectionState}")
            )
