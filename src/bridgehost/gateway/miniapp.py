"""``GET /miniapp?launch=<token>``: the Mini App page, served only for a valid launch token.

The page is one HTML template with its stylesheet and scripts inlined under a per-response CSP
nonce (no ``'unsafe-inline'``), and its settings embedded as JSON safe for a ``<script>``
element. No build step: the files under ``static/`` are served as they are. The scripts are
plain files concatenated in :data:`SCRIPTS` order into the page's one inline ``<script>``.

The audio worklet is the one script served as a file (``GET`` :data:`WORKLET_PATH`):
``audioWorklet.addModule`` takes a URL, and a worklet's fetch carries no nonce, so the page's
CSP names that exact URL in ``script-src`` (:func:`worklet_source`), not ``'self'``.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Any

from aiohttp import web
from yarl import URL

from bridgehost.gateway._keys import GATEWAY
from bridgehost.gateway.ratelimit import RateLimited
from bridgehost.gateway.security import escape_for_script, miniapp_csp, new_nonce
from bridgehost.gateway.surface import TokenStatus
from bridgehost.protocol.end_reasons import page_texts

SCRIPTS: tuple[str, ...] = (
    "miniapp-text.js",  # end reasons (texts from the settings) and microphone help, in words
    "miniapp-telegram.js",  # Telegram.WebApp glue; init data from the URL hash without it
    "miniapp-view.js",  # the page's elements and DOM helpers
    "miniapp-audio.js",  # the audio worklet's nodes: capture, playback, levels
    "miniapp-socket.js",  # JSON requests, and the call socket with reconnects and acks
    "miniapp.js",  # the call itself (runs last)
)
"""The page's scripts, in the order they are inlined (later files use earlier ones)."""

WORKLET_PATH = "/miniapp/audio-worklet.js"
"""Where the page loads its AudioWorklet module from (``miniapp-audio.js`` says the same)."""
WORKLET_FILE = "miniapp-worklet.js"

_PLACEHOLDER = re.compile(r"\{\{(nonce|style|settings|script)\}\}")
_CLOSING_TAG = re.compile(r"</(script|style)|<!--", re.IGNORECASE)

_ERROR_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>Call link</title></head>
<body><h1>{title}</h1><p>{text}</p></body></html>"""


@cache
def _asset(name: str) -> str:
    """A static file's text; refuses one that could end its inline element early."""
    text = (files("bridgehost.gateway") / "static" / name).read_text(encoding="utf-8")
    if name != "miniapp.html" and _CLOSING_TAG.search(text):
        raise ValueError(
            f"static/{name} contains '</script', '</style' or '<!--', which would "
            "break out of its inline element"
        )
    return text


def _error_page(status: int, title: str, text: str) -> web.Response:
    response = web.Response(
        status=status, content_type="text/html", text=_ERROR_PAGE.format(title=title, text=text)
    )
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    return response


def render(nonce: str, settings: dict[str, Any]) -> str:
    """The page with assets inlined under ``nonce`` and ``settings`` embedded.

    One pass over the template: text that was substituted is never substituted again.
    """
    values = {
        "nonce": nonce,
        "style": _asset("miniapp.css"),
        "settings": escape_for_script(settings),
        "script": "\n".join(_asset(name) for name in SCRIPTS),
    }
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], _asset("miniapp.html"))


def socket_origin(public_url: str | None) -> list[str]:
    """The call socket's origin for ``connect-src`` (``wss://host`` for an https origin).

    ``'self'`` already covers it in current browsers; older WebKit (Telegram on iOS < 15.4)
    did not match ``ws:``/``wss:`` against ``'self'``, so the origin is listed explicitly.
    """
    if not public_url:
        return []
    url = URL(public_url)
    if url.scheme not in ("http", "https") or not url.host:
        return []
    scheme = "wss" if url.scheme == "https" else "ws"
    port = None if url.is_default_port() else url.port
    return [str(URL.build(scheme=scheme, host=url.host, port=port))]


def worklet_source(request: web.Request) -> list[str]:
    """The worklet module's exact URL on the origin the browser asked for, for ``script-src``.

    The scheme is ``http`` unless the request is known to be secure: CSP lets an ``http``
    source match the same URL over ``https`` (not the reverse), so a TLS-terminating tunnel
    still matches. A ``Host`` that is not a plain host name gives no source (the worklet then
    does not load, and the page says the audio could not start).
    """
    host = request.host
    if not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?", host):
        return []
    scheme = "https" if request.secure else "http"
    return [f"{scheme}://{host}{WORKLET_PATH}"]


async def worklet(_request: web.Request) -> web.Response:
    """``GET /miniapp/audio-worklet.js``: the page's AudioWorklet module (capture, playback)."""
    response = web.Response(
        text=_asset(WORKLET_FILE), content_type="text/javascript", charset="utf-8"
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


async def page(request: web.Request) -> web.Response:
    """Serve the Mini App for a valid token; a short page pointing back to Telegram otherwise."""
    gw = request.app[GATEWAY]
    token = request.query.get("launch", "")[:200]
    status = gw.surface.check_token(token)
    if status is TokenStatus.EXPIRED:
        return _error_page(
            410, "This call link has expired", "Go back to Telegram and send /call for a fresh one."
        )
    if status is not TokenStatus.VALID:
        return _error_page(
            404,
            "This call link is no longer valid",
            "Go back to Telegram and send /call for a new one.",
        )
    limited = gw.miniapp_limits.reserve({"address": gw.client_address(request), "token": token})
    if isinstance(limited, RateLimited):
        response = _error_page(429, "Too many attempts", "Wait a minute, then try again.")
        response.headers["Retry-After"] = str(int(limited.retry_after) + 1)
        return response
    nonce = new_nonce()
    rt = gw.config.realtime
    settings = {
        "launch_token": token,
        "transport": gw.transport,
        "bridge_id": rt.bridge_id,
        "idle_warning_ms": rt.idle_warning_ms,
        "idle_timeout_ms": rt.idle_timeout_ms,
        "startup_timeout_ms": rt.startup_timeout_ms,
        "reconnect_grace_ms": rt.reconnect_grace_ms,
        "backend": rt.backend,
        "ice_restart": not gw.backend_record.new_session_per_offer,
        "data_channel_mute": gw.backend_record.data_channel_mute,
        "push_to_talk": gw.backend_record.push_to_talk,
        "end_reasons": page_texts(),
    }
    response = web.Response(text=render(nonce, settings), content_type="text/html")
    response.headers["Content-Security-Policy"] = miniapp_csp(
        nonce,
        connect_src=socket_origin(gw.surface.state.public_url),
        worklet_src=worklet_source(request),
    )
    response.headers["Permissions-Policy"] = "microphone=(self)"
    return response
