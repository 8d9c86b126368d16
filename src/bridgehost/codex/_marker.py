"""The marker that makes a handoff findable, and so idempotent by call id.

Every handoff text starts with the line ``bridgehost-handoff: <call_id>``. A visible turn also
carries the call id as its ``clientUserMessageId`` (the user message's ``clientId``), and each
append is recorded as a thread attachment (``attachmentType`` ``bridgehost.handoff``,
``identityKey`` ``bridgehost-handoff:<call_id>``), which the app-server stores idempotently.

Injected items are not visible through the app-server's item APIs, so for the window between an
injection and its attachment record (a crash) the rollout file is the last place to look: its
``response_item`` lines hold exactly what the model sees. Lines are parsed as JSON, never matched
as escaped text (the original implementation's check never fired for that reason).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog

from bridgehost.basics import is_call_id, validate_call_id
from bridgehost.codex._errors import CodexError

if TYPE_CHECKING:
    from bridgehost.codex.appserver import AppServerClient

log = structlog.get_logger("bridgehost.codex.handoff")

HandoffMode = Literal["turn", "inject"]
"""How a handoff reaches a thread: as a new turn, or injected into the thread's history."""

MARKER_PREFIX = "bridgehost-handoff: "
ATTACHMENT_TYPE = "bridgehost.handoff"
ROLLOUT_TAIL_BYTES = 8 * 1024 * 1024
"""How much of the end of a rollout file the fallback check reads."""


def check_call_id(call_id: str) -> str:
    """``call_id`` if it can go into a marker line; ValueError otherwise."""
    return validate_call_id(call_id)


def marker_line(call_id: str) -> str:
    """The first line of every handoff text for ``call_id``."""
    return MARKER_PREFIX + call_id


def identity_key(call_id: str) -> str:
    """The attachment identity key and ``clientUserMessageId`` of a handoff."""
    return f"bridgehost-handoff:{call_id}"


def with_marker(text: str, call_id: str) -> str:
    """``text`` with the marker line in front (not twice)."""
    line = marker_line(call_id)
    body = text.split("\n", 1)[1] if text.split("\n", 1)[0].strip() == line else text
    return f"{line}\n{body}"


def marker_of(text: str) -> str | None:
    """The call id in a text's marker line, if its first line is one."""
    first = text.split("\n", 1)[0].strip()
    if first.startswith(MARKER_PREFIX):
        call_id = first[len(MARKER_PREFIX) :].strip()
        return call_id if is_call_id(call_id) else None
    return None


def strip_marker(text: str) -> str:
    """``text`` without a leading marker line."""
    return text.split("\n", 1)[1].lstrip("\n") if marker_of(text) else text


def _is_marked_user_message(payload: Any, line: str) -> bool:
    if not isinstance(payload, dict) or payload.get("type") != "message":
        return False
    if payload.get("role") != "user":
        return False
    for part in payload.get("content") or []:
        if isinstance(part, dict) and str(part.get("text") or "").split("\n", 1)[0] == line:
            return True
    return False


def rollout_has_marker(
    path: str | os.PathLike[str] | None, call_id: str, tail_bytes: int = ROLLOUT_TAIL_BYTES
) -> bool:
    """Whether the rollout at ``path`` holds a user message that starts with the marker."""
    if not path:
        return False
    line = marker_line(call_id)
    try:
        with Path(path).open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - tail_bytes))
            data = f.read()
    except OSError:
        return False
    needle = line.encode()
    for raw in data.splitlines():
        if needle not in raw:
            continue
        try:
            record = json.loads(raw)
        except ValueError:  # the first, partial line of a tail
            continue
        if (
            isinstance(record, dict)
            and record.get("type") == "response_item"
            and _is_marked_user_message(record.get("payload"), line)
        ):
            return True
    return False


async def find_attachment(
    client: AppServerClient, thread_id: str, call_id: str
) -> dict[str, Any] | None:
    """The attachment record of an append of ``call_id`` to the thread, if there is one."""
    key, cursor = identity_key(call_id), None
    for _ in range(10):
        params: dict[str, Any] = {"threadId": thread_id, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = await client.request("thread/attachment/list", params)
        for att in page.get("data") or []:
            if att.get("attachmentType") == ATTACHMENT_TYPE and att.get("identityKey") == key:
                return dict(att)
        cursor = page.get("nextCursor")
        if not cursor:
            break
    return None


async def record_attachment(
    client: AppServerClient, thread_id: str, call_id: str, mode: HandoffMode, turn_id: str | None
) -> None:
    """Remember the append as a thread attachment (best effort: the marker remains)."""
    try:
        await client.request(
            "thread/attachment/add",
            {
                "threadId": thread_id,
                "attachmentType": ATTACHMENT_TYPE,
                "identityKey": identity_key(call_id),
                "payload": {
                    "callId": call_id,
                    "mode": mode,
                    "turnId": turn_id,
                    "appendedAt": int(time.time()),
                },
            },
        )
    except CodexError as exc:
        log.warning("codex.handoff_record_failed", call_id=call_id, error=str(exc))
