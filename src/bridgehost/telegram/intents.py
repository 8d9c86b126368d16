"""Natural-language intents: "call me" starts a call, "call status" shows it.

The whole message must match (anchored), so ordinary sentences that mention a call ("this API
call fails", "call the function twice") never start one. Matching runs on a normalized form:
NFKC, lower case, curly apostrophes made straight, every run of characters other than
``a-z 0-9 '`` collapsed to one space. Politeness around the request is allowed: a leading
"hey / please / codex / can you / could you / would you" and a trailing "please / now / when
ready / if you can / thanks".
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

Intent = Literal["call", "status"]

MAX_INTENT_CHARS = 80
"""Longer messages are never intents: a request to call is short."""

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_NOT_WORD = re.compile(r"[^a-z0-9']+")

_LEAD = (
    r"(?:(?:hey|hi|ok|okay|so|please|pls|codex|bot|yo)\s+)*"
    r"(?:(?:can|could|would|will)\s+(?:you|we)\s+(?:please\s+)?)?"
    r"(?:(?:i\s+(?:want|would\s+like)|i'?d\s+like|i\s+wanna|wanna)\s+(?:to\s+)?)?"
)
_TAIL = (
    r"(?:\s+(?:please|pls|now|right\s+now|asap|quickly|thanks|thank\s+you|"
    r"when\s+(?:you(?:'re|\s+are)\s+)?ready|when\s+you\s+can|if\s+you\s+can))*"
)

_A = r"(?:(?:a|an|the|our|my)\s+)?"
_KIND = r"(?:(?:quick|short|live|voice|phone|video|audio)\s+)*"
_CALL_NOUN = rf"{_A}{_KIND}(?:call|chat|talk)"

_LAUNCH = [
    r"call",
    r"call\s+(?:me|us)(?:\s+up|\s+back)?",
    r"ring\s+(?:me|us)(?:\s+up)?",
    r"phone\s+(?:me|us)",
    rf"(?:give|gimme)\s+(?:me|us)\s+{_CALL_NOUN}",
    rf"(?:start|open|launch|begin|arm|enable|set\s+up|do|have|make)\s+{_A}{_KIND}call(?:ing)?",
    rf"{_A}{_KIND}call(?:ing)?",
    r"(?:start\s+)?(?:live|voice)\s+calling",
    r"let'?s\s+(?:talk|speak|chat)(?:\s+live)?",
    rf"let'?s\s+(?:have|do|start|hop\s+on|jump\s+on|get\s+on|go\s+on)\s+{_CALL_NOUN}",
    rf"(?:hop|jump|get)\s+on\s+{_CALL_NOUN}",
    r"(?:talk|speak)\s+(?:to|with)\s+(?:me|us)",
    r"talk",
    rf"(?:need|want)\s+{_CALL_NOUN}",
]
_STATUS = [
    rf"{_A}{_KIND}call\s+status",
    rf"status\s+of\s+{_A}{_KIND}call",
    rf"(?:is|are)\s+{_A}{_KIND}call(?:s|ing)?\s+(?:ready|working|up|on|armed|available|"
    r"running|live|active|going\s+on)",
    rf"(?:is\s+there|any)\s+{_A}{_KIND}call\s+(?:running|going\s+on|live|active)",
]


def _compile(bodies: list[str]) -> re.Pattern[str]:
    return re.compile(rf"^{_LEAD}(?:{'|'.join(bodies)}){_TAIL}$")


_LAUNCH_RE = _compile(_LAUNCH)
_STATUS_RE = _compile(_STATUS)


def normalize(text: str) -> str:
    """The form intents are matched on (NFKC, lower case, straight apostrophes, single spaces)."""
    folded = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
    return _NOT_WORD.sub(" ", folded).strip()


def match_intent(text: str | None) -> Intent | None:
    """``"call"`` for a request to start a call, ``"status"`` for a question about it, else None.

    >>> match_intent("Can you call me?"), match_intent("this API call fails")
    ('call', None)
    """
    if not text or len(text) > MAX_INTENT_CHARS or text.lstrip().startswith("/"):
        return None
    words = normalize(text)
    if not words:
        return None
    if _STATUS_RE.match(words):
        return "status"
    if _LAUNCH_RE.match(words):
        return "call"
    return None


def is_call_intent(text: str | None) -> bool:
    """Whether ``text`` asks for a call (it counts as ``/call``)."""
    return match_intent(text) == "call"
