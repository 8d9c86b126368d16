"""The "call me" intent matcher: short requests to talk start a call, sentences do not."""

from __future__ import annotations

import pytest

from bridgehost.telegram.intents import MAX_INTENT_CHARS, is_call_intent, match_intent, normalize

CALLS = [
    "call",
    "Call me",
    "call me!",
    "call me up",
    "Call me please",
    "please call me now",
    "can you call me",
    "Can you call me?",
    "could you call me when ready",
    "would you call us",
    "hey codex, call me",
    "let's talk",
    "Let’s talk",
    "lets talk",
    "let's talk live",
    "can we talk",
    "talk to me",
    "voice call please",
    "live call",
    "a quick call please",
    "give me a call",
    "give us a quick live call",
    "start a call",
    "start the live call",
    "open the call",
    "launch a voice call",
    "let's hop on a call",
    "jump on a call",
    "get on a quick call",
    "ring me",
    "phone me",
    "I'd like a call",
    "i want to talk",
    "start calling",
    "ＣＡＬＬ ＭＥ",
    "📞 call me",
    "call me, thanks",
    "need a call",
]
NOT_CALLS = [
    "this API call fails",
    "call the function",
    "call it a day",
    "what does this call return?",
    "the call failed",
    "call me when the build is done",
    "don't call me",
    "no call please",
    "I will call you later",
    "call me maybe",
    "can you call the API",
    "let's talk about the refactor",
    "talk is cheap",
    "callback",
    "recall",
    "call site",
    "please review the call site",
    "calling convention",
    "why did the call drop",
    "/call",
    "",
    "   ",
    "call call call",
    "who called?",
    "can you call the build script twice",
    "I called you",
    "the call status endpoint is broken",
]
STATUS = [
    "call status",
    "Call status?",
    "status of the call",
    "is the live call ready",
    "is a call running",
    "is there a call going on",
    "any call active?",
]


@pytest.mark.parametrize("text", CALLS)
def test_requests_to_talk_start_a_call(text):
    assert match_intent(text) == "call"
    assert is_call_intent(text)


@pytest.mark.parametrize("text", NOT_CALLS)
def test_sentences_mentioning_a_call_do_not(text):
    assert match_intent(text) is None
    assert not is_call_intent(text)


@pytest.mark.parametrize("text", STATUS)
def test_questions_about_the_call_ask_for_status(text):
    assert match_intent(text) == "status"


def test_long_messages_are_never_intents():
    assert match_intent("call me " + "please " * MAX_INTENT_CHARS) is None
    assert match_intent(None) is None


def test_normalize_folds_case_width_apostrophes_and_punctuation():
    assert normalize("  Let’s   TALK!!  ") == "let's talk"
    assert normalize("ＣＡＬＬ\u00a0me…") == "call me"
