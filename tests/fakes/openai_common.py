"""Shared pieces of the fake OpenAI API: ids, OpenAI-shaped error bodies, faults and records."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

#: Route names understood by :meth:`FakeOpenAI.fail` and ``POST /sim/fail`` (``"*"`` = any).
ROUTES = ("client_secrets", "calls", "hangup", "sideband", "realtime_ws", "responses")


def new_id(prefix: str, length: int = 22) -> str:
    """An OpenAI-looking id such as ``rtc_…``, ``ek_…``, ``resp_…``, ``event_…``."""
    return f"{prefix}_{secrets.token_hex(length // 2 + 1)[:length]}"


def error_body(
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """The JSON body every OpenAI HTTP error carries."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An aiohttp JSON response with OpenAI's error shape."""
    return web.json_response(
        error_body(message, type_=type_, code=code, param=param), status=status, headers=headers
    )


def invalid_key_response(key: str | None) -> web.Response:
    """401 for a missing or wrong API key, worded like the real API (key masked)."""
    if not key:
        message = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    else:
        masked = f"{key[:3]}*{key[-4:]}" if len(key) > 8 else "***"
        message = (
            f"Incorrect API key provided: {masked}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
    return error_response(401, message, code="invalid_api_key")


@dataclass
class Fault:
    """One pending injected failure for a route: an HTTP status and/or a delay."""

    route: str
    status: int | None = None
    times: int = 1
    delay: float = 0.0
    retry_after: float = 1.0
    code: str | None = None
    message: str | None = None

    def response(self) -> web.Response:
        """The OpenAI-shaped error response this fault produces (``status`` must be set)."""
        status = self.status or 500
        if status == 401:
            return error_response(
                401,
                self.message or "Incorrect API key provided: sk-***.",
                code=self.code or "invalid_api_key",
            )
        if status == 429:
            code = self.code or "rate_limit_exceeded"
            if code == "insufficient_quota":
                return error_response(
                    429,
                    self.message
                    or (
                        "You exceeded your current quota, please check your plan and billing "
                        "details."
                    ),
                    type_="insufficient_quota",
                    code=code,
                )
            reset = f"{self.retry_after:g}s"
            return error_response(
                429,
                self.message
                or (
                    "Rate limit reached for requests in organization org-fake on requests per "
                    f"min (RPM): Limit 3, Used 3, Requested 1. Please try again in {reset}."
                ),
                type_="requests",
                code=code,
                headers={
                    "retry-after": f"{self.retry_after:g}",
                    "x-ratelimit-limit-requests": "3",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": reset,
                },
            )
        if status == 503:
            return error_response(
                503,
                self.message or ("The engine is currently overloaded, please try again later."),
                type_="server_error",
                code=self.code,
            )
        if status >= 500:
            return error_response(
                status,
                self.message
                or ("The server had an error while processing your request. Sorry about that!"),
                type_="server_error",
                code=self.code,
            )
        return error_response(status, self.message or "Injected failure.", code=self.code)


class FaultBook:
    """Pending faults per route; each request to a route consumes at most one."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue a fault (faults for the same route apply in the order added)."""
        if fault.route != "*" and fault.route not in ROUTES:
            raise ValueError(
                f"unknown route {fault.route!r}; choose one of: *, " + ", ".join(ROUTES)
            )
        self._faults.append(fault)

    def clear(self) -> None:
        """Forget every pending fault."""
        self._faults.clear()

    def take(self, route: str) -> Fault | None:
        """Consume one use of the first fault matching ``route``."""
        for fault in self._faults:
            if fault.route in (route, "*"):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def apply(self, route: str) -> web.Response | None:
        """Sleep for a matching fault's delay, then return its error response, if any."""
        fault = self.take(route)
        if fault is None:
            return None
        if fault.delay:
            await asyncio.sleep(fault.delay)
        return fault.response() if fault.status else None


@dataclass
class RecordedRequest:
    """One request the fake received, with secrets removed."""

    method: str
    path: str
    route: str | None
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    form: dict[str, Any] | None = None
    text: str | None = None
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (for ``GET /sim/state``)."""
        return {
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "query": self.query,
            "headers": self.headers,
            "json": self.json,
            "form": self.form,
            "text": self.text,
            "at": self.at,
        }


_SECRET_HEADERS = {"authorization", "sec-websocket-protocol", "cookie", "x-api-key"}


def safe_headers(request: web.BaseRequest) -> dict[str, str]:
    """The request's headers without anything that carries a key."""
    return {k: v for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS}


def bearer_key(request: web.BaseRequest) -> str | None:
    """The key from ``Authorization: Bearer …``, or from a browser's WebSocket subprotocol
    ``openai-insecure-api-key.<key>``."""
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        proto = proto.strip()
        if proto.startswith("openai-insecure-api-key."):
            return proto.removeprefix("openai-insecure-api-key.")
    return None


@dataclass
class EphemeralSecret:
    """A minted client secret (``ek_…``) and the session it was minted for."""

    value: str
    expires_at: int
    session: dict[str, Any]

    @property
    def expired(self) -> bool:
        """Whether the secret can no longer start sessions."""
        return time.time() >= self.expires_at


#: Per-request storage set by the fake's middleware: the request's record, and the ephemeral
#: secret it authenticated with (``None`` for the server key).
RECORD: web.RequestKey[RecordedRequest] = web.RequestKey("openai_record", RecordedRequest)
SECRET: web.RequestKey[EphemeralSecret | None] = web.RequestKey("openai_secret")
