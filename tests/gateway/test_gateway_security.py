"""Tests for bridgehost.gateway.security: CSP, secrets, bearer tokens, client address, escaping."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from pydantic import SecretStr

from bridgehost.gateway.errors import error_middleware
from bridgehost.gateway.security import (
    bearer_token,
    client_address,
    escape_for_script,
    is_loopback,
    miniapp_csp,
    new_nonce,
    secret_matches,
    security_headers_middleware,
)

CF_NETS = [ipaddress.ip_network("173.245.48.0/20"), ipaddress.ip_network("2400:cb00::/32")]


def request_from(
    peer: Any,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
) -> web.Request:
    """A mocked request whose socket peer is ``peer`` (a tuple for IP, a string for unix)."""
    extra = {"peername": peer, "sslcontext": None, "sockname": ("127.0.0.1", 8080)}
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: extra.get(name, default)
    return make_mocked_request("GET", "/", headers=headers, transport=transport)


# --- CSP -----------------------------------------------------------------------------------


def test_miniapp_csp_uses_the_nonce_and_no_unsafe_inline() -> None:
    nonce = new_nonce()
    assert len(nonce) >= 22 and nonce != new_nonce()
    csp = miniapp_csp(nonce, connect_src=["https://api.openai.com"])
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == f"'nonce-{nonce}' https://telegram.org"
    assert directives["style-src"] == f"'nonce-{nonce}'"
    assert directives["connect-src"] == "'self' https://api.openai.com"
    assert directives["media-src"] == "'self' blob: mediastream:"
    assert directives["base-uri"] == "'none'" and directives["form-action"] == "'none'"
    assert directives["frame-ancestors"] == "https://web.telegram.org https://*.telegram.org"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


@pytest.mark.parametrize(
    ("nonce", "sources"),
    [
        ("short", []),
        ("abcdefghijklmnop'; script-src *", []),
        (new_nonce(), ["https://x; script-src *"]),
        (new_nonce(), ["https://a https://b"]),
    ],
)
def test_miniapp_csp_refuses_injection(nonce: str, sources: list[str]) -> None:
    with pytest.raises(ValueError):
        miniapp_csp(nonce, connect_src=sources)


# --- secrets and bearer tokens --------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected", "result"),
    [
        ("s3cret-value", "s3cret-value", True),
        ("s3cret-value", SecretStr("s3cret-value"), True),
        ("s3cret-valuE", "s3cret-value", False),
        ("s3cret", "s3cret-value", False),
        ("", "", False),
        (None, None, False),
        ("", SecretStr(""), False),
        (None, "s3cret-value", False),
        ("s3cret-value", None, False),
        ("é-non-ascii", "é-non-ascii", True),
    ],
)
def test_secret_matches(given: str | None, expected: Any, result: bool) -> None:
    assert secret_matches(given, expected) is result


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def", "abc.def"),
        ("bearer   abc  ", "abc"),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic YWJj", None),
        ("tma query_id=1", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    headers = {"Authorization": header} if header is not None else None
    assert bearer_token(request_from(("127.0.0.1", 1), headers)) == token


# --- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("", True),
        ("/run/bridgehost/gateway.sock", True),
        ("@abstract", True),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("2001:db8::1", False),
        ("localhost", False),
        (None, False),
    ],
)
def test_is_loopback(address: str | None, local: bool) -> None:
    assert is_loopback(address) is local


def test_untrusted_peer_headers_are_ignored() -> None:
    spoofed = {"CF-Connecting-IP": "9.9.9.9", "X-Forwarded-For": "8.8.8.8"}
    assert (
        client_address(
            request_from(("203.0.113.7", 5555), spoofed),
            trusted_proxies=CF_NETS,
            trust_loopback=True,
        )
        == "203.0.113.7"
    )
    # loopback is not trusted unless the gateway says so (managed tunnel mode)
    assert (
        client_address(request_from(("127.0.0.1", 5555), spoofed), trusted_proxies=CF_NETS)
        == "127.0.0.1"
    )


def test_trusted_loopback_uses_cf_connecting_ip() -> None:
    headers = {"CF-Connecting-IP": " 198.51.100.4 ", "X-Forwarded-For": "8.8.8.8"}
    request = request_from(("127.0.0.1", 5555), headers)
    assert client_address(request, trusted_proxies=[], trust_loopback=True) == "198.51.100.4"
    mapped = request_from(("::1", 5555, 0, 0), {"CF-Connecting-IP": "::ffff:198.51.100.4"})
    assert client_address(mapped, trusted_proxies=[], trust_loopback=True) == "198.51.100.4"


def test_trusted_proxy_uses_rightmost_untrusted_forwarded_for() -> None:
    headers = [("X-Forwarded-For", "6.6.6.6, 198.51.100.4"), ("X-Forwarded-For", "173.245.48.9")]
    request = request_from(("173.245.48.1", 443), headers)
    assert client_address(request, trusted_proxies=CF_NETS) == "198.51.100.4"
    with_port = request_from(("173.245.48.1", 443), {"X-Forwarded-For": "198.51.100.4:4711"})
    assert client_address(with_port, trusted_proxies=CF_NETS) == "198.51.100.4"
    v6 = request_from(("2400:cb00::1", 443, 0, 0), {"X-Forwarded-For": "[2001:db8::5]:1"})
    assert client_address(v6, trusted_proxies=CF_NETS) == "2001:db8::5"
    all_trusted = request_from(("173.245.48.1", 443), {"X-Forwarded-For": "173.245.48.2"})
    assert client_address(all_trusted, trusted_proxies=CF_NETS) == "173.245.48.2"


@pytest.mark.parametrize(
    "headers",
    [
        {"CF-Connecting-IP": "not-an-ip"},
        {"CF-Connecting-IP": "1.2.3.4, 5.6.7.8"},
        {"X-Forwarded-For": "garbage"},
        {"X-Forwarded-For": "1.2.3.4, <script>"},
        {"X-Forwarded-For": ""},
        {},
    ],
)
def test_garbage_forwarding_headers_fall_back_to_the_peer(headers: dict[str, str]) -> None:
    request = request_from(("127.0.0.1", 5555), headers)
    assert client_address(request, trusted_proxies=[], trust_loopback=True) == "127.0.0.1"


def test_unix_and_unknown_peers() -> None:
    unix = request_from("", {"CF-Connecting-IP": "198.51.100.4"})
    assert client_address(unix, trusted_proxies=[]) == ""
    assert client_address(unix, trusted_proxies=[], trust_loopback=True) == "198.51.100.4"
    assert client_address(request_from(None), trusted_proxies=[]) == "unknown"


# --- escaping -------------------------------------------------------------------------------


def test_escape_for_script_cannot_close_the_script() -> None:
    value = {"launch": "</script><script>alert(1)</script>", "x": "a&b<!--\u2028\u2029"}
    text = escape_for_script(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert not re.search(r"</script", text, re.IGNORECASE)
    assert json.loads(text) == value


# --- headers on a live server ---------------------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async def page(request: web.Request) -> web.Response:
        nonce = new_nonce()
        response = web.Response(text=f"<script nonce='{nonce}'></script>", content_type="text/html")
        response.headers["Content-Security-Policy"] = miniapp_csp(nonce, connect_src=[])
        return response

    async def data(request: web.Request) -> web.Response:
        address = client_address(request, trusted_proxies=[], trust_loopback=True)
        return web.json_response({"address": address})

    app = web.Application(middlewares=[security_headers_middleware, error_middleware])
    app.router.add_get("/miniapp", page)
    app.router.add_get("/data", data)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


async def test_page_keeps_its_csp_and_gets_permissions_policy(client: TestClient) -> None:
    response = await client.get("/miniapp")
    assert response.status == 200
    assert "frame-ancestors https://web.telegram.org" in response.headers["Content-Security-Policy"]
    assert response.headers["Permissions-Policy"] == "microphone=(self)"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert "X-Frame-Options" not in response.headers
    assert "Strict-Transport-Security" not in response.headers  # plain http on loopback


async def test_json_gets_deny_all_csp_and_address_from_trusted_loopback(client: TestClient) -> None:
    response = await client.get("/data", headers={"CF-Connecting-IP": "198.51.100.4"})
    assert await response.json() == {"address": "198.51.100.4"}
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Permissions-Policy" not in response.headers
