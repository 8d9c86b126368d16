"""The gateway's HTTP server protocol: every connection is admitted, and every request arrives
in time.

aiohttp's :class:`~aiohttp.web_protocol.RequestHandler` closes *idle* keep-alive connections
(``keepalive_timeout``) but has no deadline for a request that is still arriving: a client that
trickles one header byte every few seconds, or stops halfway through its body, holds its socket
forever. :class:`GuardedRequestHandler` adds, per connection, one timer:

* **headers**: from the moment a connection opens, and from the first byte of each later
  request, the headers must be complete within ``[gateway] header_timeout_s``; otherwise the
  client gets a 408 ``request_timeout`` (JSON) and the connection is closed;
* **body**: while a body is incomplete, a pause longer than ``body_timeout_s`` makes the
  handler's read fail with a 408 ``request_timeout`` (answered as usual), and the connection is
  closed after it (or ``body_timeout_s`` later at the latest). A pause the gateway causes
  itself (flow control while a handler is busy) does not count.

Upgraded connections (WebSockets) have no such deadlines: their handlers use heartbeats.
A request that is not valid HTTP gets aiohttp's status with a JSON ``bad_request`` body and
one DEBUG line (internet noise such as TLS on the plain port is no error of the gateway's).
Before anything else, the connection's peer passes :meth:`ConnectionGuard.admit`; one over its
cap is answered with a 429 and closed without reaching aiohttp at all.

:class:`GuardedAppRunner` is :class:`aiohttp.web.AppRunner` serving with this protocol.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from bridgehost.gateway.connections import (
    TOO_MANY_CONNECTIONS,
    ConnectionGuard,
    raw_error_response,
)
from bridgehost.gateway.errors import ApiError, error_response
from bridgehost.logging import get_logger

__all__ = ["GuardedAppRunner", "GuardedRequestHandler", "GuardedServer"]

log = get_logger("bridgehost.gateway.http")

_REFUSED = raw_error_response(429, "Too Many Requests", *TOO_MANY_CONNECTIONS, retry_after=1)


class _Phase(enum.Enum):
    """What the connection's timer is waiting for."""

    HEADERS = "headers"
    BODY = "body"
    CLOSE = "close"


def _peer_host(transport: asyncio.BaseTransport) -> str:
    """The peer's address as text: the IP of a TCP peer, the path (or "") of a unix socket."""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "")


def _short_reason(message: str) -> str:
    """The gist of an aiohttp parser message, without the raw bytes it may quote."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    gist = first.split(":", 1)[0].strip().rstrip(".")
    return (gist[:80] or "it could not be parsed").lower()


class GuardedRequestHandler(RequestHandler):
    """aiohttp's request handler with admission and header/body deadlines (see the module)."""

    __slots__ = (
        "_admitted",
        "_behind_proxy",
        "_body",
        "_body_seen_at",
        "_guard",
        "_peer",
        "_phase",
        "_timer",
    )

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._peer = ""
        self._admitted = False
        self._behind_proxy = False
        self._timer: asyncio.TimerHandle | None = None
        self._phase: _Phase | None = None
        self._body: StreamReader | None = None
        self._body_seen_at = 0.0

    @property
    def guard(self) -> ConnectionGuard:
        """The admission shared by every connection of this server."""
        return self._guard

    @property
    def behind_proxy(self) -> bool:
        """Whether the peer is a trusted proxy (its requests count per forwarded address)."""
        return self._behind_proxy

    # -- life cycle ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the peer (or answer 429 and close), then serve with a header deadline."""
        self._peer = _peer_host(transport)
        self._behind_proxy = self._guard.is_trusted_proxy(self._peer)
        if not self._guard.admit(self._peer, proxy=self._behind_proxy):
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(_REFUSED)
            transport.close()
            return
        self._admitted = True
        super().connection_made(transport)
        self._arm(_Phase.HEADERS, self._guard.policy.header_timeout_s)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Give the peer's slot back (a refused connection never had one)."""
        if not self._admitted:
            return
        self._admitted = False
        self._disarm()
        self._guard.leave(self._peer)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse as aiohttp does, then move the deadline to what the connection awaits now."""
        parsed_before = self._request_count
        super().data_received(data)
        if self._upgraded or self._payload_parser is not None or self._force_close:
            self._disarm()
        elif self._request_count != parsed_before:
            self._disarm()
            body = self._messages[-1][1] if self._messages else None
            if isinstance(body, StreamReader) and not body.is_eof():
                self._arm(_Phase.BODY, self._guard.policy.body_timeout_s)
                self._body = body
                self._body_seen_at = self._loop.time()
        elif self._phase is _Phase.BODY and self._body is not None:
            if self._body.is_eof():
                self._disarm()
            else:
                self._body_seen_at = self._loop.time()
        elif self._phase is None and data:
            self._arm(_Phase.HEADERS, self._guard.policy.header_timeout_s)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer a request aiohttp could not parse in the JSON error shape, logging one DEBUG
        line; a client that is gone already ends the connection quietly. Anything else (a
        crash that got past the error middleware) is aiohttp's usual 500 and traceback."""
        if isinstance(exc, ConnectionError) and (
            self.transport is None or self.transport.is_closing()
        ):
            log.debug("client went away mid-request", peer=self._peer, error=type(exc).__name__)
            raise ConnectionResetError("the client closed the connection")
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        reason = _short_reason(message or (str(exc) if exc else ""))
        log.debug("malformed request", peer=self._peer, status=status, reason=reason)
        response = error_response(
            status,
            "bad_request",
            f"The request is not valid HTTP ({reason}); send a well-formed HTTP/1.1 request.",
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )
        response.force_close()
        return response

    # -- the deadline ----------------------------------------------------------------------

    def _arm(self, phase: _Phase, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._phase = phase
        self._timer = self._loop.call_at(self._loop.time() + delay, self._deadline_passed)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._phase = None
        self._body = None

    def _deadline_passed(self) -> None:
        self._timer = None
        if self.transport is None or self._force_close:
            return
        if self._phase is _Phase.HEADERS:
            self._headers_late()
        elif self._phase is _Phase.BODY:
            self._check_body()
        elif self._phase is _Phase.CLOSE:
            self.force_close()

    def _headers_late(self) -> None:
        """Answer 408 when no response is under way, then close."""
        self._phase = None
        if self.transport is not None and not self._request_in_progress and not self._messages:
            seconds = self._guard.policy.header_timeout_s
            self.transport.write(
                raw_error_response(
                    408,
                    "Request Timeout",
                    "request_timeout",
                    f"The request headers did not arrive within {seconds:g} s; send the whole "
                    "request without pausing.",
                )
            )
        self.force_close()

    def _check_body(self) -> None:
        """Fail the body read if it paused too long; otherwise wait for the new deadline."""
        timeout = self._guard.policy.body_timeout_s
        now = self._loop.time()
        if self._reading_paused or self._buffer_paused:
            self._body_seen_at = now  # the gateway holds the body back, not the client
        due = self._body_seen_at + timeout
        body = self._body
        if body is None or body.is_eof():
            self._disarm()
        elif now < due:
            self._timer = self._loop.call_at(due, self._deadline_passed)
        else:
            self._body = None
            self._lingering_time = 0.0  # no draining the rest: the connection closes after
            self.close()
            body.set_exception(
                ApiError(
                    408,
                    "request_timeout",
                    f"The request body stalled for {timeout:g} s; send it again without pausing.",
                )
            )
            self._arm(_Phase.CLOSE, timeout)


class GuardedServer(web.Server):
    """aiohttp's low-level server, building :class:`GuardedRequestHandler` connections."""

    def __init__(self, server: web.Server, guard: ConnectionGuard) -> None:
        # A copy of ``server`` (the application's, with its request factory and the handler
        # settings aiohttp keeps in ``_kwargs``) that builds guarded connections.
        super().__init__(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **server._kwargs,
        )
        self.guard = guard

    def __call__(self) -> RequestHandler:
        """One protocol instance per accepted connection."""
        return GuardedRequestHandler(self, loop=self._loop, guard=self.guard, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """:class:`aiohttp.web.AppRunner` whose sites serve with :class:`GuardedRequestHandler`."""

    __slots__ = ("_guard",)

    def __init__(self, app: web.Application, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._guard = guard

    @property
    def guard(self) -> ConnectionGuard:
        """The admission this runner's connections pass."""
        return self._guard

    async def _make_server(self) -> web.Server:
        return GuardedServer(await super()._make_server(), self._guard)
