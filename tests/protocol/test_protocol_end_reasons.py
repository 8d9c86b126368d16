"""End reasons: one name each, a sentence for the page and a label for the handoff."""

from __future__ import annotations

from bridgehost.protocol.control import BodyError, HangupRequest, parse_body
from bridgehost.protocol.end_reasons import (
    BROWSER_END_REASONS,
    EndReason,
    end_label,
    end_text,
    page_texts,
)


def test_every_reason_has_a_sentence_and_a_label():
    for reason in EndReason:
        assert reason.text.endswith(".") and "_" not in reason.text, reason
        assert reason.label, reason
    assert "bridgectl_hangup" not in {r.value for r in EndReason}
    assert EndReason.OPERATOR_HANGUP.label == "hung up with bridgectl"


def test_words_for_known_and_unknown_reasons():
    assert end_label("user_hangup") == "hung up from the call page (user_hangup)"
    assert end_label("vendor_said_bye") == "vendor_said_bye"
    assert end_label(None) == "unknown"
    assert end_text("telegram_hangup") == "The call was hung up from Telegram (/hangup)."
    assert end_text("vendor_said_bye") == "The call ended (vendor said bye)."
    assert end_text(None) == "The call ended."
    assert page_texts()["idle_timeout"] == EndReason.IDLE_TIMEOUT.text
    assert EndReason.USER_HANGUP in BROWSER_END_REASONS


def test_the_operator_hangup_is_the_default_control_reason():
    assert parse_body(HangupRequest, {}).effective_reason == "operator_hangup"
    assert parse_body(HangupRequest, {"reason": "x" * 80}).effective_reason == "x" * 64
    try:
        parse_body(HangupRequest, {"reason": 5})
    except BodyError as exc:
        assert str(exc) == "'reason' must be a string, such as 'operator_hangup'."
    else:
        raise AssertionError("a non-string reason was accepted")
