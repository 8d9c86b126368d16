"""The Bot API's wire shapes shared by the fake server and the simulated user: refusals,
recorded calls, injected failures, parameter parsing, messages as the API shows them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Json = dict[str, Any]
#: Telegram's description for an injected failure with this HTTP code.
DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    502: "Bad Gateway",
    403: "Forbidden: bot was blocked by the user",
}


class ApiError(Exception):
    """A Bot API refusal: ``{"ok": false, "error_code": code, "description": ...}``."""

    def __init__(self, description: str, code: int = 400, retry_after: int | None = None):
        super().__init__(description)
        self.description, self.code, self.retry_after = description, code, retry_after

    def response(self) -> web.Response:
        """The JSON envelope Telegram answers with."""
        body: Json = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.code)


@dataclass
class Call:
    """One Bot API call as received: parameters as text (objects as JSON text), like Telegram."""

    method: str
    params: dict[str, str]

    def json(self, key: str) -> Any:
        """A parameter decoded from JSON (``reply_markup``, ``commands``...)."""
        return json.loads(self.params[key])


@dataclass
class Failure:
    """The next ``times`` calls of ``method`` (``*``: any) fail with ``error``, or, when
    ``error`` is ``None``, lose their connection without an answer."""

    method: str
    error: ApiError | None
    times: int = 1


def int_param(params: dict[str, str], key: str, error: str | None = None) -> int | None:
    """An integer parameter: ``None`` if missing or invalid, or ``ApiError(error)`` if given."""
    try:
        value = int(params[key])
    except (KeyError, ValueError):
        value = None
    if not value and error:
        raise ApiError(error)
    return value


def json_param(params: dict[str, str], key: str, error: str) -> Any:
    """A parameter decoded from JSON, or ``ApiError(error)`` when missing or not JSON."""
    try:
        return json.loads(params[key])
    except (KeyError, ValueError):
        raise ApiError(error) from None


async def read_params(request: web.Request) -> dict[str, str]:
    """Query string plus a form, multipart or JSON body, as the Bot API reads them."""
    params = dict(request.query)
    if request.content_type == "application/json" and request.can_read_body:
        try:
            body = await request.json()
        except ValueError:
            body = None
        for key, value in (body if isinstance(body, dict) else {}).items():
            params[key] = value if isinstance(value, str) else json.dumps(value)
    elif request.can_read_body:
        uploads: dict[str, tuple[str, bytes]] = {}
        for key, value in (await request.post()).items():
            if isinstance(value, str):
                params[key] = value
            else:
                params[key] = f"{value.filename} (upload)"
                uploads[key] = (str(value.filename or key), value.file.read())
        request[UPLOADS] = uploads
    return params


UPLOADS: web.RequestKey[dict[str, tuple[str, bytes]]] = web.RequestKey("fake_bot_api_uploads", dict)
"""Where :func:`read_params` leaves a request's uploaded files: field → (file name, bytes)."""


def api_message(record: Json) -> Json:
    """A stored message as the Bot API shows it (no test-only keys, inline keyboards only)."""
    message = {k: v for k, v in record.items() if k not in ("parse_mode", "deleted")}
    if "inline_keyboard" not in (message.get("reply_markup") or {}):
        message.pop("reply_markup", None)
    return message
