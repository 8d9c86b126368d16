"""Helpers shared by the config models: documented fields and URL checks."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import SplitResult, urlsplit

from pydantic import Field, JsonValue

LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})
"""Host names treated as loopback besides 127.0.0.0/8 and ::1."""


def setting(
    default: Any,
    description: str,
    *,
    unit: str | None = None,
    default_text: str | None = None,
    **kwargs: Any,
) -> Any:
    """A pydantic ``Field`` whose description ends with its unit and default.

    The unit is also stored as ``json_schema_extra={"unit": ...}`` for generated docs.

    :param default: the default value; lists are copied per instance.
    :param default_text: how to describe the default when ``default`` alone says too little
        (derived defaults such as ``$STATE_DIRECTORY``).
    """
    text = description.rstrip(".") + "."
    if unit:
        text += f" Unit: {unit}."
    text += f" Default: {default_text or _describe(default)}."
    extra: dict[str, JsonValue] | None = {"unit": unit} if unit else None
    if isinstance(default, list):
        items = list(default)
        return Field(
            default_factory=lambda: list(items),
            description=text,
            json_schema_extra=extra,
            **kwargs,
        )
    return Field(default, description=text, json_schema_extra=extra, **kwargs)


def _describe(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_describe(v) for v in value) + "]"
    return str(value)


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``."""
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_url(url: str) -> tuple[SplitResult | None, str | None]:
    """``urlsplit`` plus a port check; returns ``(parts, None)`` or ``(None, reason)``."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as exc:
        return None, f"is not a valid URL ({exc})"
    if not parts.scheme or not parts.hostname:
        return None, "is not an absolute URL with a scheme and a host"
    return parts, None


def origin_problem(url: str) -> str | None:
    """Why ``url`` is not an acceptable public origin, or ``None`` when it is.

    Acceptable: ``https://host[:port]`` with no path, query, fragment or credentials, or plain
    ``http://`` only when the host is loopback (local use and tests).
    """
    parts, reason = split_url(url)
    if parts is None:
        return reason
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        return f"must start with https://, not {scheme}://"
    if scheme == "http" and not is_loopback_host(parts.hostname):
        return (
            "must be https://; plain http:// is only accepted on a loopback host "
            "(127.0.0.1, ::1, localhost)"
        )
    if parts.username or parts.password:
        return "must not contain a user name or password"
    if parts.path not in ("", "/"):
        return f"must be an origin with no path (it has the path {parts.path!r})"
    if parts.query or parts.fragment:
        return "must be an origin with no query string or fragment"
    return None
