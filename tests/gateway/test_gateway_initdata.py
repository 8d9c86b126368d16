"""Tests for bridgehost.gateway.initdata: Telegram Mini App init-data verification.

Init data is signed here with the algorithm written out independently of the module under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote

import pytest

from bridgehost.gateway.initdata import (
    InitDataError,
    VerifiedInitData,
    sign_init_data,
    verify_init_data,
)

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
USER_JSON = '{"id":4242,"first_name":"Ada","username":"ada\\/x","language_code":"en"}'
MAX_AGE = timedelta(minutes=5)


def telegram_hash(pairs: dict[str, str], token: str = TOKEN) -> str:
    """Telegram's first-party hash, written out from the documentation."""
    check = "\n".join(f"{key}={pairs[key]}" for key in sorted(pairs) if key != "hash")
    secret = hmac.new(key=b"WebAppData", msg=token.encode(), digestmod=hashlib.sha256).digest()
    return hmac.new(key=secret, msg=check.encode(), digestmod=hashlib.sha256).hexdigest()


def encode(pairs: list[tuple[str, str]] | dict[str, str]) -> str:
    items = pairs.items() if isinstance(pairs, dict) else pairs
    return "&".join(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in items)


def make(
    token: str = TOKEN,
    *,
    auth_date: datetime = NOW - timedelta(seconds=10),
    drop: tuple[str, ...] = (),
    **extra: str,
) -> str:
    fields = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": USER_JSON,
        "auth_date": str(int(auth_date.timestamp())),
        "chat_instance": "-8112453341455291",
        "chat_type": "sender",
        **extra,
    }
    for key in drop:
        fields.pop(key, None)
    return encode({**fields, "hash": telegram_hash(fields, token)})


def verify(init_data: str, **kwargs: object) -> VerifiedInitData:
    kwargs.setdefault("bot_token", TOKEN)
    kwargs.setdefault("max_age", MAX_AGE)
    kwargs.setdefault("now", NOW)
    return verify_init_data(init_data, **kwargs)  # type: ignore[arg-type]


def reason_of(init_data: str, **kwargs: object) -> str:
    with pytest.raises(InitDataError) as caught:
        verify(init_data, **kwargs)
    assert caught.value.message and TOKEN not in caught.value.message
    return caught.value.reason


def test_valid_init_data() -> None:
    result = verify(make(start_param="abc"))
    assert result.user_id == 4242
    assert result.user == json.loads(USER_JSON)
    assert result.auth_date == NOW - timedelta(seconds=10)
    assert result.chat_instance == "-8112453341455291"
    assert result.chat_type == "sender"
    assert result.query_id == "AAHdF6IQAAAAAN0XohDhrOrc"
    assert result.start_param == "abc"


def test_optional_fields_absent() -> None:
    result = verify(make(drop=("query_id", "chat_instance", "chat_type")))
    assert (result.chat_instance, result.chat_type, result.query_id, result.start_param) == (
        None,
        None,
        None,
        None,
    )


def test_signature_field_is_part_of_the_hmac() -> None:
    signed = make(signature="c2lnbmF0dXJl")
    assert verify(signed).user_id == 4242
    pairs = dict(parse_qsl(signed))
    pairs["signature"] = "c29tZXRoaW5nIGVsc2U"  # hash unchanged: must now fail
    assert reason_of(encode(pairs)) == "bad_hash"


def test_module_signer_matches_the_documented_algorithm() -> None:
    fields = {"user": USER_JSON, "auth_date": str(int(NOW.timestamp()))}
    signed = dict(parse_qsl(sign_init_data(fields, bot_token=TOKEN)))
    assert signed["hash"] == telegram_hash(fields)
    assert signed["user"] == USER_JSON


def test_user_json_is_used_exactly_as_received() -> None:
    # re-serializing would turn "\/" into "/" and reorder nothing visible, but break the hash
    assert verify(make()).user["username"] == "ada/x"


@pytest.mark.parametrize(
    ("init_data", "reason"),
    [
        ("", "missing"),
        ("a=1&&b", "malformed"),
        ("user=%ff%fe&hash=00", "malformed"),
        ("x" * 9000, "malformed"),
        ("a=1&a=2&hash=00", "duplicate_key"),
        (encode({"user": USER_JSON, "auth_date": "1"}), "no_hash"),
        (encode({"user": USER_JSON, "auth_date": "1", "hash": ""}), "no_hash"),
    ],
)
def test_structural_failures(init_data: str, reason: str) -> None:
    assert reason_of(init_data) == reason


def test_duplicate_key_even_when_signed() -> None:
    fields = [("auth_date", str(int(NOW.timestamp()))), ("user", USER_JSON), ("user", '{"id":1}')]
    digest = telegram_hash(dict(fields))
    assert reason_of(encode([*fields, ("hash", digest)])) == "duplicate_key"


def test_wrong_token_or_tampered_field_is_bad_hash() -> None:
    assert reason_of(make(token="987:other")) == "bad_hash"
    pairs = dict(parse_qsl(make()))
    pairs["user"] = pairs["user"].replace("4242", "4243")
    assert reason_of(encode(pairs)) == "bad_hash"
    pairs = dict(parse_qsl(make()))
    pairs["hash"] = "zz" + pairs["hash"][2:]
    assert reason_of(encode(pairs)) == "bad_hash"
    pairs["hash"] = "é" * 64  # non-ASCII must not crash the comparison
    assert reason_of(encode(pairs)) == "bad_hash"


def test_uppercase_hex_hash_is_accepted() -> None:
    pairs = dict(parse_qsl(make()))
    pairs["hash"] = pairs["hash"].upper()
    assert verify(encode(pairs)).user_id == 4242


@pytest.mark.parametrize("auth_date", [None, "", "abc", "-5", "0", "1.5"])
def test_auth_date_missing_or_not_a_positive_integer(auth_date: str | None) -> None:
    fields = {"user": USER_JSON}
    if auth_date is not None:
        fields["auth_date"] = auth_date
    assert reason_of(encode({**fields, "hash": telegram_hash(fields)})) == "no_auth_date"


def test_freshness_boundaries() -> None:
    assert verify(make(auth_date=NOW - MAX_AGE)).user_id == 4242
    assert reason_of(make(auth_date=NOW - MAX_AGE - timedelta(seconds=1))) == "stale"
    stale = InitDataError("stale")
    assert stale.message == (
        "This call screen was opened too long ago. Close it and send /call again."
    )


def test_future_auth_date_beyond_skew() -> None:
    assert verify(make(auth_date=NOW + timedelta(seconds=30))).user_id == 4242
    assert reason_of(make(auth_date=NOW + timedelta(seconds=31))) == "future"
    assert (
        reason_of(make(auth_date=NOW + timedelta(seconds=5)), max_future_skew=timedelta(0))
        == "future"
    )


@pytest.mark.parametrize(
    "user",
    [
        None,
        "",
        "not json",
        "[1]",
        '{"first_name":"x"}',
        '{"id":"4242"}',
        '{"id":true}',
        '{"id":4.5}',
        '{"id":-1}',
    ],
)
def test_user_must_have_an_integer_id(user: str | None) -> None:
    extra = {} if user is None else {"user": user}
    signed = make(drop=("user",), **extra)
    assert reason_of(signed) == "no_user"


def test_every_reason_has_one_user_facing_sentence() -> None:
    reasons = [
        "missing",
        "malformed",
        "duplicate_key",
        "no_hash",
        "bad_hash",
        "no_auth_date",
        "stale",
        "future",
        "no_user",
        "bad_signature",
    ]
    for reason in reasons:
        error = InitDataError(reason)
        assert error.reason == reason
        assert str(error) == error.message
        assert error.message.endswith(".") and "hmac" not in error.message.lower()


def test_configuration_errors_are_not_init_data_errors() -> None:
    with pytest.raises(ValueError):
        verify(make(), bot_token="")
    with pytest.raises(ValueError):
        verify(make(), now=datetime(2026, 3, 1, 12, 0, 0))


# --- third-party validation (Ed25519 `signature`) ------------------------------------------


def ed25519_signed(private_key: object, bot_id: int, **extra: str) -> str:
    """Init data with a test-keypair Ed25519 signature, then the HMAC hash over all of it."""
    fields = {
        "user": USER_JSON,
        "auth_date": str(int((NOW - timedelta(seconds=5)).timestamp())),
        "chat_instance": "77",
        **extra,
    }
    check = f"{bot_id}:WebAppData\n" + "\n".join(f"{k}={fields[k]}" for k in sorted(fields))
    raw = private_key.sign(check.encode())  # type: ignore[attr-defined]
    fields["signature"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return encode({**fields, "hash": telegram_hash(fields)})


def test_ed25519_signature() -> None:
    ed25519 = pytest.importorskip(
        "cryptography.hazmat.primitives.asymmetric.ed25519",
        reason="the 'cryptography' package is not installed; Ed25519 checks need it",
    )
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private_key = ed25519.Ed25519PrivateKey.generate()
    public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signed = ed25519_signed(private_key, 123456789)
    assert verify(signed, ed25519_public_key=public).user_id == 4242  # bot id from the token
    assert verify(signed, ed25519_public_key=public, bot_id=123456789).user_id == 4242
    assert reason_of(signed, ed25519_public_key=public, bot_id=1) == "bad_signature"
    other = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    assert reason_of(signed, ed25519_public_key=other) == "bad_signature"
    assert reason_of(make(), ed25519_public_key=public) == "bad_signature"  # no signature
    assert reason_of(make(signature="%%%"), ed25519_public_key=public) == "bad_signature"
    assert verify(make()).user_id == 4242  # without a public key the signature is not required
