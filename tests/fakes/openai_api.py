"""A faithful loopback stand-in for the parts of the OpenAI API that bridgehost uses.

``async with FakeOpenAI(api_key="sk-test-…") as fake:`` serves, on 127.0.0.1 and a random port,
``POST /v1/realtime/client_secrets``, ``POST /v1/realtime/calls`` (aiortc answers the WebRTC
offer), ``POST /v1/realtime/calls/{id}/hangup``, ``GET /v1/realtime?call_id=`` (sideband) and
``?model=`` (plain WebSocket session), and ``POST /v1/responses``; point ``OPENAI_BASE_URL`` at
``fake.base_url``. Checked against the official ``openai`` SDK in ``test_fake_openai.py``.
Also runs as a process: ``python -m fakes.openai_api --port N --api-key K`` (from ``tests/``),
steered through ``/sim/`` (see :mod:`fakes.openai_sim`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .openai_common import (
    RECORD,
    SECRET,
    EphemeralSecret,
    Fault,
    FaultBook,
    RecordedRequest,
    bearer_key,
    error_response,
    invalid_key_response,
    new_id,
    safe_headers,
)
from .openai_realtime import RealtimeModel
from .openai_realtime_session import (
    SessionError,
    merge_session,
    session_from_request,
    validate_session,
)
from .openai_responses import ResponsesOutput, handle_responses
from .openai_sim import add_sim_routes
from .openai_transcriptions import (
    TranscriptionRequest,
    TranscriptionText,
    handle_transcriptions,
)
from .openai_webrtc import FakeCall, loopback_only_ice
from .openai_ws import realtime_ws

DEFAULT_SCRIPT = [("Hello, can you hear me?", "Yes, I can hear you clearly. How can I help?")]
_EPHEMERAL_ROUTES = {"calls", "realtime_ws"}


class FakeOpenAI:
    """The fake API server; see the module docstring. Records what it saw for asserts."""

    def __init__(
        self,
        api_key: str = "sk-test-fake",
        *,
        port: int = 0,
        script: list[tuple[str, str]] | None = None,
        loopback_ice: bool = True,
        turn_ms: float = 600.0,
        speech_rms: float = 0.0,
        delta_delay: float = 0.01,
    ) -> None:
        self.api_key = api_key
        self.port = port
        #: ``(user transcript, assistant transcript)`` per turn; each new session replays it.
        self.script: list[tuple[str, str]] = list(script or DEFAULT_SCRIPT)
        #: Forces what ``/v1/responses`` answers (text, a JSON object, or a function of the body).
        self.responses_output: ResponsesOutput = None
        self.model_options: dict[str, Any] = {
            "turn_ms": turn_ms,
            "speech_rms": speech_rms,
            "delta_delay": delta_delay,
        }
        self.requests: list[RecordedRequest] = []
        self.calls: dict[str, FakeCall] = {}
        self.ws_sessions: list[RealtimeModel] = []
        self.responses_requests: list[dict[str, Any]] = []
        #: What ``/v1/audio/transcriptions`` says (text, or a function of the audio bytes).
        self.transcription_text: TranscriptionText = "Please rerun the failing test."
        self.transcriptions: list[TranscriptionRequest] = []
        self.secrets: dict[str, EphemeralSecret] = {}
        self.faults = FaultBook()
        self._loopback_ice = loopback_ice
        self._stack = contextlib.ExitStack()
        self._runner: web.AppRunner | None = None
        self.sockets: set[web.WebSocketResponse] = set()

    # --- public API -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What ``OPENAI_BASE_URL`` (or ``AsyncOpenAI(base_url=…)``) is set to."""
        return f"{self.url}/v1"

    @property
    def websocket_base_url(self) -> str:
        """``ws://127.0.0.1:PORT/v1`` (the SDK derives it from ``base_url`` anyway)."""
        return f"ws://127.0.0.1:{self.port}/v1"

    def fail(
        self,
        route: str,
        status: int | None = None,
        *,
        times: int = 1,
        delay: float = 0.0,
        retry_after: float = 1.0,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        """Make the next ``times`` requests to ``route`` (``"*"`` = any; see ``ROUTES``) fail
        with ``status`` (401, 429 with ``retry-after``, 500, 503, …) after ``delay`` seconds;
        with no status they only get slow, then are answered normally."""
        self.faults.add(Fault(route, status, times, delay, retry_after, code, message))

    def last_call(self) -> FakeCall:
        """The most recently created call."""
        return list(self.calls.values())[-1]

    async def hangup(self, call_id: str, reason: str = "server") -> None:
        """End a call from OpenAI's side (peer closed, sidebands closed)."""
        await self.calls[call_id].end(reason)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll ``predicate`` until true; ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)

    async def start(self) -> Self:
        """Listen on 127.0.0.1 (``port=0``: a free port, then ``self.port`` holds it)."""
        if self._loopback_ice:
            self._stack.enter_context(loopback_only_ice())
        app = web.Application(middlewares=[self._middleware], client_max_size=4 * 1024 * 1024)
        app.router.add_post(
            "/v1/realtime/client_secrets", self._client_secrets, name="client_secrets"
        )
        app.router.add_post("/v1/realtime/calls", self._calls_create, name="calls")
        app.router.add_post("/v1/realtime/calls/{call_id}/hangup", self._hangup, name="hangup")
        app.router.add_get("/v1/realtime", partial(realtime_ws, self), name="realtime_ws")
        app.router.add_post("/v1/responses", partial(handle_responses, self), name="responses")
        app.router.add_post(
            "/v1/audio/transcriptions",
            partial(handle_transcriptions, self),
            name="transcriptions",
        )
        add_sim_routes(app, self)
        app.router.add_route("*", "/v1/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """End every call and socket, stop listening, restore aioice."""
        for call in list(self.calls.values()):
            await call.end("shutdown")
        for model in self.ws_sessions:
            await model.aclose()
        for ws in list(self.sockets):
            await ws.close(code=1001, message=b"server shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._stack.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- middleware: record, inject faults, authenticate -----------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route.name
        if request.path.startswith("/sim/"):
            return await handler(request)
        if route == "realtime_ws" and "call_id" in request.query:
            route = "sideband"
        record = RecordedRequest(
            request.method, request.path, route, dict(request.query), safe_headers(request)
        )
        self.requests.append(record)
        try:
            await _read_body(request, record)
        except ValueError:
            return error_response(
                400,
                "We could not parse the JSON body of your request. "
                "(HINT: This likely means you aren't using your HTTP library "
                "correctly.)",
            )
        if route and (failure := await self.faults.apply(route)) is not None:
            return failure
        key = bearer_key(request)
        secret = self.secrets.get(key or "")
        if key != self.api_key and not (secret and route in _EPHEMERAL_ROUTES):
            return invalid_key_response(key)
        if secret and secret.expired:
            return error_response(401, "Your client secret has expired.", code="invalid_api_key")
        request[SECRET] = secret
        request[RECORD] = record
        return await handler(request)

    async def _not_found(self, request: web.Request) -> web.Response:
        return error_response(404, f"Invalid URL ({request.method} {request.path})")

    # --- realtime routes --------------------------------------------------------------------
    async def _client_secrets(self, request: web.Request) -> web.Response:
        body = request[RECORD].json or {}
        if not isinstance(body, dict):
            return error_response(400, "Invalid body: expected an object.", code="invalid_type")
        cfg = body.get("session") or {"type": "realtime"}
        try:
            validate_session(cfg, allow_transcription=True)
        except SessionError as exc:
            return error_response(400, exc.message, code=exc.code, param=exc.param)
        seconds = (body.get("expires_after") or {}).get("seconds", 600)
        if not isinstance(seconds, int) or not 10 <= seconds <= 7200:
            return error_response(
                400,
                "Invalid 'expires_after.seconds': expected an integer between 10 and 7200.",
                code="invalid_value",
                param="expires_after.seconds",
            )
        secret = EphemeralSecret(
            new_id("ek", 32), int(time.time()) + seconds, session_from_request(cfg)
        )
        self.secrets[secret.value] = secret
        return web.json_response(
            {"value": secret.value, "expires_at": secret.expires_at, "session": secret.session}
        )

    async def _calls_create(self, request: web.Request) -> web.Response:
        record: RecordedRequest = request[RECORD]
        secret: EphemeralSecret | None = request[SECRET]
        cfg: Any = None
        if request.content_type == "application/sdp":
            offer = record.text or ""
        elif request.content_type == "multipart/form-data":
            form = record.form or {}
            offer = form.get("sdp") or ""
            try:
                cfg = json.loads(form["session"]) if form.get("session") else None
                if cfg is not None:
                    validate_session(cfg)
            except ValueError as exc:
                message = getattr(exc, "message", "Invalid 'session': expected a JSON object.")
                return error_response(
                    400,
                    message,
                    code=getattr(exc, "code", "invalid_json"),
                    param=getattr(exc, "param", "session"),
                )
        else:
            return error_response(
                400,
                f"Unsupported content type '{request.content_type}'; "
                "send application/sdp or multipart/form-data.",
                code="unsupported_content_type",
            )
        if not offer.lstrip().startswith("v=0"):
            return error_response(
                400, "Invalid 'sdp': expected an SDP offer.", code="invalid_offer", param="sdp"
            )
        base = secret.session if secret else None
        session = (merge_session(base, cfg) if base and cfg else base) or session_from_request(cfg)
        call = FakeCall(
            new_id("rtc", 32), offer, session, self.script, model_options=self.model_options
        )
        try:
            answer = await call.answer()
        except Exception as exc:  # aiortc raises ValueError and friends for bad SDP
            await call.pc.close()
            return error_response(400, f"Invalid 'sdp': {exc}", code="invalid_offer", param="sdp")
        self.calls[call.call_id] = call
        return web.Response(
            status=201,
            text=answer,
            content_type="application/sdp",
            headers={"Location": f"/v1/realtime/calls/{call.call_id}"},
        )

    async def _hangup(self, request: web.Request) -> web.Response:
        call = self.calls.get(request.match_info["call_id"])
        if call is None:
            return error_response(404, f"Call '{request.match_info['call_id']}' not found.")
        call.hung_up = True
        await call.end("hangup")
        return web.Response(status=200)


async def _read_body(request: web.Request, record: RecordedRequest) -> None:
    """Parse the body into the record (JSON, form fields as text, or SDP text)."""
    if not request.can_read_body:
        return
    if request.content_type == "multipart/form-data":
        form = await request.post()
        record.form = {
            k: bytes(v).decode() if isinstance(v, bytes | bytearray) else str(v)
            for k, v in form.items()
        }
    elif request.content_type == "application/json":
        record.json = json.loads(await request.text() or "null")
    else:
        record.text = await request.text()


async def _serve(port: int, api_key: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with FakeOpenAI(api_key, port=port) as fake:
        print(f"LISTENING {fake.port} {fake.base_url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """``python -m fakes.openai_api --port N --api-key K``: serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="sk-test-fake")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.api_key))


if __name__ == "__main__":
    main()
