"""What the voice model is told about the bound Codex thread (the call's context parts).

Two parts, each short on purpose (the original sent whole turns to the browser and the realtime
provider): a session summary (thread, working directory, latest user focus, latest
assistant answer) and the thread's last turns, every one trimmed to about 180 characters.
"""

from __future__ import annotations

import re

from bridgehost.codex._marker import strip_marker
from bridgehost.codex.appserver import AppServerClient
from bridgehost.codex.threads import Turn, read_thread, recent_turns
from bridgehost.providers import ContextPart

TRIM_CHARS = 180
SUMMARY_TITLE = "Codex session"
TURNS_TITLE = "Recent turns in the bound Codex thread"


def trim(text: str, limit: int = TRIM_CHARS) -> str:
    """Whitespace collapsed, cut to ``limit`` characters with an ellipsis."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _clean(turn: Turn) -> str:
    """A message as the voice model should read it (our own handoff marker removed)."""
    text = strip_marker(turn.text)
    return f"(voice call handoff) {text}" if text != turn.text else text


async def call_context_parts(
    client: AppServerClient, thread_id: str, *, limit: int = 10, trim_chars: int = TRIM_CHARS
) -> list[ContextPart]:
    """The session summary and the last ``limit`` turns of ``thread_id`` as context parts.

    :raises CodexThreadNotFound: the thread does not exist.
    """
    thread = await read_thread(client, thread_id)
    turns = await recent_turns(client, thread_id, limit=limit)
    last_user = next((t for t in reversed(turns) if t.role == "user"), None)
    last_assistant = next((t for t in reversed(turns) if t.role == "assistant"), None)
    lines = [
        f"Bound Codex thread {thread.id} ({trim(thread.title, 80)}), "
        f"working directory {thread.cwd or 'unknown'}."
    ]
    lines.append(
        "Latest user focus: " + (trim(_clean(last_user), trim_chars) if last_user else "none yet.")
    )
    lines.append(
        "Latest assistant response: "
        + (trim(_clean(last_assistant), trim_chars) if last_assistant else "none yet.")
    )
    parts = [ContextPart(title=SUMMARY_TITLE, text="\n".join(lines), priority=80)]
    if turns:
        body = "\n".join(f"{t.role}: {trim(_clean(t), trim_chars)}" for t in turns)
        parts.append(ContextPart(title=TURNS_TITLE, text=body, priority=60))
    return parts
