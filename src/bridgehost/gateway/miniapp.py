"""``GET /miniapp?launch=<token>``: the Mini App page, served only for a valid launch token.

The page is one HTML template with its stylesheet and script inlined under a per-response CSP
nonce (no ``'unsafe-inline'``), and its settings embedded as JSON safe for a ``<script>``
element. No build step: the files under ``static/`` are served as they are.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from aiohttp import web

from bridgehost.gateway._keys import GATEWAY
from bridgehost.gateway.ratelimit import RateLimited
from bridgehost.gateway.security import escape_for_script, miniapp_csp, new_nonce
from bridgehost.gateway.surface import TokenStatus

_ERROR_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>Call link</title></head>
<body><h1>{title}</h1><p>{text}</p></body></html>"""


@cache
def _asset(name: str) -> str:
    return (files("bridgehost.gateway") / "static" / name).read_text(encoding="utf-8")


def _error_page(status: int, title: str, text: str) -> web.Response:
    response = web.Response(status=status, content_type="text/html",
                            text=_ERROR_PAGE.format(title=title, text=text))
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    return response


def render(nonce: str, settings: dict[str, Any]) -> str:
    """The page with assets inlined under ``nonce`` and ``settings`` embedded."""
    return (
        _asset("miniapp.html")
        .replace("{{nonce}}", nonce)
        .replace("{{style}}", _asset("miniapp.css"))
        .replace("{{script}}", _asset("miniapp.js"))
        .replace("{{settings}}", escape_for_script(settings))
    )


async def page(request: web.Request) -> web.Response:
    """Serve the Mini App for a valid token; a short page pointing back to Telegram otherwise."""
    gw = request.app[GATEWAY]
    token = request.query.get("launch", "")[:200]
    status = gw.surface.check_token(token)
    if status is TokenStatus.EXPIRED:
        return _error_page(410, "This call link has expired",
                           "Go back to Telegram and send /call for a fresh one.")
    if status is not TokenStatus.VALID:
        return _error_page(404, "This call link is no longer valid",
                           "Go back to Telegram and send /call for a new one.")
    limited = gw.miniapp_limits.reserve({"address": gw.client_address(request), "token": token})
    if isinstance(limited, RateLimited):
        response = _error_page(429, "Too many attempts", "Wait a minute, then try again.")
        response.headers["Retry-After"] = str(int(limited.retry_after) + 1)
        return response
    nonce = new_nonce()
    rt = gw.config.realtime
    settings = {"launch_token": token, "transport": gw.transport, "bridge_id": rt.bridge_id,
                "idle_warning_ms": rt.idle_warning_ms, "idle_timeout_ms": rt.idle_timeout_ms,
                "startup_timeout_ms": rt.startup_timeout_ms}
    response = web.Response(text=render(nonce, settings), content_type="text/html")
    response.headers["Content-Security-Policy"] = miniapp_csp(nonce, connect_src=[])
    response.headers["Permissions-Policy"] = "microphone=(self)"
    return response
