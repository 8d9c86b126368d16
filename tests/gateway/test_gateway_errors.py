"""Tests for bridgehost.gateway.errors: one JSON error shape, capped JSON bodies, no leaks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from bridgehost.gateway.errors import ApiError, error_middleware, read_json_body
from bridgehost.gateway.security import security_headers_middleware

CAP = 1024

Client = TestClient[web.Request, web.Application]


async def echo_json(request: web.Request) -> web.Response:
    return web.json_response({"got": await read_json_body(request, max_bytes=CAP)})


async def api_error(request: web.Request) -> web.Response:
    raise ApiError(
        429,
        "rate_limited",
        "Too many call attempts; wait a minute.",
        retry_after=12.2,
        headers={"X-Extra": "1"},
    )


async def crash(request: web.Request) -> web.Response:
    raise ValueError("secret detail: sk-live-123 at /home/op/.codex")


async def forbidden(request: web.Request) -> web.Response:
    raise web.HTTPForbidden(text="internal reason")


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/elsewhere")


async def aiohttp_read(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


async def ws_echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.data == "boom":
            raise ValueError("after upgrade")
        await ws.send_str(message.data)
    return ws


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    app = web.Application(
        middlewares=[security_headers_middleware, error_middleware], client_max_size=CAP
    )
    app.router.add_post("/json", echo_json)
    app.router.add_get("/api-error", api_error)
    app.router.add_get("/crash", crash)
    app.router.add_get("/forbidden", forbidden)
    app.router.add_get("/redirect", redirect)
    app.router.add_post("/aiohttp-read", aiohttp_read)
    app.router.add_get("/ws", ws_echo)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


async def expect_error(response: Any, status: int, code: str) -> str:
    """Assert the JSON error shape and the security headers; return the message."""
    assert response.status == status
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Content-Security-Policy" in response.headers
    message: str = body["error"]["message"]
    assert message.endswith(".")
    return message


async def test_api_error_shape_retry_after_and_headers(client: Client) -> None:
    response = await client.get("/api-error")
    assert await expect_error(response, 429, "rate_limited") == (
        "Too many call attempts; wait a minute."
    )
    assert response.headers["Retry-After"] == "13"
    assert response.headers["X-Extra"] == "1"


async def test_unexpected_exception_is_a_generic_500(
    client: Client, captured_logs: list[dict[str, Any]]
) -> None:
    response = await client.get("/crash")
    message = await expect_error(response, 500, "internal_error")
    assert message == "The gateway hit an unexpected error; it has been logged."
    text = json.dumps(await response.json())
    assert "ValueError" not in text and "sk-live" not in text and "codex" not in text
    logged = [entry for entry in captured_logs if entry["event"] == "http.unhandled_error"]
    assert logged and logged[0]["path"] == "/crash" and logged[0]["log_level"] == "error"


async def test_unknown_route_is_404_json(client: Client) -> None:
    message = await expect_error(await client.get("/nope"), 404, "not_found")
    assert message == "No such route."


async def test_wrong_method_is_405_json_with_allow(client: Client) -> None:
    response = await client.put("/json")
    message = await expect_error(response, 405, "method_not_allowed")
    assert "PUT" in message and "POST" in message
    assert response.headers["Allow"] == "POST"


async def test_handler_http_exception_is_reshaped_without_its_text(client: Client) -> None:
    response = await client.get("/forbidden")
    await expect_error(response, 403, "forbidden")
    assert "internal reason" not in await response.text()


async def test_redirect_passes_untouched(client: Client) -> None:
    response = await client.get("/redirect", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/elsewhere"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_aiohttp_body_limit_is_413_json(client: Client) -> None:
    response = await client.post("/aiohttp-read", data=b"x" * (CAP + 1))
    message = await expect_error(response, 413, "body_too_large")
    assert message == f"The request body is larger than {CAP} bytes."


async def test_json_body_round_trip(client: Client) -> None:
    response = await client.post("/json", json={"launch_token": "t", "n": [1, 2]})
    assert response.status == 200
    assert await response.json() == {"got": {"launch_token": "t", "n": [1, 2]}}
    at_cap = b'{"a":"' + b"x" * (CAP - 8) + b'"}'
    assert len(at_cap) == CAP
    assert (await client.post("/json", data=at_cap)).status == 200


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"a": 1,', "line 1, column 9"),
        (b"[1, 2]", "got a JSON array"),
        (b'"text"', "got a JSON string"),
        (b"null", "got a JSON null"),
        (b"", "it was empty"),
        (b"  \n", "it was empty"),
        (b'{"a": "\xff"}', "not valid UTF-8"),
        (b'{"a": NaN}', "not valid JSON"),
    ],
)
async def test_bad_json_is_400(client: Client, body: bytes, detail: str) -> None:
    message = await expect_error(await client.post("/json", data=body), 400, "malformed_json")
    assert message.startswith("The request body must be a JSON object")
    assert detail in message


async def test_deeply_nested_json_is_400_not_500() -> None:
    app = web.Application(middlewares=[security_headers_middleware, error_middleware])

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(await read_json_body(request, max_bytes=1_000_000))

    app.router.add_post("/", handler)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        response = await test_client.post("/", data=b"[" * 200_000)
        await expect_error(response, 400, "malformed_json")


async def raw_exchange(client: Client, head: bytes, body: bytes) -> bytes:
    """Send ``head`` and a partial ``body`` over a raw socket; return the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(head + body)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    finally:
        writer.close()


async def test_content_length_over_cap_is_413_without_reading_the_body(client: Client) -> None:
    head = (
        b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 50000000\r\n\r\n"
    )
    # Only 10 bytes of the announced 50 MB are ever sent: the answer must not wait for the rest.
    status_line = (await raw_exchange(client, head, b'{"a": "xxx')).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"


async def test_chunked_body_over_cap_is_413(client: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * (CAP // 2)

    response = await client.post("/json", data=chunks())
    message = await expect_error(response, 413, "body_too_large")
    assert message == f"The request body is larger than {CAP} bytes."


async def test_chunked_over_cap_answers_before_the_body_ends(client: Client) -> None:
    head = b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    oversized = b"x" * (CAP + 10)
    chunk = f"{len(oversized):x}\r\n".encode() + oversized + b"\r\n"  # no final 0-chunk
    status_line = (await raw_exchange(client, head, chunk)).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"


async def test_websocket_upgrade_passes_through(
    client: Client, captured_logs: list[dict[str, Any]]
) -> None:
    async with client.ws_connect("/ws") as ws:
        await ws.send_str("hello")
        assert (await ws.receive(timeout=5)).data == "hello"
        await ws.send_str("boom")  # the handler fails after the upgrade: connection just ends
        message = await ws.receive(timeout=5)
        assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)
    assert any(entry["event"] == "http.unhandled_error" for entry in captured_logs)


async def test_websocket_handshake_error_is_json(client: Client) -> None:
    # a plain GET to a websocket route cannot be upgraded: aiohttp's 400 becomes JSON
    await expect_error(await client.get("/ws"), 400, "bad_request")
