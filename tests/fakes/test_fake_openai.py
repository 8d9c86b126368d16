"""The fake OpenAI API, checked against the official ``openai`` SDK and a real aiortc peer."""

from __future__ import annotations

import array
import asyncio
import base64
import json
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import aiohttp
import openai
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from openai import AsyncOpenAI
from pydantic import BaseModel

from fakes.openai_api import FakeOpenAI

pytestmark = pytest.mark.timeout(30)

KEY = "sk-test-0123456789abcdef"
SESSION = {
    "type": "realtime",
    "model": "gpt-realtime",
    "instructions": "Be brief.",
    "audio": {
        "input": {"transcription": {"model": "gpt-4o-mini-transcribe"}},
        "output": {"voice": "marin"},
    },
}
SCRIPT = [("Please summarize the build failure.", "The build failed in the linker step.")]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    """A running fake with a one-turn script."""
    async with FakeOpenAI(api_key=KEY, script=SCRIPT) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    """The official SDK pointed at the fake, without retries."""
    async with AsyncOpenAI(api_key=KEY, base_url=fake.base_url, max_retries=0) as sdk:
        yield sdk


# --- HTTP: client secrets, auth, faults -------------------------------------------------------
async def test_client_secret_as_the_ga_api(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    secret = await client.realtime.client_secrets.create(
        session=SESSION, expires_after={"anchor": "created_at", "seconds": 60}
    )
    assert secret.value.startswith("ek_")
    assert abs(secret.expires_at - (time.time() + 60)) < 5
    assert secret.session.type == "realtime" and secret.session.model == "gpt-realtime"
    assert secret.session.instructions == "Be brief."
    assert secret.session.audio.input.transcription.model == "gpt-4o-mini-transcribe"
    assert secret.session.audio.output.voice == "marin"
    record = fake.requests[-1]
    assert (record.method, record.path, record.route) == (
        "POST",
        "/v1/realtime/client_secrets",
        "client_secrets",
    )
    assert record.json["session"]["instructions"] == "Be brief."
    assert "authorization" not in {k.lower() for k in record.headers}


@pytest.mark.parametrize(
    ("session", "code"),
    [
        ({"type": "realtime", "modalities": ["audio"]}, "beta_api_shape_disabled"),
        ({"type": "realtime", "audio": {"input": {"format": "pcm16"}}}, "invalid_type"),
        ({"model": "gpt-realtime"}, "missing_required_parameter"),
    ],
)
async def test_client_secret_rejects_what_ga_rejects(
    client: AsyncOpenAI, session: dict[str, Any], code: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.realtime.client_secrets.create(session=session)  # type: ignore[arg-type]
    assert info.value.code == code


async def test_wrong_or_missing_key_is_401(fake: FakeOpenAI) -> None:
    async with AsyncOpenAI(
        api_key="sk-wrong-key-000", base_url=fake.base_url, max_retries=0
    ) as bad:
        with pytest.raises(openai.AuthenticationError) as info:
            await bad.responses.create(model="gpt-5-mini", input="hi")
    assert info.value.code == "invalid_api_key" and info.value.type == "invalid_request_error"
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{fake.base_url}/responses", json={"model": "m", "input": "x"}) as resp,
    ):
        body = await resp.json()
    assert resp.status == 401
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["param"] is None and body["error"]["code"] == "invalid_api_key"


async def test_injected_faults_become_sdk_errors(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    fake.fail("responses", 429, retry_after=2)
    fake.fail("responses", 500)
    fake.fail("client_secrets", 503)
    fake.fail("responses", 401)
    with pytest.raises(openai.RateLimitError) as limited:
        await client.responses.create(model="gpt-5-mini", input="hi")
    assert limited.value.response.headers["retry-after"] == "2"
    assert limited.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError) as broken:
        await client.responses.create(model="gpt-5-mini", input="hi")
    assert broken.value.status_code == 500 and broken.value.type == "server_error"
    with pytest.raises(openai.InternalServerError) as overloaded:
        await client.realtime.client_secrets.create(session=SESSION)
    assert overloaded.value.status_code == 503
    with pytest.raises(openai.AuthenticationError):
        await client.responses.create(model="gpt-5-mini", input="hi")
    assert (await client.responses.create(model="gpt-5-mini", input="hi")).output_text
    fake.fail("responses", delay=2.0)
    with pytest.raises(openai.APITimeoutError):
        await client.responses.create(model="gpt-5-mini", input="hi", timeout=0.3)


# --- Responses API ------------------------------------------------------------------------------
class FollowUp(BaseModel):
    """One follow-up item of a handoff."""

    title: str
    owner: Literal["agent", "user"]
    priority: int


class Handoff(BaseModel):
    """A call handoff, as a summarizer would ask for it."""

    summary: str
    decisions: list[str]
    follow_ups: list[FollowUp]
    risk: str | None


TRANSCRIPT = "We agreed to ship on Friday. The linker error needs a fix first. Ping me when done."


async def test_responses_parse_with_pydantic(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    response = await client.responses.parse(
        model="gpt-5-mini",
        text_format=Handoff,
        input=[
            {"role": "system", "content": "Summarize the call."},
            {"role": "user", "content": TRANSCRIPT},
        ],
    )
    handoff = response.output_parsed
    assert isinstance(handoff, Handoff)
    assert handoff.summary.startswith("Summary: We agreed to ship on Friday.")
    assert handoff.decisions and all(d in TRANSCRIPT for d in handoff.decisions)
    assert handoff.follow_ups[0].owner == "agent" and handoff.follow_ups[0].title
    sent = fake.responses_requests[-1]["text"]["format"]
    assert sent["type"] == "json_schema" and sent["strict"] is True and sent["name"] == "Handoff"


async def test_responses_json_schema_output_validates(client: AsyncOpenAI) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["summary", "mood", "score", "tags", "when", "detail"],
        "properties": {
            "summary": {"type": "string", "maxLength": 40},
            "mood": {"type": "string", "enum": ["calm", "tense"]},
            "score": {"type": "integer", "minimum": 3, "maximum": 5},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 3},
            "when": {"type": ["string", "null"], "format": "date-time"},
            "detail": {"$ref": "#/$defs/detail"},
        },
        "$defs": {
            "detail": {
                "type": "object",
                "additionalProperties": False,
                "required": ["ok"],
                "properties": {"ok": {"type": "boolean"}},
            }
        },
    }
    response = await client.responses.create(
        model="gpt-5-mini",
        input=TRANSCRIPT,
        text={"format": {"type": "json_schema", "name": "call", "strict": True, "schema": schema}},
    )
    value = json.loads(response.output_text)
    jsonschema.validate(value, schema)
    assert value["summary"].startswith("Summary: We agreed")


async def test_responses_strict_schema_errors_like_the_api(client: AsyncOpenAI) -> None:
    schema = {"type": "object", "properties": {"summary": {"type": "string"}}}
    with pytest.raises(openai.BadRequestError, match="additionalProperties"):
        await client.responses.create(
            model="gpt-5-mini",
            input="x",
            text={"format": {"type": "json_schema", "name": "s", "strict": True, "schema": schema}},
        )


async def test_responses_plain_text_stream_and_override(
    fake: FakeOpenAI, client: AsyncOpenAI
) -> None:
    plain = await client.responses.create(model="gpt-5-mini", input=TRANSCRIPT)
    assert plain.output_text.startswith("Summary: We agreed") and plain.usage.total_tokens > 0
    stream = await client.responses.create(model="gpt-5-mini", input=TRANSCRIPT, stream=True)
    types, deltas, final = [], [], None
    async for event in stream:
        types.append(event.type)
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        if event.type == "response.completed":
            final = event.response
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert final is not None and "".join(deltas) == final.output_text == plain.output_text
    fake.responses_output = {"summary": "fixed", "decisions": [], "follow_ups": [], "risk": None}
    parsed = await client.responses.parse(model="gpt-5-mini", input="x", text_format=Handoff)
    assert parsed.output_parsed == Handoff(summary="fixed", decisions=[], follow_ups=[], risk=None)


# --- Realtime over a plain WebSocket ------------------------------------------------------------
def pcm16(ms: int, amplitude: int = 3000) -> str:
    """Base64 PCM16 24 kHz mono of a 440 Hz tone."""
    samples = array.array(
        "h", (int(amplitude * math.sin(2 * math.pi * 440 * i / 24000)) for i in range(24 * ms))
    )
    return base64.b64encode(samples.tobytes()).decode()


async def test_sdk_realtime_websocket_session(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        first = await asyncio.wait_for(conn.recv(), 5)
        assert first.type == "session.created"
        await conn.session.update(session=SESSION)
        updated = await asyncio.wait_for(conn.recv(), 5)
        assert updated.type == "session.updated"
        assert updated.session.audio.input.transcription.model == "gpt-4o-mini-transcribe"
        for _ in range(8):
            await conn.input_audio_buffer.append(audio=pcm16(100))
        seen: dict[str, Any] = {}
        async with asyncio.timeout(5):
            async for event in conn:
                seen.setdefault(event.type, event)
                if event.type == "response.done":
                    break
    user = seen["conversation.item.input_audio_transcription.completed"]
    assert user.transcript == SCRIPT[0][0]
    assert seen["response.output_audio_transcript.done"].transcript == SCRIPT[0][1]
    assert base64.b64decode(seen["response.output_audio.delta"].delta)
    assert seen["response.done"].response.status == "completed"
    assert seen["response.done"].response.usage.input_token_details.audio_tokens == 8
    assert "input_audio_buffer.speech_started" in seen
    record = fake.requests[-1]
    assert record.route == "realtime_ws" and record.query == {"model": "gpt-realtime"}


async def test_websocket_with_ephemeral_key_and_beta_shape(
    fake: FakeOpenAI, client: AsyncOpenAI
) -> None:
    secret = await client.realtime.client_secrets.create(session=SESSION)
    url = f"{fake.websocket_base_url}/realtime?model=gpt-realtime"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(
            url, protocols=("realtime", f"openai-insecure-api-key.{secret.value}")
        ) as ws:
            assert ws.protocol == "realtime"
            created = await ws.receive_json(timeout=5)
            assert created["type"] == "session.created"
            assert created["session"]["instructions"] == "Be brief."
            await ws.send_json({"type": "session.update", "session": {"voice": "marin"}})
            error = await ws.receive_json(timeout=5)
            assert error["error"]["code"] == "beta_api_shape_disabled"
            closing = await ws.receive(timeout=5)
            assert closing.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4000
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, protocols=("realtime", "openai-insecure-api-key.ek_nope"))
        assert refused.value.status == 401


async def test_websocket_client_events(fake: FakeOpenAI) -> None:
    url = f"{fake.websocket_base_url}/realtime?model=gpt-realtime"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, headers={"Authorization": f"Bearer {KEY}"}) as ws,
    ):

        async def until(type_: str) -> dict[str, Any]:
            async with asyncio.timeout(5):
                while (event := await ws.receive_json())["type"] != type_:
                    pass
            return event

        await until("session.created")
        await ws.send_json({"type": "input_audio_buffer.commit", "event_id": "c1"})
        error = (await until("error"))["error"]
        assert error["code"] == "input_audio_buffer_commit_empty" and error["event_id"] == "c1"
        await ws.send_json(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Status?"}],
                },
            }
        )
        assert (await until("conversation.item.done"))["item"]["role"] == "user"
        await ws.send_json({"type": "response.create", "response": {"output_modalities": ["text"]}})
        assert (await until("response.output_text.done"))["text"] == SCRIPT[0][1]
        await until("response.done")
        fake.ws_sessions[-1].delta_delay = 1.0  # slow enough to be cancelled mid-way
        await ws.send_json({"type": "response.create"})
        await until("response.created")
        await ws.send_json({"type": "response.cancel"})
        done = await until("response.done")
        assert done["response"]["status"] == "cancelled"
    assert fake.ws_sessions[-1].transcript == [("user", "Status?"), ("assistant", SCRIPT[0][1])]


# --- WebRTC with aiortc as the browser ----------------------------------------------------------
class Browser:
    """An aiortc peer that behaves like the Mini App: mic track + ``oai-events`` channel."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # never a public STUN
        self.mic = AudioStreamTrack()
        self.pc.addTrack(self.mic)
        self.channel = self.pc.createDataChannel("oai-events")
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.channel.on("message", lambda m: self.events.put_nowait(json.loads(m)))
        self.remote_frames = 0
        self.remote_peak_rms = 0.0
        self._reader: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.ensure_future(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            samples = array.array("h", bytes(frame.planes[0]))
            rms = math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))
            self.remote_frames += 1
            self.remote_peak_rms = max(self.remote_peak_rms, rms)

    async def offer(self) -> str:
        """Gather (host candidates only) and return the offer SDP."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def answer(self, sdp: str) -> None:
        """Apply the answer and wait until connected."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        async with asyncio.timeout(10):
            while self.pc.connectionState != "connected":
                await asyncio.sleep(0.02)

    async def next_event(self, type_: str, timeout: float = 8.0) -> dict[str, Any]:
        """Skip data-channel events until one of ``type_`` arrives."""
        async with asyncio.timeout(timeout):
            while (event := await self.events.get())["type"] != type_:
                pass
        return event

    async def close(self) -> None:
        """Close the peer and the reader."""
        await self.pc.close()
        if self._reader:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


def candidates(sdp: str) -> list[str]:
    """The connection addresses of an SDP's ICE candidates."""
    return [line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")]


async def read_sideband(ws: aiohttp.ClientWebSocketResponse, out: list[dict[str, Any]]) -> None:
    """Collect sideband events until the server closes it."""
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            out.append(json.loads(msg.data))


async def test_webrtc_call_with_sideband_and_hangup(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    browser = Browser()
    offer = await browser.offer()
    form = aiohttp.FormData()
    form.add_field("sdp", offer, content_type="application/sdp")
    form.add_field("session", json.dumps(SESSION), content_type="application/json")
    auth = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{fake.base_url}/realtime/calls", data=form, headers=auth) as resp:
            assert resp.status == 201 and resp.content_type == "application/sdp"
            location, answer = resp.headers["Location"], await resp.text()
        call_id = location.rsplit("/", 1)[1]
        assert location == f"/v1/realtime/calls/{call_id}" and call_id.startswith("rtc_")
        assert set(candidates(offer)) == set(candidates(answer)) == {"127.0.0.1"}
        sideband: list[dict[str, Any]] = []
        ws = await http.ws_connect(
            f"{fake.websocket_base_url}/realtime?call_id={call_id}", headers=auth
        )
        reader = asyncio.ensure_future(read_sideband(ws, sideband))
        await browser.answer(answer)
        pair = browser.pc.getTransceivers()[0].sender.transport.transport
        nominated = list(pair._connection._nominated.values())  # aioice internals, for the check
        assert {nominated[0].local_addr[0], nominated[0].remote_addr[0]} == {"127.0.0.1"}

        created = await browser.next_event("session.created")
        assert created["session"]["instructions"] == "Be brief."
        browser.channel.send(
            json.dumps(
                {"type": "session.update", "session": {"type": "realtime", "instructions": "Hi."}}
            )
        )
        assert (await browser.next_event("session.updated"))["session"]["instructions"] == "Hi."
        heard = await browser.next_event("conversation.item.input_audio_transcription.completed")
        assert heard["transcript"] == SCRIPT[0][0]
        said = await browser.next_event("response.output_audio_transcript.done")
        assert said["transcript"] == SCRIPT[0][1]
        done = await browser.next_event("response.done")
        assert done["response"]["usage"]["total_tokens"] > 0
        await browser.next_event("output_audio_buffer.stopped")
        assert browser.remote_frames > 10 and browser.remote_peak_rms > 1000  # the tone

        await fake.wait_until(
            lambda: any(e["type"] == "output_audio_buffer.stopped" for e in sideband)
        )
        wanted = {
            "conversation.item.input_audio_transcription.completed",
            "response.output_audio_transcript.done",
            "response.done",
        }
        on_channel = [e for e in fake.calls[call_id].events if e["type"] in wanted]
        assert [e for e in sideband if e["type"] in wanted] == on_channel

        await client.realtime.calls.hangup(call_id)
        async with asyncio.timeout(5):
            await reader
        assert ws.closed and ws.close_code == 1000
        await fake.wait_until(lambda: browser.pc.connectionState == "closed")
    call = fake.calls[call_id]
    assert call.hung_up and call.offer_sdp == offer and call.session["model"] == "gpt-realtime"
    assert fake.requests[0].form["sdp"] == offer
    assert json.loads(fake.requests[0].form["session"]) == SESSION
    await browser.close()


async def test_sdk_calls_create_with_ephemeral_key_and_browser_leaving(
    fake: FakeOpenAI, client: AsyncOpenAI
) -> None:
    secret = await client.realtime.client_secrets.create(session=SESSION)
    browser = Browser()
    async with AsyncOpenAI(api_key=secret.value, base_url=fake.base_url, max_retries=0) as eph:
        raw = await eph.realtime.calls.with_raw_response.create(sdp=await browser.offer())
    assert raw.status_code == 201 and raw.headers["content-type"].startswith("application/sdp")
    assert fake.requests[-1].text and fake.requests[-1].form is None  # plain application/sdp
    call_id = raw.headers["location"].rsplit("/", 1)[1]
    await browser.answer(raw.text)
    await browser.next_event("session.created")
    assert fake.calls[call_id].session["audio"]["output"]["voice"] == "marin"
    await browser.close()
    await fake.wait_until(lambda: fake.calls[call_id].ended.is_set(), timeout=8)
    assert not fake.calls[call_id].hung_up
    assert fake.calls[call_id].end_reason == "peer closed"
    with pytest.raises(openai.NotFoundError):
        await client.realtime.calls.hangup("rtc_unknown")
    async with AsyncOpenAI(api_key=secret.value, base_url=fake.base_url, max_retries=0) as eph:
        with pytest.raises(openai.AuthenticationError):  # ephemeral keys only open sessions
            await eph.responses.create(model="gpt-5-mini", input="x")


async def test_sdk_calls_create_multipart(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    browser = Browser()
    offer = await browser.offer()
    raw = await client.realtime.calls.with_raw_response.create(sdp=offer, session=SESSION)
    assert raw.status_code == 201 and raw.text.startswith("v=0")
    record = fake.requests[-1]
    assert record.form is not None and record.form["sdp"] == offer
    assert json.loads(record.form["session"]) == SESSION
    assert fake.last_call().session["instructions"] == "Be brief."
    await browser.close()
    with pytest.raises(openai.BadRequestError) as info:
        await client.realtime.calls.create(
            sdp="v=0\r\n", session={"type": "realtime", "voice": "marin"}
        )
    assert info.value.code == "beta_api_shape_disabled"


# --- As a separate process ---------------------------------------------------------------------
async def test_runs_as_a_process_with_sim_api() -> None:
    tests_dir = Path(__file__).resolve().parents[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fakes.openai_api",
        "--port",
        "0",
        "--api-key",
        KEY,
        cwd=tests_dir,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode().split()
        assert line[0] == "LISTENING"
        base_url = line[2]
        root = base_url.removesuffix("/v1")
        async with aiohttp.ClientSession() as http:
            await http.post(f"{root}/sim/fail", json={"route": "responses", "status": 429})
            await http.post(f"{root}/sim/responses_output", json={"output": "from sim"})
            async with AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0) as sdk:
                with pytest.raises(openai.RateLimitError):
                    await sdk.responses.create(model="gpt-5-mini", input="x")
                ok = await sdk.responses.create(model="gpt-5-mini", input="x")
            assert ok.output_text == "from sim"
            async with http.get(f"{root}/sim/state") as resp:
                state = await resp.json()
        assert [r["route"] for r in state["requests"]] == ["responses", "responses"]
        assert len(state["responses_requests"]) == 1
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_sdk_audio_transcriptions(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    fake.transcription_text = lambda audio: f"heard {len(audio)} bytes"
    result = await client.audio.transcriptions.create(
        model="gpt-4o-mini-transcribe", file=("note.ogg", b"OggS" * 50, "audio/ogg")
    )
    assert result.text == "heard 200 bytes"
    assert result.usage is not None and result.usage.type == "tokens"
    [seen] = fake.transcriptions
    assert (seen.model, seen.filename, seen.audio) == (
        "gpt-4o-mini-transcribe",
        "note.ogg",
        b"OggS" * 50,
    )
    with pytest.raises(openai.BadRequestError, match="does not exist"):
        await client.audio.transcriptions.create(model="nope", file=("a.ogg", b"x", "audio/ogg"))
    with pytest.raises(openai.AuthenticationError):
        async with AsyncOpenAI(api_key="sk-wrong", base_url=fake.base_url, max_retries=0) as bad:
            await bad.audio.transcriptions.create(
                model="gpt-4o-mini-transcribe", file=("a.ogg", b"x", "audio/ogg")
            )
