"""Security helpers for the gateway: response headers, CSP, secrets, client addresses, escaping.

The gateway faces the internet through a tunnel, so:

* every response carries ``nosniff``, ``no-referrer``, ``no-store`` and a deny-all CSP unless the
  handler set its own (:func:`security_headers_middleware`); the Mini App page sets
  :func:`miniapp_csp` with a fresh :func:`new_nonce` per response. There is deliberately no
  ``X-Frame-Options``: Telegram Web shows Mini Apps in an iframe, which the page's CSP
  ``frame-ancestors`` allows for Telegram's origins only;
* secrets are compared in constant time (:func:`secret_matches`);
* the client address used for rate limits comes from ``CF-Connecting-IP``/``X-Forwarded-For`` only
  when the TCP peer is a trusted proxy (:func:`client_address`);
* values embedded in an inline ``<script>`` cannot close it (:func:`escape_for_script`).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import secrets
from collections.abc import Sequence
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from pydantic import SecretStr

__all__ = [
    "TELEGRAM_FRAME_ANCESTORS",
    "IPNetwork",
    "bearer_token",
    "client_address",
    "escape_for_script",
    "is_loopback",
    "is_trusted_proxy",
    "miniapp_csp",
    "new_nonce",
    "secret_matches",
    "security_headers_middleware",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

TELEGRAM_FRAME_ANCESTORS: tuple[str, ...] = ("https://web.telegram.org", "https://*.telegram.org")
"""Who may frame the Mini App page: Telegram Web (the apps use native webviews)."""

DEFAULT_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
"""CSP for every response that does not set its own (JSON, errors): nothing may load or frame it."""

HSTS = "max-age=31536000"
_NONCE_RE = re.compile(r"[A-Za-z0-9+/_=-]{16,}")
_SOURCE_RE = re.compile(r"[^\s;,']+|'[a-z0-9-]+'")


def _set_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
    headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
    if response.content_type == "text/html":
        headers.setdefault("Permissions-Policy", "microphone=(self)")
    if request.secure:
        headers.setdefault("Strict-Transport-Security", HSTS)


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Add the security headers to every response, errors included, unless already sent.

    Headers a handler set itself win (``setdefault``): the Mini App sets its nonce CSP, a
    static asset may set its own ``Cache-Control``. HSTS is added only when ``request.secure``
    (TLS on the socket, or a trusted forwarding step that cloned the request with
    ``scheme="https"``). Install it outside :func:`~bridgehost.gateway.errors.error_middleware`
    (first in the list); aiohttp ``HTTPException``\\ s passing through also get the headers.
    A response the handler prepared (streamed) itself gets none: set them before preparing.
    """
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _set_security_headers(request, exc)
        raise
    if not response.prepared:
        _set_security_headers(request, response)
    return response


def new_nonce() -> str:
    """A fresh CSP nonce (128 random bits, base64url); one per response."""
    return secrets.token_urlsafe(16)


def miniapp_csp(nonce: str, *, connect_src: Sequence[str], worklet_src: Sequence[str] = ()) -> str:
    """The Mini App page's Content-Security-Policy: nonce scripts and styles, no inline.

    ``connect_src`` lists the origins the page may fetch/connect to beside ``'self'`` (for
    example ``https://api.openai.com``). ``worklet_src`` lists the exact URLs of the page's
    AudioWorklet module: a worklet's fetch carries no nonce, so ``script-src`` must name it,
    and a full URL (not ``'self'``) allows that one file only. Raises ``ValueError`` on a
    nonce or source that could inject another directive.
    """
    if not _NONCE_RE.fullmatch(nonce):
        raise ValueError("the CSP nonce must be base64 text of at least 16 characters")
    for source in (*connect_src, *worklet_src):
        if not _SOURCE_RE.fullmatch(source):
            raise ValueError(f"not a CSP source expression: {source!r}")
    connect = " ".join(["'self'", *connect_src])
    scripts = " ".join([f"'nonce-{nonce}'", "https://telegram.org", *worklet_src])
    return (
        "default-src 'none'; "
        f"script-src {scripts}; "
        f"style-src 'nonce-{nonce}'; "
        "img-src 'self' data:; "
        "media-src 'self' blob: mediastream:; "
        f"connect-src {connect}; "
        "base-uri 'none'; form-action 'none'; "
        f"frame-ancestors {' '.join(TELEGRAM_FRAME_ANCESTORS)}"
    )


def secret_matches(given: str | None, expected: SecretStr | str | None) -> bool:
    """Whether ``given`` equals ``expected``, compared in constant time.

    False when either is missing or empty, so an unset secret never matches an empty one, and
    when ``given`` is not valid Unicode: aiohttp hands header bytes that are not UTF-8 over as
    surrogate escapes, and such a value is simply a wrong secret.
    """
    if isinstance(expected, SecretStr):
        expected = expected.get_secret_value()
    if not given or not expected:
        return False
    try:
        given_bytes = given.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given_bytes, expected.encode("utf-8"))


def bearer_token(request: web.BaseRequest) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (scheme case-insensitive), else None."""
    value = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _parse_ip(text: str | None) -> IPAddress | None:
    """An IP address from ``text`` (IPv4-mapped IPv6 unwrapped), or None if it is not one."""
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_unix_peer(address: str) -> bool:
    # aiohttp reports a unix-socket peer as "" (unnamed) or its socket path ("/…", "@…").
    return address == "" or address.startswith(("/", "@"))


def is_loopback(address: str | None) -> bool:
    """Whether a *peer* address is local: 127.0.0.0/8, ``::1``, ``::ffff:127.x`` or a unix socket.

    Meant for the socket's peer (``request.remote``), never for header values. None (unknown
    peer) is not local.
    """
    if address is None:
        return False
    if _is_unix_peer(address):
        return True
    parsed = _parse_ip(address)
    return parsed is not None and parsed.is_loopback


def _trusted(address: str, networks: Sequence[IPNetwork], trust_loopback: bool) -> bool:
    if trust_loopback and is_loopback(address):
        return True
    parsed = _parse_ip(address)
    return parsed is not None and any(parsed in network for network in networks)


def is_trusted_proxy(
    address: str, *, trusted_proxies: Sequence[IPNetwork] = (), trust_loopback: bool = False
) -> bool:
    """Whether a *peer* address is a proxy whose forwarded headers :func:`client_address`
    believes (in ``trusted_proxies``, or local when ``trust_loopback``)."""
    return _trusted(address, trusted_proxies, trust_loopback)


def _strip_port(entry: str) -> str:
    """``1.2.3.4:5678`` → ``1.2.3.4``; ``[::1]:80`` → ``::1``; anything else unchanged."""
    entry = entry.strip()
    if entry.startswith("[") and "]" in entry:
        return entry[1 : entry.index("]")]
    if entry.count(":") == 1:
        return entry.split(":", 1)[0]
    return entry


def client_address(
    request: web.BaseRequest,
    *,
    trusted_proxies: Sequence[IPNetwork] = (),
    trust_loopback: bool = False,
) -> str:
    """The address of the client behind this request, for rate limits and logs.

    The TCP peer, unless the peer is a trusted proxy (in ``trusted_proxies``, or local when
    ``trust_loopback``: the managed tunnel's cloudflared connects from loopback). Then
    ``CF-Connecting-IP`` if it holds a valid IP, else the right-most address of
    ``X-Forwarded-For`` that is not itself a trusted proxy. Header values that are not IP
    addresses are ignored and the peer is used. IPv4-mapped IPv6 addresses come back as IPv4.

    Note that any trusted proxy is believed about ``CF-Connecting-IP``: list only proxies that
    set or strip it (cloudflared does).
    """
    peer = request.remote
    if peer is None:
        return "unknown"
    parsed_peer = _parse_ip(peer)
    peer_text = str(parsed_peer) if parsed_peer is not None else peer
    if not _trusted(peer, trusted_proxies, trust_loopback):
        return peer_text
    cf_ip = _parse_ip(request.headers.get("CF-Connecting-IP"))
    if cf_ip is not None:
        return str(cf_ip)
    entries = [
        part
        for value in request.headers.getall(hdrs.X_FORWARDED_FOR, [])
        for part in value.split(",")
    ]
    found: IPAddress | None = None
    for entry in reversed(entries):
        found = _parse_ip(_strip_port(entry))
        if found is None:
            return peer_text
        if not _trusted(str(found), trusted_proxies, trust_loopback):
            return str(found)
    return str(found) if found is not None else peer_text


def escape_for_script(value: Any) -> str:
    """``value`` as JSON that is safe inside an inline ``<script>``.

    ``<``, ``>`` and ``&`` become ``\\u003c``/``\\u003e``/``\\u0026`` (so ``</script>`` and
    ``<!--`` cannot appear) and U+2028/U+2029 are escaped; the result is still valid JSON and
    a valid JavaScript expression with the same value.
    """
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
