"""The voice model's instructions: a fixed persona plus the call context parts.

Instructions are assembled on the server and given to the backend with the session config; the
browser never sees or sets them. Parts come from the ``bridgehost_call_context`` hooks (through
the bridge); when they do not fit, the lowest-priority parts are dropped first and the last one
kept is cut at a line boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MAX_INSTRUCTIONS_CHARS = 12_000

PERSONA = """\
You are the live voice line to the user's own Codex coding agent. You are a sidecar for an
existing Codex thread, not that thread itself: you discuss, clarify, plan and capture decisions.
The call is only between you and the Telegram user who opened it. Do not claim to run commands,
edit files or contact anyone. Be brief and conversational; ask one question at a time. When the
call ends, a handoff with the summary, decisions and action items goes to the Codex thread, so
make decisions and next steps explicit before the user hangs up."""


def _clean_parts(parts: Iterable[Any]) -> list[tuple[int, str, str]]:
    clean = []
    for part in parts:
        if not isinstance(part, Mapping):
            continue
        title, text = part.get("title"), part.get("text")
        priority = part.get("priority", 50)
        if isinstance(title, str) and isinstance(text, str) and text.strip():
            clean.append((priority if isinstance(priority, int) else 50, title[:200], text))
    return sorted(clean, key=lambda p: -p[0])


def build_instructions(parts: Iterable[Any], *, limit: int = MAX_INSTRUCTIONS_CHARS) -> str:
    """The persona followed by as many context parts as fit in ``limit`` characters."""
    text = PERSONA
    for _priority, title, body in _clean_parts(parts):
        section = f"\n\n## {title}\n{body.strip()}"
        room = limit - len(text)
        if room <= len(title) + 20:
            break
        if len(section) > room:
            cut = section[:room].rsplit("\n", 1)[0]
            text += cut + "\n[trimmed]"
            break
        text += section
    return text
