"""The gateway's aiohttp application around :class:`~bridgehost.gateway.core.Gateway`.

Routes reach the gateway as ``request.app[GATEWAY]``. :func:`make_app` builds the
application with the security, error and connection middlewares and every route; the server
that runs it, with per-connection deadlines and caps, is :mod:`bridgehost.gateway.http_protocol`.
"""

from __future__ import annotations

from aiohttp import web

from bridgehost.gateway import routes_admin, routes_call
from bridgehost.gateway._keys import GATEWAY
from bridgehost.gateway.call_socket import handle_call_socket
from bridgehost.gateway.connections import (
    client_gone_middleware,
    forwarded_client_cap_middleware,
)
from bridgehost.gateway.core import PROXY_HEADERS, Gateway
from bridgehost.gateway.errors import error_middleware
from bridgehost.gateway.security import (
    security_headers_middleware,
)


def make_app(gateway: Gateway) -> web.Application:
    """The aiohttp application serving every gateway route."""
    app = web.Application(
        middlewares=[
            security_headers_middleware,
            error_middleware,
            client_gone_middleware,
            forwarded_client_cap_middleware,
        ],
        client_max_size=gateway.config.realtime.max_body_bytes,
    )
    app[GATEWAY] = gateway
    routes_call.add_routes(app)
    routes_admin.add_routes(app)
    app.router.add_get("/ws/call", handle_call_socket)
    app.router.add_get("/ws/bridge", gateway.hub.handle)
    return app


__all__ = ["PROXY_HEADERS", "Gateway", "make_app"]
