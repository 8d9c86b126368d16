"""Hostile input the gateway once answered with a 500 or a dropped socket, one test per case.

Lone surrogates (``"\\ud800"`` in JSON), header bytes that are not UTF-8, a ``reason`` that is
not a string, a validly signed ``auth_date`` far in the future, and ``Retry-After`` values that
must match the window the gateway really enforces.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from bridgehost.gateway.initdata import InitDataError, sign_init_data, verify_init_data
from bridgehost.gateway.ratelimit import AUTH_FAILURE_WINDOW_S, AuthFailures
from bridgehost.gateway.security import secret_matches
from bridgehost.state import CallLog

from .conftest import BOT_TOKEN, CONTROL_SECRET, USER_ID, RunningGateway, init_data

SURROGATE = "\ud800"


async def expect_error(resp: aiohttp.ClientResponse, status: int, code: str) -> str:
    """Assert status and the error shape; return the message."""
    body = await resp.json()
    assert resp.status == status, body
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["message"]


async def raw_request(base: str, head: bytes) -> tuple[int, bytes]:
    """Send a raw HTTP/1.1 request head (bytes as given, no body); return status and body."""
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(head)
        await writer.drain()
        async with asyncio.timeout(5):
            raw = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), body


def raw_head(method: str, path: str, *extra: bytes) -> bytes:
    """A request head with ``Connection: close`` and the given raw header lines."""
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
    if method == "POST":
        lines.append(b"Content-Length: 0")
    return b"\r\n".join([*lines, *extra]) + b"\r\n\r\n"


async def launch_token(gw: RunningGateway) -> str:
    armed = await gw.arm()
    return str(armed["launch_url"].split("launch=")[1])


def signed(**fields: str) -> str:
    values = {
        "user": json.dumps({"id": USER_ID, "first_name": "Alice"}),
        "auth_date": str(int(time.time())),
        **fields,
    }
    return sign_init_data(values, bot_token=BOT_TOKEN)


# -- lone surrogates ---------------------------------------------------------------------------


async def test_lone_surrogate_in_launch_token_is_400(gw: RunningGateway) -> None:
    await launch_token(gw)
    resp = await gw.bootstrap(SURROGATE, init_data())
    message = await expect_error(resp, 400, "invalid_unicode")
    assert "surrogate" in message
    assert (await gw.http.get(f"{gw.base}/healthz")).status == 200


@pytest.mark.parametrize(
    "data",
    [
        f"user=%7B%22id%22%3A4242%7D&auth_date=1&hash={SURROGATE}",
        f"user=%7B%22id%22%3A4242%7D&query_id={SURROGATE}&auth_date=1&hash=00",
        f"{SURROGATE}=1&auth_date=1&hash=00",
    ],
    ids=["hash", "value", "key"],
)
async def test_lone_surrogate_in_init_data_is_400(gw: RunningGateway, data: str) -> None:
    token = await launch_token(gw)
    await expect_error(await gw.bootstrap(token, data), 400, "invalid_unicode")
    assert gw.gateway.calls.current is None


def test_verify_init_data_calls_a_lone_surrogate_malformed() -> None:
    data = signed(query_id="AAE") + f"&start_param={SURROGATE}"
    with pytest.raises(InitDataError) as caught:
        verify_init_data(data, bot_token=BOT_TOKEN, max_age=timedelta(hours=1))
    assert caught.value.reason == "malformed"


async def test_lone_surrogate_client_token_on_hangup_is_400_and_the_call_goes_on(
    gw: RunningGateway,
) -> None:
    body = await gw.start_call()
    resp = await gw.http.post(
        f"{gw.base}/api/call/hangup",
        json={"call_id": body["call_id"], "client_token": SURROGATE},
    )
    await expect_error(resp, 400, "invalid_unicode")
    current = gw.gateway.calls.current
    assert current is not None and current.call_id == body["call_id"] and not current.is_ending


async def test_lone_surrogate_in_call_auth_closes_4001(gw: RunningGateway) -> None:
    body = await gw.start_call()
    ws = await gw.http.ws_connect(f"{gw.base}{body['ws_path']}")
    await ws.send_str(json.dumps({"type": "call.auth", "token": SURROGATE}))
    message = await ws.receive(timeout=5)
    assert message.type is aiohttp.WSMsgType.CLOSE and ws.close_code == 4001
    ok = await gw.http.ws_connect(f"{gw.base}{body['ws_path']}")
    await ok.send_json({"type": "call.auth", "token": body["client_token"]})
    assert (await ok.receive_json(timeout=5))["type"] == "call.auth.ok"
    await ok.close()


async def test_lone_surrogate_in_a_call_event_frame_is_an_error_reply(gw: RunningGateway) -> None:
    body = await gw.start_call()
    ws = await gw.http.ws_connect(f"{gw.base}{body['ws_path']}")
    await ws.send_json({"type": "call.auth", "token": body["client_token"]})
    assert (await ws.receive_json(timeout=5))["type"] == "call.auth.ok"
    frame = {"type": "call.event", "id": 1, "event": {"type": "vad", "state": SURROGATE}}
    await ws.send_str(json.dumps(frame))
    async with asyncio.timeout(5):
        while (reply := await ws.receive_json())["type"] == "call.event":
            pass
    assert reply["type"] == "error" and reply["code"] == "bad_message"
    await ws.close()


# -- header bytes that are not UTF-8 -----------------------------------------------------------

BAD_AUTHORIZATION = b"Authorization: Bearer \xff\xfe" + CONTROL_SECRET.encode()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz/details"),
        ("GET", "/control/status"),
        ("POST", "/control/arm"),
        ("POST", "/control/disarm"),
        ("POST", "/control/hangup"),
    ],
)
async def test_authorization_that_is_not_utf8_is_401(
    gw: RunningGateway, method: str, path: str
) -> None:
    status, body = await raw_request(gw.base, raw_head(method, path, BAD_AUTHORIZATION))
    assert status == 401
    assert json.loads(body)["error"]["code"] == "unauthorized"


async def test_bridge_socket_with_authorization_that_is_not_utf8_is_401(
    gw: RunningGateway,
) -> None:
    head = raw_head(
        "GET",
        "/ws/bridge",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Version: 13",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        BAD_AUTHORIZATION,
    )
    status, body = await raw_request(gw.base, head)
    assert status == 401
    assert json.loads(body)["error"]["code"] == "unauthorized"
    assert gw.gateway.hub.connected("bridge")


def test_secret_matches_refuses_surrogate_escapes() -> None:
    given = b"\xff".decode("utf-8", "surrogateescape") + CONTROL_SECRET
    assert secret_matches(given, CONTROL_SECRET) is False
    assert secret_matches(CONTROL_SECRET, CONTROL_SECRET) is True


# -- reason that is not a string ---------------------------------------------------------------


@pytest.mark.parametrize("reason", [["user_hangup"], {"a": 1}, 7, True])
async def test_hangup_with_a_reason_that_is_not_a_string_is_400(
    gw: RunningGateway, reason: Any
) -> None:
    body = await gw.start_call()
    resp = await gw.http.post(
        f"{gw.base}/api/call/hangup",
        json={"call_id": body["call_id"], "client_token": body["client_token"], "reason": reason},
    )
    assert "'reason'" in await expect_error(resp, 400, "invalid_field")
    current = gw.gateway.calls.current
    assert current is not None and not current.is_ending


async def test_finalize_with_a_reason_that_is_not_a_string_is_400_and_stores_nothing(
    gw: RunningGateway,
) -> None:
    body = await gw.start_call()
    log = CallLog(gw.gateway.paths.call_log(body["call_id"]))

    def logged() -> list[dict[str, Any]]:
        try:
            return log.read().events
        except FileNotFoundError:
            return []

    before = logged()
    resp = await gw.http.post(
        f"{gw.base}/api/call/finalize",
        json={
            "call_id": body["call_id"],
            "client_token": body["client_token"],
            "reason": ["page_closed"],
            "events": [{"id": "e1", "event": {"type": "user.transcript.final", "text": "hi"}}],
        },
    )
    await expect_error(resp, 400, "invalid_field")
    assert logged() == before
    current = gw.gateway.calls.current
    assert current is not None and current.call_id == body["call_id"] and not current.is_ending


# -- auth_date far in the future ---------------------------------------------------------------


async def test_signed_auth_date_far_in_the_future_is_401_future(gw: RunningGateway) -> None:
    token = await launch_token(gw)
    resp = await gw.bootstrap(token, signed(auth_date="999999999999"))
    await expect_error(resp, 401, "init_data_future")


@pytest.mark.parametrize("stamp", ["999999999999", "253402300800", str(int(time.time()) + 3600)])
def test_verify_init_data_calls_any_future_stamp_future(stamp: str) -> None:
    with pytest.raises(InitDataError) as caught:
        verify_init_data(
            signed(auth_date=stamp),
            bot_token=BOT_TOKEN,
            max_age=timedelta(days=1),
            now=datetime.now(UTC),
        )
    assert caught.value.reason == "future"


# -- Retry-After matches the enforced window ---------------------------------------------------


async def test_failed_sign_ins_retry_after_matches_the_failure_window(gw: RunningGateway) -> None:
    token = await launch_token(gw)
    allowed = gw.loaded.config.realtime.bootstrap_rate_limit_per_ip
    bad = init_data(token="654321:another-bot")
    for _ in range(allowed):
        await expect_error(await gw.bootstrap(token, bad), 401, "init_data_bad_hash")
    resp = await gw.bootstrap(token, bad)
    await expect_error(resp, 429, "rate_limited")
    retry_after = int(resp.headers["Retry-After"])
    assert 0 < retry_after <= math.ceil(AUTH_FAILURE_WINDOW_S)
    assert retry_after >= math.ceil(AUTH_FAILURE_WINDOW_S) - 5


def test_auth_failures_retry_after_is_when_one_more_failure_fits() -> None:
    now = [100.0]
    failures = AuthFailures(30.0, clock=lambda: now[0])
    assert failures.retry_after("k", 2) == 0.0
    failures.add("k")
    now[0] += 10
    failures.add("k")
    assert failures.retry_after("k", 2) == pytest.approx(20.0)  # the first one must expire
    now[0] += 5
    assert failures.add("k") == 3  # refused: still counts, so hammering extends the wait
    assert failures.retry_after("k", 2) == pytest.approx(25.0)
    now[0] += 25.001
    assert failures.retry_after("k", 2) == 0.0
    assert failures.add("k") == 2


async def test_miniapp_rate_limit_honours_the_configured_window(gateway_factory: Any) -> None:
    gw = await gateway_factory(bootstrap_rate_limit_window_ms=2000, miniapp_rate_limit_per_ip=1)
    limiter = gw.gateway.miniapp_limits.limiters["address"]
    assert limiter.window == 2.0
    token = await launch_token(gw)
    assert (await gw.http.get(f"{gw.base}/miniapp?launch={token}")).status == 200
    limited = await gw.http.get(f"{gw.base}/miniapp?launch={token}")
    assert limited.status == 429
    assert 0 < int(limited.headers["Retry-After"]) <= 2
    await asyncio.sleep(2.05)
    assert (await gw.http.get(f"{gw.base}/miniapp?launch={token}")).status == 200


# -- requests aiohttp's parser refuses before any route runs -----------------------------------


async def test_request_line_too_long_gets_the_error_shape_and_no_traceback(
    gw: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    status, body = await raw_request(gw.base, raw_head("GET", "/healthz?launch=" + "x" * 9000))
    assert 400 <= status < 500
    assert isinstance(json.loads(body)["error"]["code"], str)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
