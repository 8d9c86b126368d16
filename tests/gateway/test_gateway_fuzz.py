"""Property-based hostile input against one running gateway: nothing crashes, nothing is a 5xx.

Every HTTP route and every socket frame gets generated JSON (wrong types, lone surrogates, huge
numbers, deep nesting, unicode, empty values) and raw bodies. What must hold for every example:
the status is below 500; a 4xx carries ``{"error": {"code": str, "message": str}}`` (the Mini
App page answers with an HTML page instead); no ERROR and no traceback is logged; sockets end
with 1000 or a 4xxx code, never 1006/1011; ``/healthz`` still answers 200 afterwards.

One gateway serves the whole module (with generous rate limits, so the fuzz measures input
handling, not the limiter), so the examples are cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
import structlog
import yarl
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from bridgehost.config import load_config
from bridgehost.gateway.events import EVENT_TYPES
from bridgehost.gateway.initdata import sign_init_data
from bridgehost.gateway.service import build_gateway, serve
from bridgehost.gateway.surface import TokenStatus

from .conftest import (
    BOT_TOKEN,
    CONTROL_SECRET,
    USER_ID,
    FakeBridge,
    RunningGateway,
    free_port,
    init_data,
    secrets_env,
    write_config,
)

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
]

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
VALID = TokenStatus.VALID
MAX_REQUEST_LINE = 8000
CLEAN_CLOSE_CODES = frozenset({1000}) | frozenset(range(4000, 5000))

# -- strategies --------------------------------------------------------------------------------

SURROGATES = st.sampled_from(["\ud800", "\udfff", "\udc80", "\udbff"])
ODD_TEXT = st.sampled_from(
    ["", " ", "\x00", "😀", "\u202e", "\u2028", "null", "[]", "{}", "%ff", "\\", "x" * 5000]
)
TEXT = st.one_of(
    st.text(max_size=30),
    ODD_TEXT,
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=5), SURROGATES, st.text(max_size=5)),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**63, 2**64, 10**300, -(10**300), 999999999999]),
    st.floats(allow_nan=False, allow_infinity=False),
)
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
FIELD_NAMES = st.sampled_from(
    [
        "launch_token",
        "init_data",
        "call_id",
        "client_token",
        "sdp",
        "reason",
        "events",
        "source",
        "type",
        "token",
        "id",
        "event",
        "since_seq",
    ]
)
OBJECTS = st.dictionaries(st.one_of(FIELD_NAMES, TEXT), JSON, max_size=6)


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth if depth % 2 else '{"a":' * depth + "1" + "}" * depth


RAW_BODIES = st.one_of(
    OBJECTS.map(lambda value: json.dumps(value).encode()),
    JSON.map(lambda value: json.dumps(value).encode()),
    st.integers(min_value=1, max_value=5000).map(lambda depth: _deep(depth).encode()),
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b"{",
            b'{"a": NaN}',
            b'{"a": 1e999}',
            b'{"a": "\xff"}',
            b"\xef\xbb\xbf{}",
            b"1" * 5000,
        ]
    ),
)

GET_ROUTES = ["/healthz", "/healthz/details", "/miniapp", "/control/status"]
POST_ROUTES = [
    "/api/call/bootstrap",
    "/api/call/webrtc",
    "/api/call/hangup",
    "/api/call/finalize",
    "/control/arm",
    "/control/disarm",
    "/control/hangup",
]
CALL_EVENT = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(EVENT_TYPES)) | TEXT},
    optional={
        "text": JSON,
        "message": JSON,
        "state": st.sampled_from(["speech_started", "speech_stopped"]) | JSON,
        "audio_end_ms": JSON,
        "at": JSON,
    },
)


# -- log watch ---------------------------------------------------------------------------------


class LogWatch(logging.Handler):
    """Collects every ERROR (or anything with a traceback) from stdlib logging and structlog."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.problems: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.problems.append(f"{record.name}: {record.getMessage()} {record.exc_info!r}")

    def take_structlog(self, captured: list[MutableMapping[str, Any]]) -> None:
        """Move the structlog events that are errors or carry a traceback into ``problems``."""
        for entry in captured:
            if entry.get("log_level") in ("error", "critical", "exception") or entry.get(
                "exc_info"
            ):
                self.problems.append(repr(entry))
        captured.clear()


@contextlib.contextmanager
def watching_logs() -> Iterator[tuple[LogWatch, list[MutableMapping[str, Any]]]]:
    watch = LogWatch()
    root = logging.getLogger()
    root.addHandler(watch)
    try:
        with structlog.testing.capture_logs() as captured:
            yield watch, captured
    finally:
        root.removeHandler(watch)


@dataclass(repr=False)
class Fuzzed:
    """The module's gateway, its log watch, and the current call's credentials."""

    gw: RunningGateway
    watch: LogWatch
    captured: list[MutableMapping[str, Any]]
    call: dict[str, Any] | None = None
    token: str | None = None

    def assert_clean_logs(self) -> None:
        self.watch.take_structlog(self.captured)
        problems, self.watch.problems = self.watch.problems, []
        assert not problems, problems

    async def ensure_armed(self) -> str:
        """Arm if the last launch token no longer works; the current launch token."""
        if self.token is None or self.gw.gateway.surface.check_token(self.token) is not VALID:
            armed = await self.gw.arm()
            self.token = str(armed["launch_url"].split("launch=")[1])
        return self.token

    async def ensure_call(self) -> dict[str, Any]:
        """A running call's bootstrap body (a new call if the last one ended)."""
        current = self.gw.gateway.calls.current
        call = self.call
        if (
            call is not None
            and current is not None
            and current.call_id == call["call_id"]
            and not current.is_ending
        ):
            return call
        async with asyncio.timeout(10):
            while self.gw.gateway.calls.current is not None:
                await asyncio.sleep(0.02)
        token = await self.ensure_armed()
        resp = await self.gw.bootstrap(token, init_data())
        body: dict[str, Any] = await resp.json()
        resp.release()
        assert resp.status == 200, body
        self.call = body
        return body


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fuzzed]:
    """One gateway for the module, with generous rate limits and a connected stand-in bridge."""
    root = tmp_path_factory.mktemp("fuzz-gateway")
    port = free_port()
    path = write_config(
        root,
        port,
        bootstrap_rate_limit_per_ip=1_000_000,
        bootstrap_rate_limit_per_bridge=1_000_000,
        bootstrap_rate_limit_per_user=1_000_000,
        miniapp_rate_limit_per_ip=1_000_000,
        miniapp_rate_limit_per_token=1_000_000,
        max_daily_call_ms=86_400_000,
        launch_window_ms=60_000,
    )
    loaded = load_config(path, env=secrets_env())
    gateway = build_gateway(loaded)
    stop = asyncio.Event()
    ready = asyncio.Event()
    with watching_logs() as (watch, captured):
        task = asyncio.create_task(serve(gateway, stop=stop, on_ready=lambda _a: ready.set()))
        async with asyncio.timeout(10):
            await ready.wait()
        base = f"http://127.0.0.1:{port}"
        bridge = FakeBridge(url=f"ws://127.0.0.1:{port}/ws/bridge")
        http = aiohttp.ClientSession()
        running = RunningGateway(gateway, base, http, bridge, loaded, stop, task)
        await bridge.connect()
        async with asyncio.timeout(5):
            while not gateway.hub.connected("bridge"):
                await asyncio.sleep(0.01)
        fuzz = Fuzzed(running, watch, captured)
        try:
            yield fuzz
        finally:
            await bridge.close()
            await http.close()
            stop.set()
            async with asyncio.timeout(15):
                await task
    fuzz.assert_clean_logs()


def _escaped(text: str) -> str:
    """Percent-encode ``text``'s UTF-8, lone surrogates included (as the bytes they would be)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


async def assert_answer(resp: aiohttp.ClientResponse, path: str) -> None:
    """Below 500; a 4xx has the JSON error shape (the Mini App page's is HTML)."""
    raw = await resp.read()
    assert resp.status < 500, (path, resp.status, raw[:300])
    if resp.status < 400:
        return
    if path == "/miniapp":
        assert resp.content_type == "text/html", raw[:300]
        return
    body = json.loads(raw)
    assert set(body) == {"error"}, body
    assert isinstance(body["error"].get("code"), str) and body["error"]["code"], body
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], body


async def assert_healthy(fuzz: Fuzzed) -> None:
    async with fuzz.gw.http.get(f"{fuzz.gw.base}/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"ok": True}
    fuzz.assert_clean_logs()


# -- HTTP --------------------------------------------------------------------------------------


@FUZZ
@given(
    path=st.sampled_from(POST_ROUTES),
    body=RAW_BODIES,
    with_secret=st.booleans(),
    as_json=st.booleans(),
)
async def test_post_routes_answer_generated_bodies(
    fuzzed: Fuzzed, path: str, body: bytes, with_secret: bool, as_json: bool
) -> None:
    if path == "/api/call/bootstrap":
        await fuzzed.ensure_armed()
    headers = {"Content-Type": "application/json" if as_json else "text/plain"}
    if with_secret:
        headers["Authorization"] = f"Bearer {CONTROL_SECRET}"
    async with fuzzed.gw.http.post(f"{fuzzed.gw.base}{path}", data=body, headers=headers) as resp:
        await assert_answer(resp, path)
    await assert_healthy(fuzzed)


@FUZZ
@given(
    path=st.sampled_from(GET_ROUTES),
    params=st.dictionaries(st.sampled_from(["launch", "call_id", "x"]) | TEXT, TEXT, max_size=3),
    with_secret=st.booleans(),
)
async def test_get_routes_answer_generated_queries(
    fuzzed: Fuzzed, path: str, params: dict[str, str], with_secret: bool
) -> None:
    headers = {"Authorization": f"Bearer {CONTROL_SECRET}"} if with_secret else {}
    query = "&".join(f"{_escaped(key)}={_escaped(value)}" for key, value in params.items())
    # aiohttp's parser refuses a request line over 8190 bytes before any route runs.
    assume(len(path) + len(query) < MAX_REQUEST_LINE)
    url = yarl.URL(f"{fuzzed.gw.base}{path}?{query}", encoded=True)
    async with fuzzed.gw.http.get(url, headers=headers) as resp:
        await assert_answer(resp, path)
    await assert_healthy(fuzzed)


SIGNABLE_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
INIT_DATA_VALUES = st.one_of(
    SIGNABLE_TEXT,
    JSON.map(json.dumps),
    st.integers(min_value=0, max_value=10**12 - 1).map(str),
)
AUTH_DATES = st.one_of(
    st.sampled_from(["999999999999", "253402300800", "0", "-1", "1e9", " 1", "01"]),
    st.integers(min_value=-60, max_value=60).map(lambda skew: str(int(time.time()) + skew)),
    INIT_DATA_VALUES,
)
USERS = st.one_of(
    st.builds(
        lambda uid, extra: json.dumps({**extra, "id": uid}),
        st.one_of(st.just(USER_ID), NUMBERS, TEXT, JSON),
        st.dictionaries(TEXT, JSON, max_size=2),
    ),
    INIT_DATA_VALUES,
)


@FUZZ
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "user": USERS,
            "auth_date": AUTH_DATES,
            "query_id": INIT_DATA_VALUES,
            "chat_type": INIT_DATA_VALUES,
            "signature": INIT_DATA_VALUES,
            "x": INIT_DATA_VALUES,
        },
    ),
    real_token=st.sampled_from([True, True, True, False]),
)
async def test_bootstrap_answers_validly_signed_generated_init_data(
    fuzzed: Fuzzed, fields: dict[str, str], real_token: bool
) -> None:
    token = await fuzzed.ensure_armed()
    data = sign_init_data(fields, bot_token=BOT_TOKEN)
    body = {"launch_token": token if real_token else "x" * 43, "init_data": data}
    async with fuzzed.gw.http.post(f"{fuzzed.gw.base}/api/call/bootstrap", json=body) as resp:
        await assert_answer(resp, "/api/call/bootstrap")
        event(f"{resp.status}")
    await assert_healthy(fuzzed)


@FUZZ
@given(
    path=st.sampled_from(["/api/call/webrtc", "/api/call/hangup", "/api/call/finalize"]),
    extra=st.dictionaries(
        st.sampled_from(["reason", "events", "sdp"]),
        st.one_of(
            JSON,
            st.lists(st.fixed_dictionaries({"id": JSON, "event": CALL_EVENT}), max_size=3),
            st.lists(CALL_EVENT, max_size=3),
        ),
        max_size=3,
    ),
)
async def test_call_routes_answer_generated_fields_of_a_real_call(
    fuzzed: Fuzzed, path: str, extra: dict[str, Any]
) -> None:
    call = await fuzzed.ensure_call()
    body = {**extra, "call_id": call["call_id"], "client_token": call["client_token"]}
    async with fuzzed.gw.http.post(f"{fuzzed.gw.base}{path}", json=body) as resp:
        await assert_answer(resp, path)
    await assert_healthy(fuzzed)


# -- sockets -----------------------------------------------------------------------------------


def frames(max_depth: int) -> st.SearchStrategy[str | bytes]:
    """Socket frames: generated JSON, ``call.event`` shapes, nesting up to ``max_depth``, binary
    and raw text."""
    return st.one_of(
        JSON.map(json.dumps),
        st.fixed_dictionaries({"type": st.just("call.event"), "id": JSON, "event": CALL_EVENT}).map(
            json.dumps
        ),
        st.fixed_dictionaries({"type": st.just("call.event"), "id": JSON, "event": JSON}).map(
            json.dumps
        ),
        st.integers(min_value=1, max_value=max_depth).map(_deep),
        st.binary(max_size=64),
        TEXT,
    )


SOCKET_FRAMES = frames(5000)


async def _exchange(ws: aiohttp.ClientWebSocketResponse, frames: list[str | bytes]) -> None:
    """Send the frames, read what comes back until quiet; assert a clean close if any."""
    for frame in frames:
        if ws.closed:
            break
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
    deadline = time.monotonic() + 0.3
    while not ws.closed and time.monotonic() < deadline:
        try:
            message = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        if message.type is aiohttp.WSMsgType.TEXT:
            reply = json.loads(message.data)
            assert isinstance(reply, dict) and isinstance(reply.get("type"), str), reply
        elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
    if ws.closed:
        assert ws.close_code in CLEAN_CLOSE_CODES, ws.close_code
    await ws.close()


@FUZZ
@given(auth=st.one_of(st.none(), SOCKET_FRAMES), sent=st.lists(SOCKET_FRAMES, max_size=5))
async def test_call_socket_answers_generated_frames(
    fuzzed: Fuzzed, auth: str | bytes | None, sent: list[str | bytes]
) -> None:
    call = await fuzzed.ensure_call()
    ws = await fuzzed.gw.http.ws_connect(f"{fuzzed.gw.base}{call['ws_path']}")
    if auth is None:  # a valid sign-in, then the generated frames
        await ws.send_json({"type": "call.auth", "token": call["client_token"]})
        reply = await ws.receive_json(timeout=5)
        assert reply["type"] == "call.auth.ok", reply
        await _exchange(ws, sent)
    else:
        await _exchange(ws, [auth, *sent])
    await assert_healthy(fuzzed)


BRIDGE_FRAMES = st.one_of(
    SOCKET_FRAMES,
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["bridge.status", "call.prepare.result", "call.ack", "call.hangup", "bridge.hello"]
            )
        },
        optional={
            "status": JSON,
            "reply_to": JSON,
            "allowed": JSON,
            "reason": JSON,
            "context": JSON,
            "call_id": JSON,
            "seq": JSON,
            "bridge_id": JSON,
        },
    ).map(json.dumps),
)


@FUZZ
@given(sent=st.lists(BRIDGE_FRAMES, min_size=1, max_size=5))
async def test_bridge_socket_answers_generated_frames_after_hello(
    fuzzed: Fuzzed, sent: list[str | bytes]
) -> None:
    ws = await _bridge_after_hello(fuzzed)
    await _exchange(ws, sent)
    await assert_healthy(fuzzed)


async def _bridge_after_hello(fuzzed: Fuzzed) -> aiohttp.ClientWebSocketResponse:
    ws = await fuzzed.gw.http.ws_connect(
        f"{fuzzed.gw.base}/ws/bridge", headers={"Authorization": f"Bearer {CONTROL_SECRET}"}
    )
    await ws.send_json({"type": "bridge.hello", "bridge_id": "fuzz-bridge", "status": {}})
    async with asyncio.timeout(5):
        while (await ws.receive_json())["type"] != "hello.ok":
            pass
    return ws


async def test_bridge_socket_survives_a_deeply_nested_frame(fuzzed: Fuzzed) -> None:
    ws = await _bridge_after_hello(fuzzed)
    try:
        await _exchange(ws, [_deep(3001)])
        fuzzed.assert_clean_logs()
    finally:
        fuzzed.watch.problems.clear()
        fuzzed.captured.clear()


async def test_gateway_is_healthy_after_the_fuzz(fuzzed: Fuzzed) -> None:
    await assert_healthy(fuzzed)
    assert fuzzed.gw.gateway.hub.connected("bridge")
