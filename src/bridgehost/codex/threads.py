"""Codex threads as bridgehost sees them: the list to bind from, and a thread's recent turns.

Everything is read through the app-server API (``thread/list``, ``thread/read``,
``thread/turns/list`` with ``itemsView: "full"``), which also works for threads that are not
loaded anywhere, and while another process holds a thread's writer lock.

:func:`recent_turns` builds the recent-turns part of the call context: user
and assistant messages of the thread, newest last, without aborted turns, without empty texts or
``<turn_aborted>`` markers, and without assistant messages whose phase is not the final answer.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bridgehost.codex.appserver import AppServerClient

ABORTED_STATUSES = frozenset({"interrupted"})
"""Turn statuses whose messages are left out of recent turns."""

_MAX_PAGES = 10


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """One thread in ``bridgectl threads``.

    :param id: the thread id (a UUIDv7).
    :param title: the thread's name, else the first line of its preview, else ``(untitled)``.
    :param preview: usually the first user message.
    :param cwd: the working directory the thread was started in.
    :param updated_at: when the thread last changed (UTC).
    :param name: the user-given name, if any.
    :param status: ``notLoaded``, ``idle``, ``active``… as the server reports it.
    """

    id: str
    title: str
    preview: str
    cwd: str
    updated_at: datetime
    name: str | None = None
    status: str = "notLoaded"


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of a thread's recent history (the spec calls these "recent turns").

    :param role: ``user`` or ``assistant``.
    :param text: the message text, stripped.
    :param timestamp: when the message completed (UTC), if known.
    :param turn_id: the Codex turn the message belongs to.
    """

    role: Literal["user", "assistant"]
    text: str
    timestamp: datetime | None
    turn_id: str
    source: str = "thread"


def _utc(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if isinstance(seconds, int | float) else None


def thread_title(thread: dict[str, Any]) -> str:
    """The name of a thread as a person reads it."""
    name = (thread.get("name") or "").strip()
    if name:
        return name
    for line in str(thread.get("preview") or "").splitlines():
        if line.strip():
            return line.strip()
    return "(untitled)"


def summarize_thread(thread: dict[str, Any]) -> ThreadSummary:
    """A :class:`ThreadSummary` from an app-server ``Thread`` object."""
    status = thread.get("status")
    return ThreadSummary(
        id=str(thread["id"]),
        title=thread_title(thread),
        preview=str(thread.get("preview") or ""),
        cwd=str(thread.get("cwd") or ""),
        updated_at=_utc(thread.get("updatedAt") or thread.get("createdAt")) or datetime.now(UTC),
        name=thread.get("name") or None,
        status=str(status.get("type")) if isinstance(status, dict) else "notLoaded",
    )


async def list_threads(client: AppServerClient, limit: int = 20) -> list[ThreadSummary]:
    """The most recently updated threads, newest first (archived ones left out)."""
    page = await client.request(
        "thread/list", {"limit": max(1, limit), "sortKey": "updated_at", "sortDirection": "desc"}
    )
    return [summarize_thread(t) for t in (page.get("data") or [])][:limit]


async def latest_thread(client: AppServerClient) -> ThreadSummary | None:
    """The most recently updated thread, or None when there is none."""
    threads = await list_threads(client, limit=1)
    return threads[0] if threads else None


async def read_thread(client: AppServerClient, thread_id: str) -> ThreadSummary:
    """One thread's metadata; :class:`CodexThreadNotFound` when it does not exist."""
    result = await client.request("thread/read", {"threadId": thread_id})
    return summarize_thread(result["thread"])


def item_text(item: dict[str, Any]) -> str:
    """The text of a ``userMessage`` or ``agentMessage`` item ("" for anything else)."""
    if item.get("type") == "agentMessage":
        return str(item.get("text") or "").strip()
    if item.get("type") == "userMessage":
        parts = [
            str(p.get("text") or "")
            for p in item.get("content") or []
            if isinstance(p, dict) and p.get("type") == "text"
        ]
        return "\n".join(parts).strip()
    return ""


def _messages(turn: dict[str, Any]) -> list[Turn]:
    """The user and final assistant messages of one turn, in order."""
    out: list[Turn] = []
    for item in turn.get("items") or []:
        kind = item.get("type")
        if kind not in ("userMessage", "agentMessage"):
            continue
        if kind == "agentMessage" and item.get("phase") not in (None, "final_answer"):
            continue
        text = item_text(item)
        if not text or text.startswith("<turn_aborted>"):
            continue
        stamp = item.get("completedAtMs") or item.get("startedAtMs")
        when = (
            _utc(stamp / 1000)
            if isinstance(stamp, int | float)
            else _utc(turn.get("completedAt") or turn.get("startedAt"))
        )
        out.append(
            Turn(
                role="user" if kind == "userMessage" else "assistant",
                text=text,
                timestamp=when,
                turn_id=str(turn.get("id") or ""),
            )
        )
    return out


async def iter_turns(
    client: AppServerClient, thread_id: str, *, page_size: int = 20, max_turns: int = 200
) -> AsyncGenerator[dict[str, Any], None]:
    """A thread's turns with full items, newest first, at most ``max_turns``."""
    seen = 0
    cursor = None
    for _ in range(_MAX_PAGES):
        params: dict[str, Any] = {
            "threadId": thread_id,
            "itemsView": "full",
            "sortDirection": "desc",
            "limit": max(1, min(page_size, max_turns - seen)),
        }
        if cursor:
            params["cursor"] = cursor
        page = await client.request("thread/turns/list", params)
        for turn in page.get("data") or []:
            if seen >= max_turns:
                return
            seen += 1
            yield turn
        cursor = page.get("nextCursor")
        if not cursor:
            return


async def recent_turns(client: AppServerClient, thread_id: str, limit: int = 10) -> list[Turn]:
    """The last ``limit`` user/assistant messages of a thread, oldest first."""
    newest_first: list[Turn] = []
    if limit <= 0:
        return newest_first
    turns = iter_turns(client, thread_id, page_size=max(limit, 5), max_turns=limit * 10)
    async with aclosing(turns):
        async for turn in turns:
            if turn.get("status") not in ABORTED_STATUSES:
                newest_first.extend(reversed(_messages(turn)))
            if len(newest_first) >= limit:
                break
    return list(reversed(newest_first[:limit]))
