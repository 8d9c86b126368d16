"""Connections that never finish cannot take the gateway down.

A real gateway on a loopback port, raw sockets against it: headers trickled byte by byte and
bodies that stall are cut off at the ``[gateway]`` deadlines; one address cannot hold more than
``max_connections_per_ip`` connections (a trusted proxy's requests count per forwarded address);
``/healthz`` keeps answering; a WebSocket upgrade reset by its client leaves no error in the log.
Every wait is bounded; every socket is closed by the end of its test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bridgehost.config import GatewayConfig, load_config
from bridgehost.gateway.connections import ConnectionPolicy, RefusalSummary
from bridgehost.gateway.service import build_gateway, serve

from .conftest import free_port, secrets_env, write_config

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]
StartGateway = Callable[..., Awaitable[int]]

OTHER_LOOPBACK = "127.0.0.2"
"""A second loopback source address: "another client" for the per-address caps."""


@pytest.fixture
async def start_gateway(tmp_path: Path) -> AsyncIterator[StartGateway]:
    """Start a gateway with ``[gateway]`` settings (and optional ``[realtime]`` overrides);
    returns its port. Stopped after the test."""
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(realtime: dict[str, Any] | None = None, **gateway: Any) -> int:
        port = free_port()
        path = write_config(tmp_path, port, **(realtime or {}))
        lines = ["[gateway]"] + [f"{key} = {json.dumps(value)}" for key, value in gateway.items()]
        with path.open("a") as config:
            config.write("\n".join(lines) + "\n")
        gw = build_gateway(load_config(path, env=secrets_env()))
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(gw, stop=stop, on_ready=lambda _a: ready.set()))
        running.append((stop, task))
        async with asyncio.timeout(10):
            await ready.wait()
        return port

    yield start
    for stop, task in running:
        stop.set()
        async with asyncio.timeout(15):
            await task


@contextlib.asynccontextmanager
async def connections(
    port: int, count: int, *, source: str = "127.0.0.1"
) -> AsyncIterator[list[Stream]]:
    """``count`` raw TCP connections from ``source``, all closed on exit."""
    streams: list[Stream] = []
    try:
        for _ in range(count):
            streams.append(await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)))
        yield streams
    finally:
        for _reader, writer in streams:
            writer.close()
        for _reader, writer in streams:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def read_to_close(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the gateway sends until it closes the connection (at most ``timeout`` s)."""
    data = b""
    async with asyncio.timeout(timeout):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk


def parse_response(raw: bytes) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of one raw HTTP response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


async def healthz(port: int, *, source: str = "127.0.0.1") -> int:
    """Status of ``GET /healthz`` over a fresh connection (answered within 3 s)."""
    async with connections(port, 1, source=source) as [(reader, writer)]:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
        raw = await read_to_close(reader, 3.0)
    return int(raw.split(b" ", 2)[1]) if raw else 0


async def slow_loris(stream: Stream, every_s: float, timeout: float = 6.0) -> tuple[bytes, float]:
    """Trickle :data:`SLOW_HEADERS` one byte per ``every_s`` until the gateway answers or closes.

    Returns what the gateway sent and how long it took. It always listens before it writes, so
    an answer that is already there is read before a write could draw a reset; a reset that
    beats the answer still comes back as ``b""``.
    """
    reader, writer = stream
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        for byte in SLOW_HEADERS:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), every_s)
            except TimeoutError:
                with contextlib.suppress(OSError):
                    writer.write(bytes([byte]))
                continue
            except ConnectionResetError:
                return b"", time.monotonic() - started
            if chunk:
                with contextlib.suppress(TimeoutError):
                    chunk += await read_to_close(reader, 1.0)
            return chunk, time.monotonic() - started
    raise AssertionError("unreachable: SLOW_HEADERS outlasts the timeout")


SLOW_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Padding: " + b"a" * 4000


# --- request deadlines ---------------------------------------------------------------------


async def test_unfinished_headers_get_a_408_at_the_header_timeout(start_gateway):
    port = await start_gateway(header_timeout_s=0.6)
    async with connections(port, 2) as [(reader, writer), (silent, _)]:
        writer.write(SLOW_HEADERS[:40])
        started = time.monotonic()
        raw = await read_to_close(reader, 5.0)
        elapsed = time.monotonic() - started
        assert await read_to_close(silent, 2.0)  # a client that sends nothing is closed too
    assert 0.4 < elapsed < 2.5, elapsed
    status, body = parse_response(raw)
    assert status == 408
    assert body["error"]["code"] == "request_timeout"
    assert "0.6 s" in body["error"]["message"]


async def test_headers_trickled_byte_by_byte_are_cut_off(start_gateway):
    port = await start_gateway(header_timeout_s=0.6)
    async with connections(port, 1) as [stream]:
        raw, elapsed = await slow_loris(stream, every_s=0.05)
    assert 0.4 < elapsed < 2.5, elapsed  # without the deadline: held until the bytes run out
    assert raw == b"" or parse_response(raw)[0] == 408


async def test_a_request_sent_in_time_is_served_and_the_connection_kept(start_gateway):
    port = await start_gateway(header_timeout_s=0.6)
    async with connections(port, 1) as [(reader, writer)]:
        for _ in range(2):  # the deadline restarts with each request on a kept-alive connection
            await asyncio.sleep(0.4)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            async with asyncio.timeout(3):
                head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)


async def test_a_stalled_body_gets_a_408_and_the_connection_closes(start_gateway):
    port = await start_gateway(body_timeout_s=0.5, header_timeout_s=5)
    body = b'{"launch_token": "abc", "init_data": "x"}'
    async with connections(port, 1) as [(reader, writer)]:
        writer.write(
            b"POST /api/call/bootstrap HTTP/1.1\r\nHost: gateway\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        started = time.monotonic()
        raw = await read_to_close(reader, 5.0)
        elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 2.5, elapsed
    status, answer = parse_response(raw)
    assert status == 408
    assert answer["error"]["code"] == "request_timeout"
    assert "stalled for 0.5 s" in answer["error"]["message"]


async def test_a_slow_body_that_never_pauses_long_is_read_to_the_end(start_gateway):
    port = await start_gateway(body_timeout_s=0.5, header_timeout_s=5)
    body = b'{"launch_token": 1}'
    async with connections(port, 1) as [(reader, writer)]:
        writer.write(
            b"POST /api/call/bootstrap HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        for byte in body:  # about 2 s in all, never a 0.5 s pause
            writer.write(bytes([byte]))
            await asyncio.sleep(0.1)
        raw = await read_to_close(reader, 5.0)
    status, answer = parse_response(raw)
    assert status == 400, answer  # the body arrived whole: the route judged it
    assert answer["error"]["code"] != "request_timeout"


# --- per-address connection caps ------------------------------------------------------------


async def test_one_connection_over_the_cap_is_refused_and_the_rest_keep_working(start_gateway):
    port = await start_gateway(max_connections_per_ip=4, header_timeout_s=30)
    with capture_logs() as logs:
        async with connections(port, 4) as held:
            await asyncio.sleep(0.1)
            async with connections(port, 3) as extra:
                started = time.monotonic()
                refused = [await read_to_close(reader, 2.0) for reader, _ in extra]
                assert time.monotonic() - started < 1.5
            assert await healthz(port, source=OTHER_LOOPBACK) == 200
            for _reader, writer in held:
                writer.close()
        await asyncio.sleep(0.2)
        assert await healthz(port) == 200  # the slots came back
    for raw in refused:
        status, body = parse_response(raw)
        assert (status, body["error"]["code"]) == (429, "too_many_connections")
        assert b"\r\nRetry-After: 1\r\n" in raw
    warnings = [e for e in logs if e["event"].startswith("connections refused")]
    assert len(warnings) == 1, warnings  # three refusals, one line (then one a minute at most)
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["addresses"] == ["127.0.0.1 (1)"]


async def test_slow_loris_clients_never_stop_healthz(start_gateway):
    port = await start_gateway(max_connections_per_ip=8, header_timeout_s=1.5)
    async with (
        connections(port, 50, source=OTHER_LOOPBACK) as flood,
        connections(port, 3) as neighbours,
    ):
        await asyncio.sleep(0.3)  # the gateway admitted (or refused) each of them
        clients = [
            asyncio.create_task(slow_loris(stream, every_s=0.2)) for stream in flood + neighbours
        ]
        await asyncio.sleep(0.3)
        for _ in range(3):
            assert await healthz(port) == 200
        outcomes = await asyncio.gather(*clients)
    refused = [raw for raw, elapsed in outcomes[:50] if elapsed < 0.5]
    assert len(refused) == 42  # beyond the cap: answered at once
    assert all(raw == b"" or parse_response(raw)[0] == 429 for raw in refused)  # "" = reset
    assert sum(raw != b"" for raw in refused) > 30
    held = [(raw, elapsed) for raw, elapsed in outcomes if elapsed >= 0.5]
    assert len(held) == 8 + 3  # under the cap: cut off at the header timeout, not later
    assert all(elapsed < 3.0 for _raw, elapsed in held)
    assert await healthz(port) == 200


async def test_behind_a_trusted_proxy_requests_count_per_forwarded_address(start_gateway):
    port = await start_gateway(
        {"trusted_proxies": ["127.0.0.1"]},
        max_connections_per_ip=2,
        max_connections_per_proxy=6,
        body_timeout_s=30,
    )

    def request(client: str, *, pending: bool = False) -> bytes:
        if pending:  # in flight until its body comes, which it never does
            return (
                b"POST /api/call/hangup HTTP/1.1\r\nHost: gateway\r\n"
                + f"CF-Connecting-IP: {client}\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: 50\r\n\r\n{"
            )
        return (
            b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n"
            + f"CF-Connecting-IP: {client}\r\n\r\n".encode()
        )

    async with connections(port, 2) as pending:
        for _reader, writer in pending:
            writer.write(request("203.0.113.7", pending=True))
        await asyncio.sleep(0.2)
        async with connections(port, 2) as [(same, same_w), (other, other_w)]:
            same_w.write(request("203.0.113.7"))
            other_w.write(request("203.0.113.8"))
            status, body = parse_response(await read_to_close(same, 2.0))
            assert (status, body["error"]["code"]) == (429, "too_many_connections")
            assert (await read_to_close(other, 2.0)).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.2)
        async with connections(port, 5) as more:  # the proxy itself: 2 held + 4, no 7th
            refused = await read_to_close(more[-1][0], 2.0)
            assert parse_response(refused)[0] == 429
            with pytest.raises(TimeoutError):  # the first of them is held, not closed
                await asyncio.wait_for(more[0][0].read(1), 0.3)


# --- websocket resets ----------------------------------------------------------------------


async def reset_upgrade(port: int, path: str) -> None:
    """Send a WebSocket upgrade for ``path`` and reset the connection (RST) right away."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await writer.drain()
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def test_reset_websocket_upgrades_log_no_errors(start_gateway, caplog):
    port = await start_gateway(max_connections_per_ip=64)
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        for _ in range(50):
            await reset_upgrade(port, "/ws/call?call_id=c_unknown")
        await asyncio.sleep(0.5)
        assert await healthz(port) == 200
    errors = [e for e in logs if e["log_level"] in ("error", "critical", "exception")]
    assert errors == []
    stdlib = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert stdlib == []
    gone = [e for e in logs if e["event"] == "client went away mid-request"]
    assert all(e["log_level"] == "debug" for e in gone)


async def test_requests_that_are_not_http_get_a_json_400_and_no_error_log(start_gateway, caplog):
    port = await start_gateway()
    caplog.set_level(logging.DEBUG)
    garbage = [
        b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",  # TLS on the plain port
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
    ]
    with capture_logs() as logs:
        for request in garbage:
            async with connections(port, 1) as [(reader, writer)]:
                writer.write(request)
                status, body = parse_response(await read_to_close(reader, 3.0))
            assert (status, body["error"]["code"]) == (400, "bad_request")
            assert body["error"]["message"].startswith("The request is not valid HTTP (")
            assert "aaaa" not in body["error"]["message"]
    assert [e for e in logs if e["log_level"] not in ("debug", "info")] == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


# --- the policy ----------------------------------------------------------------------------


def test_a_trusted_proxy_never_gets_more_than_half_the_descriptors() -> None:
    config = GatewayConfig(max_connections_per_ip=32, max_connections_per_proxy=256)
    assert ConnectionPolicy.from_config(config, fd_limit=100_000).max_per_proxy == 256
    assert ConnectionPolicy.from_config(config, fd_limit=200).max_per_proxy == 100
    assert ConnectionPolicy.from_config(config, fd_limit=40).max_per_proxy == 32


async def test_refusals_are_summarised_once_per_interval() -> None:
    summary = RefusalSummary(interval_s=0.3)
    with capture_logs() as logs:
        for _ in range(100):
            summary.record("198.51.100.1")
        summary.record("198.51.100.2")
        await asyncio.sleep(0.45)
        summary.close()
    assert [(e["refused"], e["addresses"]) for e in logs] == [
        (1, ["198.51.100.1 (1)"]),
        (100, ["198.51.100.1 (99)", "198.51.100.2 (1)"]),
    ]
