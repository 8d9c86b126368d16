"""Telegram Mini App helpers for the fake Bot API: init data signed the way Telegram signs it,
launch URLs as a Telegram client opens them, and the rule for which Web App URLs Telegram accepts.

Signing follows https://core.telegram.org/bots/webapps ("Validating data received via the Mini
App")::

    data_check_string = "\\n".join(f"{k}={v}" for k, v in sorted(fields) if k != "hash")
    secret_key        = HMAC_SHA256(key=b"WebAppData", msg=bot_token)
    hash              = hex(HMAC_SHA256(key=secret_key, msg=data_check_string))
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

#: ``tgWebAppVersion`` a launch reports unless told otherwise.
DEFAULT_VERSION = "9.1"
#: ``tgWebAppPlatform`` a launch reports unless told otherwise.
DEFAULT_PLATFORM = "tdesktop"


def encode_json(value: Any) -> str:
    """JSON the way Telegram writes it in init data: compact, raw UTF-8, ``/`` escaped as ``\\/``.

    The escaped slashes (as in Telegram's ``photo_url``) catch verifiers that re-serialise
    ``user`` instead of hashing the text as received.
    """
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).replace("/", "\\/")


def secret_key(token: str) -> bytes:
    """The HMAC key derived from the bot token: ``HMAC_SHA256(key=b"WebAppData", msg=token)``."""
    return hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()


def data_check_string(fields: Mapping[str, str]) -> str:
    """Every field but ``hash``, sorted by key, as ``key=value`` lines joined by ``\\n``."""
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")


def init_data_hash(fields: Mapping[str, str], token: str) -> str:
    """The hex ``hash`` Telegram puts into init data for these (URL-decoded) fields."""
    dcs = data_check_string(fields).encode()
    return hmac.new(secret_key(token), dcs, hashlib.sha256).hexdigest()


def sign_init_data(fields: Mapping[str, str], token: str) -> str:
    """The init data query string for ``fields`` (in their order) with ``hash`` appended.

    Values are percent-encoded with ``%20`` for spaces, as Telegram clients do.
    """
    pairs = {k: v for k, v in fields.items() if k != "hash"}
    pairs["hash"] = init_data_hash(pairs, token)
    return urlencode(pairs, quote_via=quote, safe="")


def build_init_data(
    token: str,
    user_id: int,
    *,
    first_name: str = "Alice",
    last_name: str | None = None,
    username: str | None = None,
    language_code: str | None = "en",
    auth_date: int | None = None,
    chat_instance: str | None = None,
    query_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Signed init data for a launch by ``user_id``, as ``Telegram.WebApp.initData`` holds it.

    ``user`` is a JSON ``WebAppUser``; ``auth_date`` defaults to now; ``query_id`` appears for
    launches from an inline button. ``extra`` adds or overrides fields (``start_param``,
    ``chat_type``, ``signature``...); non-string values are written as JSON.
    """
    user: dict[str, Any] = {"id": user_id, "first_name": first_name}
    if last_name is not None:
        user["last_name"] = last_name
    if username is not None:
        user["username"] = username
    if language_code is not None:
        user["language_code"] = language_code
    user["allows_write_to_pm"] = True
    fields: dict[str, str] = {}
    if query_id is not None:
        fields["query_id"] = query_id
    fields["user"] = encode_json(user)
    if chat_instance is not None:
        fields["chat_instance"] = chat_instance
    fields["auth_date"] = str(int(time.time()) if auth_date is None else auth_date)
    for key, value in (extra or {}).items():
        fields[key] = value if isinstance(value, str) else encode_json(value)
    return sign_init_data(fields, token)


def append_launch_params(
    url: str,
    init_data: str,
    *,
    version: str = DEFAULT_VERSION,
    platform: str = DEFAULT_PLATFORM,
    theme_params: Mapping[str, str] | None = None,
    start_param: str | None = None,
) -> str:
    """``url`` as a Telegram client loads it: launch parameters in the fragment.

    ``#tgWebAppData=<urlencoded init data>&tgWebAppVersion=…&tgWebAppPlatform=…``. A URL with a
    fragment of its own (a hash router's ``#/route``) keeps it and gets the parameters after
    ``?`` (or ``&`` if it already has a query). ``start_param`` also becomes the GET parameter
    ``tgWebAppStartParam``.
    """
    params = {"tgWebAppData": init_data, "tgWebAppVersion": version, "tgWebAppPlatform": platform}
    if theme_params is not None:
        params["tgWebAppThemeParams"] = json.dumps(dict(theme_params), separators=(",", ":"))
    launch = urlencode(params, quote_via=quote, safe="")
    parts = urlsplit(url)
    query = parts.query
    if start_param is not None:
        query = "&".join(filter(None, [query, urlencode({"tgWebAppStartParam": start_param})]))
    if not parts.fragment:
        fragment = launch
    else:
        fragment = parts.fragment + ("&" if "?" in parts.fragment else "?") + launch
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, fragment))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def web_app_url_error(url: str, label: str, *, allow_http_loopback: bool) -> str | None:
    """Telegram's refusal of a Web App ``url``, or ``None`` when Telegram would open it.

    ``label`` names the place, e.g. ``"inline keyboard button"`` or ``"menu button"``. Only
    absolute ``https`` URLs with a host pass; plain ``http`` passes on ``127.0.0.1``/``::1``/
    ``localhost`` when ``allow_http_loopback`` (a test convenience real Telegram lacks).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        parts, host = None, ""
    if parts is not None and host and parts.scheme == "https":
        return None
    if parts is not None and host and parts.scheme == "http":
        if allow_http_loopback and _is_loopback(host):
            return None
        return f"Bad Request: {label} Web App URL '{url}' is invalid: Only HTTPS links are allowed"
    return f"Bad Request: {label} Web App URL '{url}' is invalid"
