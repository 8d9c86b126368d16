"""Upstream failures as :class:`ProviderStartError`: one sentence saying what went wrong and
what to do, never a stack trace or an upstream body that could echo a key.

The same wording serves the HTTP calls made through the SDK (``openai.APIError`` and friends)
and the sideband WebSocket handshake (``websockets`` exceptions), so an operator reads the same
sentence whichever leg failed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from websockets.exceptions import InvalidHandshake, InvalidStatus

from bridgehost.providers import ProviderStartError

MAX_UPSTREAM_MESSAGE = 200
STATUS_PAGE = "https://status.openai.com"


def _upstream_message(body: object) -> str:
    """The ``message`` of an OpenAI error body, shortened; empty when there is none."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            text = " ".join(inner["message"].split())
            if len(text) > MAX_UPSTREAM_MESSAGE:
                text = text[: MAX_UPSTREAM_MESSAGE - 1] + "…"
            return text.rstrip(".")
    return ""


def _field(body: object, name: str) -> str | None:
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        value = inner.get(name) if isinstance(inner, Mapping) else None
        if isinstance(value, str):
            return value
    return None


def status_message(
    status: int,
    *,
    body: object = None,
    retry_after: str | None = None,
    during: str = "starting the call",
) -> str:
    """The sentence for an HTTP ``status`` OpenAI answered (HTTP call or WebSocket handshake)."""
    detail = _upstream_message(body)
    if status == 401:
        return "OpenAI rejected the API key: check OPENAI_API_KEY"
    if status == 403:
        return (
            "OpenAI refused this API key access to the Realtime API: check the key's "
            "project permissions and realtime.model"
        )
    if status == 404:
        return (
            f"OpenAI answered 404 Not Found while {during}"
            + (f" ({detail})" if detail else "")
            + ": check realtime.model and OPENAI_BASE_URL"
        )
    if status == 429:
        if _field(body, "code") == "insufficient_quota":
            return (
                "OpenAI says this key has run out of quota: check the billing of its "
                "project on platform.openai.com"
            )
        wait = f"wait {retry_after.strip()} s" if retry_after and retry_after.strip() else "wait"
        return f"OpenAI is rate-limiting this key: {wait} and retry"
    offer_problem = _field(body, "param") == "sdp" or _field(body, "code") == "invalid_offer"
    if status == 400 and offer_problem:
        return (
            f"OpenAI could not use the browser's WebRTC offer ({detail or 'HTTP 400'}): "
            "reload the Mini App and try again"
        )
    if status in (400, 422):
        return (
            f"OpenAI rejected the call setup ({detail or f'HTTP {status}'}): check "
            "realtime.model, realtime.voice and realtime.transcription_model"
        )
    if status == 503:
        return f"OpenAI is overloaded right now (HTTP 503): try again in a minute ({STATUS_PAGE})"
    if status >= 500:
        return f"OpenAI had a server error (HTTP {status}): try again in a minute ({STATUS_PAGE})"
    return f"OpenAI answered HTTP {status} while {during}" + (f" ({detail})" if detail else "")


def _host(url: object) -> str:
    try:
        return urlsplit(str(url)).netloc or str(url)
    except ValueError:
        return str(url)


def timeout_message(timeout_s: float) -> str:
    """The sentence for an upstream that did not answer in time."""
    return (
        f"OpenAI did not answer within {timeout_s:g} s: check the network (or "
        "OPENAI_BASE_URL) and retry"
    )


def api_error(
    exc: BaseException, *, timeout_s: float, base_url: object, during: str = "starting the call"
) -> ProviderStartError:
    """Translate an SDK exception (or a bare timeout) into a start error."""
    import openai  # the SDK takes ~0.7 s to import: only when used

    if isinstance(exc, openai.APIStatusError):
        retry_after = exc.response.headers.get("retry-after")
        message = status_message(
            exc.status_code, body=exc.body, retry_after=retry_after, during=during
        )
    elif isinstance(exc, openai.APITimeoutError | TimeoutError):
        message = timeout_message(timeout_s)
    elif isinstance(exc, openai.APIConnectionError):
        message = (
            f"Could not connect to OpenAI at {_host(base_url)}: check the network, a "
            "proxy, or OPENAI_BASE_URL"
        )
    else:
        message = f"OpenAI call failed while {during} ({type(exc).__name__})"
    return ProviderStartError(message)


def handshake_error(exc: BaseException, *, timeout_s: float, url: str) -> ProviderStartError:
    """Translate a failed sideband WebSocket handshake into a start error."""
    during = "attaching the gateway to the call"
    if isinstance(exc, InvalidStatus):
        response = exc.response
        body: Any = None
        try:
            body = json.loads(response.body or b"null")
        except ValueError:
            body = None
        if response.status_code == 404:
            return ProviderStartError(
                "The OpenAI call ended before the gateway could attach to it: start a new call"
            )
        return ProviderStartError(
            status_message(
                response.status_code,
                body=body,
                retry_after=response.headers.get("retry-after"),
                during=during,
            )
        )
    if isinstance(exc, TimeoutError):
        return ProviderStartError(timeout_message(timeout_s))
    if isinstance(exc, OSError):
        return ProviderStartError(
            f"Could not connect to OpenAI at {_host(url)} for the call's "
            "server-side connection: check the network or OPENAI_BASE_URL"
        )
    if isinstance(exc, InvalidHandshake):
        return ProviderStartError(
            f"OpenAI refused the call's server-side connection "
            f"({type(exc).__name__}): check OPENAI_BASE_URL"
        )
    return ProviderStartError(f"OpenAI call failed while {during} ({type(exc).__name__})")


__all__ = ["api_error", "handshake_error", "status_message", "timeout_message"]
