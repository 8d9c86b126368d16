"""Telegram Mini App init data: verify who opened the call screen, and when.

The page sends ``Telegram.WebApp.initData`` (the raw query string) to the gateway;
:func:`verify_init_data` checks it as Telegram documents:

1. parse it strictly as ``application/x-www-form-urlencoded``, refusing duplicate keys;
2. ``secret = HMAC_SHA256(key=b"WebAppData", msg=bot_token)``;
3. the data-check string is every decoded ``key=value`` pair except ``hash`` — ``signature``
   included — sorted by key and joined with ``\\n``;
4. ``hex(HMAC_SHA256(key=secret, msg=data_check_string))`` must equal ``hash`` (constant time);
5. ``auth_date`` must be at most ``max_age`` old and not in the future beyond a small skew;
6. ``user`` is parsed as received and must carry an integer ``id``.

Optionally the Ed25519 ``signature`` is checked too, against Telegram's public key over
``f"{bot_id}:WebAppData\\n"`` plus the sorted pairs without ``hash`` and ``signature``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["InitDataError", "VerifiedInitData", "sign_init_data", "verify_init_data"]

_MESSAGES: dict[str, str] = {
    "missing": "Telegram did not pass your sign-in data; open the call screen from the bot's "
    "Call button.",
    "malformed": "The sign-in data from Telegram is damaged; close this screen and send /call "
    "again.",
    "duplicate_key": "The sign-in data from Telegram is not valid; close this screen and send "
    "/call again.",
    "no_hash": "The sign-in data is not signed by Telegram; open the call screen from the bot's "
    "Call button.",
    "bad_hash": "The sign-in data could not be verified as coming from this bot; open the call "
    "screen from the bot's Call button.",
    "no_auth_date": "The sign-in data from Telegram has no time stamp; close this screen and "
    "send /call again.",
    "stale": "This call screen was opened too long ago. Close it and send /call again.",
    "future": "The sign-in time is ahead of the server's clock; wait a minute and send /call "
    "again.",
    "no_user": "Telegram did not say who you are; open the call screen from your private chat "
    "with the bot.",
    "bad_signature": "Telegram's signature on this call screen could not be verified; close it "
    "and send /call again.",
}
_AUTH_DATE_RE = re.compile(r"[0-9]{1,12}")
_MAX_FIELDS = 64


class InitDataError(Exception):
    """Init data failed verification; ``reason`` is a stable code, ``message`` is for the user.

    Reasons: ``missing``, ``malformed``, ``duplicate_key``, ``no_hash``, ``bad_hash``,
    ``no_auth_date``, ``stale``, ``future``, ``no_user``, ``bad_signature``.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.message = _MESSAGES[reason]
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"InitDataError({self.reason!r})"


@dataclass(frozen=True)
class VerifiedInitData:
    """What verified init data says: the Telegram user and the launch's context."""

    user_id: int
    user: dict[str, Any]
    auth_date: datetime
    chat_instance: str | None
    chat_type: str | None
    query_id: str | None
    start_param: str | None


def _data_check_string(fields: Mapping[str, str], *, skip: frozenset[str]) -> str:
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key not in skip)


def _hmac_hex(fields: Mapping[str, str], bot_token: str) -> str:
    secret = hmac.new(b"WebAppData", bot_token.encode("utf-8"), hashlib.sha256).digest()
    dcs = _data_check_string(fields, skip=frozenset({"hash"}))
    return hmac.new(secret, dcs.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_init_data(fields: Mapping[str, str], *, bot_token: str) -> str:
    """Init data for ``fields``, signed with ``bot_token`` as Telegram does (for fakes and tests).

    Values are strings as they would arrive (``user`` is JSON text); ``hash`` is added.
    """
    data = {key: value for key, value in fields.items() if key != "hash"}
    return urlencode({**data, "hash": _hmac_hex(data, bot_token)})


def _parse(init_data: str, max_length: int) -> dict[str, str]:
    if not init_data:
        raise InitDataError("missing")
    if len(init_data) > max_length:
        raise InitDataError("malformed")
    try:
        init_data.encode("utf-8")  # a lone surrogate ("\\ud800") cannot be signed or compared
        pairs = parse_qsl(
            init_data,
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=_MAX_FIELDS,
        )
    except ValueError:  # includes UnicodeEncodeError/UnicodeDecodeError and too many fields
        raise InitDataError("malformed") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InitDataError("duplicate_key")
    return fields


def _check_ed25519(fields: Mapping[str, str], public_key: bytes, bot_id: int) -> None:
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "checking Telegram's Ed25519 signature needs the 'cryptography' "
            "package; install it or drop the public key"
        ) from exc
    signature = fields.get("signature")
    if not signature:
        raise InitDataError("bad_signature")
    try:
        raw = base64.b64decode(
            signature + "=" * (-len(signature) % 4), altchars=b"-_", validate=True
        )
    except ValueError:  # binascii.Error
        raise InitDataError("bad_signature") from None
    dcs = f"{bot_id}:WebAppData\n" + _data_check_string(
        fields, skip=frozenset({"hash", "signature"})
    )
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(raw, dcs.encode("utf-8"))
    except InvalidSignature:
        raise InitDataError("bad_signature") from None


def _user(fields: Mapping[str, str]) -> dict[str, Any]:
    text = fields.get("user")
    if not text:
        raise InitDataError("no_user")
    try:
        user = json.loads(text)
    except (ValueError, RecursionError):
        raise InitDataError("no_user") from None
    if not isinstance(user, dict):
        raise InitDataError("no_user")
    user_id = user.get("id")
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
        raise InitDataError("no_user")
    return user


def verify_init_data(
    init_data: str,
    *,
    bot_token: str,
    max_age: timedelta,
    now: datetime | None = None,
    max_future_skew: timedelta = timedelta(seconds=30),
    max_length: int = 8192,
    ed25519_public_key: bytes | None = None,
    bot_id: int | None = None,
) -> VerifiedInitData:
    """Verify Telegram Mini App init data and return what it says; raise :class:`InitDataError`.

    ``now`` (timezone-aware; default: the current UTC time) is compared with ``auth_date``:
    older than ``max_age`` is ``stale``, ahead by more than ``max_future_skew`` is ``future``.
    With ``ed25519_public_key`` (32 raw bytes) the ``signature`` field must also verify;
    ``bot_id`` defaults to the numeric part of ``bot_token``. The HMAC is checked first, so
    nothing unsigned is interpreted. Raises ``ValueError`` for an empty ``bot_token`` or a naive
    ``now`` (configuration errors, not the user's).
    """
    if not bot_token:
        raise ValueError("verify_init_data needs the bot token")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    fields = _parse(init_data, max_length)
    given = fields.get("hash")
    if not given:
        raise InitDataError("no_hash")
    expected = _hmac_hex(fields, bot_token)
    if not hmac.compare_digest(expected.encode("ascii"), given.lower().encode("utf-8")):
        raise InitDataError("bad_hash")
    if ed25519_public_key is not None:
        if bot_id is None:
            prefix = bot_token.split(":", 1)[0]
            if not prefix.isdigit():
                raise ValueError("bot_id is needed: the bot token has no numeric id")
            bot_id = int(prefix)
        _check_ed25519(fields, ed25519_public_key, bot_id)
    raw_date = fields.get("auth_date", "")
    if not _AUTH_DATE_RE.fullmatch(raw_date) or int(raw_date) == 0:
        raise InitDataError("no_auth_date")
    seconds = int(raw_date)
    # Compare as numbers first: a far-future stamp (up to 12 digits) is past datetime's range.
    if seconds - now.timestamp() > max_future_skew.total_seconds():
        raise InitDataError("future")
    auth_date = datetime.fromtimestamp(seconds, UTC)
    if now - auth_date > max_age:
        raise InitDataError("stale")
    user = _user(fields)
    return VerifiedInitData(
        user_id=user["id"],
        user=user,
        auth_date=auth_date,
        chat_instance=fields.get("chat_instance") or None,
        chat_type=fields.get("chat_type") or None,
        query_id=fields.get("query_id") or None,
        start_param=fields.get("start_param") or None,
    )
