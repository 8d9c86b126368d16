"""Connection admission for the gateway: per-address caps and a quiet record of refusals.

The gateway faces the internet, so no single address may hold enough connections to starve the
rest (file descriptors are finite: ``LimitNOFILE=`` in ``bridge-gateway.service``):

* a direct peer may hold ``[gateway] max_connections_per_ip`` connections at once; one more is
  answered with a 429 and closed at once (:class:`ConnectionGuard`, used by
  :mod:`bridgehost.gateway.http_protocol` for every accepted socket);
* a trusted proxy (the managed tunnel, ``realtime.trusted_proxies``) carries many clients, so it
  may hold ``max_connections_per_proxy`` connections (never more than half of the open-file
  limit), and the requests it forwards count per *forwarded* client address against
  ``max_connections_per_ip`` (:func:`forwarded_client_cap_middleware`, a 429 in the usual
  JSON error shape);
* refusals are never logged one by one: :class:`RefusalSummary` writes at most one WARNING per
  minute with the count and the busiest addresses.

:func:`client_gone_middleware` turns a client that hung up mid-request (a reset WebSocket
upgrade, say) into one DEBUG line instead of two ERROR tracebacks.
"""

from __future__ import annotations

import asyncio
import json
import resource
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler

from bridgehost.config import GatewayConfig
from bridgehost.gateway.errors import error_response
from bridgehost.logging import get_logger

if TYPE_CHECKING:
    from bridgehost.gateway.core import Gateway

__all__ = [
    "TOO_MANY_CONNECTIONS",
    "ConnectionCounter",
    "ConnectionGuard",
    "ConnectionPolicy",
    "RefusalSummary",
    "client_gone_middleware",
    "forwarded_client_cap_middleware",
    "raw_error_response",
]

log = get_logger("bridgehost.gateway.connections")

TOO_MANY_CONNECTIONS = (
    "too_many_connections",
    "Too many connections from your address are open at once; close some or wait for them to "
    "finish, then try again.",
)
"""Code and message of the 429 for a connection or request over its address's cap."""

SUMMARY_INTERVAL_S = 60.0
"""At most one refusal WARNING per this many seconds."""

CLIENT_CLOSED_REQUEST = 499
"""Status recorded (never sent: nobody is listening) for a request whose client hung up."""


def raw_error_response(
    status: int, reason: str, code: str, message: str, *, retry_after: int | None = None
) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response in the gateway's JSON error shape, for
    writing straight to a socket that has no request object (refused or timed out)."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    retry = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"{retry}Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def open_file_limit() -> int | None:
    """The process's soft ``RLIMIT_NOFILE``, or None when unlimited or unknown."""
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY or soft <= 0 else soft


@dataclass(frozen=True)
class ConnectionPolicy:
    """The limits in force: ``[gateway]`` settings with the proxy cap bounded by the fd limit."""

    header_timeout_s: float
    body_timeout_s: float
    max_per_ip: int
    max_per_proxy: int

    @classmethod
    def from_config(cls, config: GatewayConfig, *, fd_limit: int | None = None) -> ConnectionPolicy:
        """The policy for ``config``; ``fd_limit`` defaults to :func:`open_file_limit`."""
        fd_limit = fd_limit if fd_limit is not None else open_file_limit()
        per_proxy = config.max_connections_per_proxy
        if fd_limit is not None:
            per_proxy = min(per_proxy, max(config.max_connections_per_ip, fd_limit // 2))
        return cls(
            header_timeout_s=config.header_timeout_s,
            body_timeout_s=config.body_timeout_s,
            max_per_ip=config.max_connections_per_ip,
            max_per_proxy=per_proxy,
        )


class ConnectionCounter:
    """How many connections (or requests) each address holds right now."""

    def __init__(self) -> None:
        self._held: dict[str, int] = {}

    def acquire(self, address: str, cap: int) -> bool:
        """Count one more for ``address`` unless it already holds ``cap``; whether it was."""
        held = self._held.get(address, 0)
        if held >= cap:
            return False
        self._held[address] = held + 1
        return True

    def release(self, address: str) -> None:
        """Give back one that :meth:`acquire` counted."""
        held = self._held.get(address, 0) - 1
        if held > 0:
            self._held[address] = held
        else:
            self._held.pop(address, None)

    def held(self, address: str) -> int:
        """How many ``address`` holds."""
        return self._held.get(address, 0)

    @property
    def total(self) -> int:
        """How many are held in all."""
        return sum(self._held.values())


class RefusalSummary:
    """Refused connections, logged as at most one WARNING per ``interval_s``.

    The first refusal is logged at once; the ones that follow within the interval are counted
    and logged together when it ends (with the three busiest addresses), so a flood costs a
    few log lines a minute, not one per connection.
    """

    def __init__(self, interval_s: float = SUMMARY_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._addresses: Counter[str] = Counter()
        self._timer: asyncio.TimerHandle | None = None

    def record(self, address: str) -> None:
        """Count one refusal of ``address`` (call from the event loop)."""
        self._addresses[address] += 1
        if self._timer is None:
            self._flush()
            self._timer = asyncio.get_running_loop().call_later(self.interval_s, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._addresses:
            self._flush()
            self._timer = asyncio.get_running_loop().call_later(self.interval_s, self._tick)

    def _flush(self) -> None:
        refused = sum(self._addresses.values())
        busiest = [f"{address} ({count})" for address, count in self._addresses.most_common(3)]
        self._addresses.clear()
        log.warning(
            "connections refused: too many from one address",
            refused=refused,
            addresses=busiest,
            interval_s=self.interval_s,
            fix="raise [gateway] max_connections_per_ip if these are real users",
        )

    def close(self) -> None:
        """Log what is still counted and stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._addresses:
            self._flush()


class ConnectionGuard:
    """Admission for one gateway server: the policy, the counters and the refusal summary.

    ``is_trusted_proxy(peer)`` says whether a TCP peer is a proxy whose forwarded addresses are
    believed; ``client_address(request)`` derives the client behind a request
    (:meth:`bridgehost.gateway.core.Gateway.client_address`).
    """

    def __init__(
        self,
        policy: ConnectionPolicy,
        *,
        is_trusted_proxy: Callable[[str], bool],
        client_address: Callable[[web.BaseRequest], str],
        summary_interval_s: float = SUMMARY_INTERVAL_S,
    ) -> None:
        self.policy = policy
        self.is_trusted_proxy = is_trusted_proxy
        self.client_address = client_address
        self.connections = ConnectionCounter()
        self.forwarded_requests = ConnectionCounter()
        self.refusals = RefusalSummary(summary_interval_s)

    @classmethod
    def for_gateway(cls, gateway: Gateway, **kwargs: Any) -> ConnectionGuard:
        """The guard for ``gateway``'s ``[gateway]`` settings and trusted proxies."""
        return cls(
            ConnectionPolicy.from_config(gateway.config.gateway),
            is_trusted_proxy=gateway.is_trusted_proxy,
            client_address=gateway.client_address,
            **kwargs,
        )

    def admit(self, peer: str, *, proxy: bool) -> bool:
        """Count a new connection from ``peer``; False (and recorded) when over its cap."""
        cap = self.policy.max_per_proxy if proxy else self.policy.max_per_ip
        if self.connections.acquire(peer, cap):
            return True
        self.refusals.record(peer)
        return False

    def leave(self, peer: str) -> None:
        """A connection :meth:`admit` counted has closed."""
        self.connections.release(peer)

    def close(self) -> None:
        """Stop the refusal summary (logging what it still holds)."""
        self.refusals.close()


def _guard_behind_proxy(request: web.BaseRequest) -> ConnectionGuard | None:
    """The guard of the connection carrying ``request`` when its peer is a trusted proxy."""
    protocol: Any = request.protocol
    guard = getattr(protocol, "guard", None)
    if isinstance(guard, ConnectionGuard) and getattr(protocol, "behind_proxy", False):
        return guard
    return None


@web.middleware
async def forwarded_client_cap_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Behind a trusted proxy, cap concurrent requests per forwarded client address.

    A request over ``max_connections_per_ip`` gets a 429 ``too_many_connections`` (JSON, with
    ``Retry-After``); requests from direct peers pass (their connections are capped already).
    """
    guard = _guard_behind_proxy(request)
    if guard is None:
        return await handler(request)
    address = guard.client_address(request)
    if not guard.forwarded_requests.acquire(address, guard.policy.max_per_ip):
        guard.refusals.record(address)
        return error_response(429, *TOO_MANY_CONNECTIONS, retry_after=1)
    try:
        return await handler(request)
    finally:
        guard.forwarded_requests.release(address)


@web.middleware
async def client_gone_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A client that hung up mid-request is one DEBUG line, not an error with a traceback.

    Only when the client's own connection is closed: a ``ConnectionError`` from anything else
    (a backend the handler talks to) is a real failure and passes on. Install it inside
    :func:`~bridgehost.gateway.errors.error_middleware`.
    """
    try:
        return await handler(request)
    except ConnectionError as exc:
        transport = request.transport
        if transport is not None and not transport.is_closing():
            raise
        log.debug(
            "client went away mid-request",
            method=request.method,
            path=request.path,
            error=type(exc).__name__,
        )
        return web.Response(status=CLIENT_CLOSED_REQUEST, reason="Client Closed Request")
