"""JSON errors for the gateway: one shape for every failure, never a traceback on the wire.

Every error the gateway sends is ``{"error": {"code": "...", "message": "..."}}``: ``code`` is a
stable snake_case machine code that pages and scripts branch on, ``message`` one sentence a person
can act on. Handlers raise :class:`ApiError`; domain code raises a
:class:`~bridgehost.gateway.domain_errors.DomainError`, whose status :data:`DOMAIN_STATUS` gives;
:func:`error_middleware` turns both (and aiohttp's own ``HTTPException``\\ s such as 404/405/413,
and any unexpected exception) into that shape.
:func:`read_json_body` reads a request body with a hard size cap, so bad input is a 400 or a 413
and never a 500.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from bridgehost.gateway.domain_errors import (
    BridgeNotConnected,
    BudgetExhausted,
    CallConflict,
    DomainError,
    PrepareTimeout,
    PublicUnreachable,
    TunnelFailed,
)
from bridgehost.logging import get_logger

__all__ = [
    "DOMAIN_STATUS",
    "ApiError",
    "domain_status",
    "error_middleware",
    "error_response",
    "has_lone_surrogate",
    "invalid_unicode",
    "read_json_body",
]

log = get_logger("bridgehost.gateway.errors")

_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request is not valid for this route."),
    401: ("unauthorized", "This route needs credentials."),
    403: ("forbidden", "You are not allowed to use this route."),
    404: ("not_found", "No such route."),
    408: ("request_timeout", "The request took too long to arrive; send it again."),
    409: ("conflict", "The request conflicts with the current state; reload and try again."),
    410: ("gone", "This resource is gone."),
    411: ("length_required", "The request needs a Content-Length header."),
    413: ("body_too_large", "The request body is too large."),
    414: ("uri_too_long", "The request URL is too long."),
    415: ("unsupported_media_type", "The request body has a media type this route does not take."),
    429: ("rate_limited", "Too many requests; wait a moment and try again."),
    431: ("headers_too_large", "The request headers are too large."),
    503: ("service_unavailable", "The gateway is not ready; try again in a moment."),
    504: ("gateway_timeout", "The gateway timed out; try again in a moment."),
}
DOMAIN_STATUS: dict[type[DomainError], int] = {
    BudgetExhausted: 409,
    CallConflict: 409,
    BridgeNotConnected: 503,
    PrepareTimeout: 504,
    TunnelFailed: 503,
    PublicUnreachable: 503,
}
"""The HTTP status each domain refusal is answered with."""
_INTERNAL = ("internal_error", "The gateway hit an unexpected error; it has been logged.")
_MAX_SIZE_RE = re.compile(r"size (\d+)")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
_SKIPPED_HEADERS = frozenset({"content-type", "content-length", "content-encoding"})


class ApiError(Exception):
    """An error meant for the client: raise it from a handler, :func:`error_middleware` answers.

    ``status`` is the HTTP status, ``code`` a stable snake_case machine code, ``message`` one
    sentence a person can act on (never internals), ``retry_after`` seconds for ``Retry-After``
    and ``headers`` any extra response headers.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.headers: dict[str, str] = dict(headers or {})

    def to_response(self) -> web.Response:
        """The JSON response for this error."""
        return error_response(
            self.status, self.code, self.message, retry_after=self.retry_after, headers=self.headers
        )

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.code!r}, {self.message!r})"


def domain_status(error: DomainError) -> int:
    """The HTTP status of ``error`` (its class's, or the nearest base class's, in the table)."""
    for kind in type(error).__mro__:
        if kind in DOMAIN_STATUS:
            return DOMAIN_STATUS[kind]
    return 500


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    retry_after: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """``{"error": {"code": code, "message": message}}`` with ``status``.

    ``retry_after`` (seconds) becomes ``Retry-After`` in whole seconds, rounded up.
    """
    response = web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=dict(headers or {})
    )
    if retry_after is not None:
        response.headers[hdrs.RETRY_AFTER] = str(max(0, math.ceil(retry_after)))
    return response


def _from_http_exception(exc: web.HTTPException, request: web.Request) -> web.Response:
    """Re-dress one of aiohttp's HTTP errors in the gateway's JSON shape."""
    status = exc.status
    if status == 405:
        allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
        code = "method_not_allowed"
        message = (
            f"This route does not accept {request.method}; use {allowed}."
            if allowed
            else f"This route does not accept {request.method}."
        )
    elif status == 413:
        code = "body_too_large"
        found = _MAX_SIZE_RE.search(exc.text or "")
        message = (
            f"The request body is larger than {found.group(1)} bytes."
            if found
            else _HTTP_ERRORS[413][1]
        )
    elif status in _HTTP_ERRORS:
        code, message = _HTTP_ERRORS[status]
    elif status >= 500:
        code, message = _INTERNAL
    else:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Request failed"
        code = re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_") or "request_failed"
        message = f"The request failed: {phrase.lower()}."
    extra = {k: v for k, v in exc.headers.items() if k.lower() not in _SKIPPED_HEADERS}
    return error_response(status, code, message, headers=extra)


def _response_started(request: web.Request) -> bool:
    """True once some of a response went out (or was queued): no second response can follow."""
    writer = request.writer
    return (
        bool(writer.output_size)
        or bool(getattr(writer, "_headers_buf", None))
        or bool(getattr(writer, "_headers_written", False))
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure as JSON: :class:`ApiError`, domain refusals, aiohttp's HTTP errors
    and crashes.

    Successful responses, redirects and ``101 Switching Protocols`` (websocket upgrades) pass
    untouched. If a handler fails after its response started (a websocket that was already
    upgraded), no second response can be sent: the error is logged and re-raised so aiohttp
    closes the connection.
    """
    try:
        return await handler(request)
    except ApiError as exc:
        if _response_started(request):
            raise
        return exc.to_response()
    except DomainError as exc:
        if _response_started(request):
            raise
        return error_response(domain_status(exc), exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400 or _response_started(request):
            raise
        return _from_http_exception(exc, request)
    except Exception:
        log.exception("http.unhandled_error", method=request.method, path=request.path)
        if _response_started(request):
            raise
        return error_response(500, *_INTERNAL)


def _malformed(detail: str) -> ApiError:
    return ApiError(400, "malformed_json", f"The request body must be a JSON object; {detail}.")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "body_too_large", f"The request body is larger than {max_bytes} bytes.")


async def read_json_body(request: web.Request, *, max_bytes: int) -> dict[str, Any]:
    """Read the body (at most ``max_bytes``) and return it parsed as a JSON object.

    Raises :class:`ApiError`: 413 ``body_too_large`` when ``Content-Length`` announces more than
    ``max_bytes`` (nothing is read) or the body turns out longer (reading stops one byte past the
    cap); 400 ``malformed_json`` when the body is empty, not UTF-8, not JSON (the message says
    where parsing failed), or JSON but not an object; 400 ``invalid_unicode`` when a string or
    key holds a lone surrogate escape (``"\\ud800"``): valid JSON, but not text that can be
    stored, compared or logged.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    while True:
        chunk = await request.content.read(max_bytes + 1 - len(body))
        if not chunk:
            break
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    if not body.strip():
        raise _malformed("it was empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed(f"it is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _malformed(f"parsing failed at line {exc.lineno}, column {exc.colno}") from None
    except (ValueError, RecursionError):
        raise _malformed("it is not valid JSON") from None
    if not isinstance(value, dict):
        raise _malformed(f"got a JSON {_json_kind(value)}")
    if has_lone_surrogate(value):
        raise invalid_unicode("The request body")
    return value


def has_lone_surrogate(value: object) -> bool:
    """Whether parsed JSON holds a string or key with a lone surrogate (``"\\ud800"``).

    ``json.loads`` joins escaped surrogate *pairs* into one character, so any surrogate code
    point left is unpaired: such a string cannot be encoded as UTF-8. Walks iteratively, so
    deep nesting costs no recursion.
    """
    pending: list[object] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE_RE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def invalid_unicode(what: str) -> ApiError:
    """The 400 for text with a lone surrogate; ``what`` names the part ("The request body")."""
    return ApiError(
        400,
        "invalid_unicode",
        f"{what} holds a lone surrogate escape (such as \\ud800), which is not valid Unicode; "
        "send text as plain UTF-8.",
    )


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"
