"""GPT-Live transcript fragments grouped into turns, and the caller's words for a delegation.

GPT-Live streams ``session.input_transcript.delta`` (the caller) and
``session.output_transcript.delta`` (the model) with ``start_ms``/``end_ms`` on the session
timeline, and no item ids, no "done" event and no turn boundaries; both speakers can grow at
once (``reference/gpt-live.md`` §6). :class:`Transcript` keeps every fragment and closes a turn
when

- the same speaker resumes after a gap of at least ``turn_gap_ms`` on the timeline;
- the other speaker starts after this turn's last fragment ended (a change of speaker; while
  they overlap, a barge-in, both turns stay open);
- nothing arrived for ``turn_gap_ms`` of wall-clock time (:meth:`Transcript.due`), or the
  session ends (:meth:`Transcript.flush`).

Deltas are appended exactly as received (they carry their own spaces).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["user", "assistant"]
MAX_TURN_CHARS = 8000


@dataclass(slots=True)
class Turn:
    """One speaker's turn: its text so far and where it lies on the session timeline."""

    role: Role
    text: str
    start_ms: int
    end_ms: int
    touched: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class Fragment:
    """One transcript delta as received."""

    role: Role
    text: str
    start_ms: int
    end_ms: int


class Transcript:
    """The call's transcript as fragments, grouped into turns; see the module docstring."""

    def __init__(self, turn_gap_ms: int = 800) -> None:
        self.turn_gap_ms = turn_gap_ms
        self.fragments: list[Fragment] = []
        self._open: dict[Role, Turn] = {}
        #: The highest ``end_ms`` seen from either speaker: how far the timeline is known.
        self.timeline_ms = 0
        #: When the last fragment arrived (monotonic seconds).
        self.last_received = time.monotonic()

    def add(self, role: Role, delta: str, start_ms: int, end_ms: int) -> list[Turn]:
        """Record one delta; return the turns it closed (oldest first)."""
        end_ms = max(start_ms, end_ms)
        self.fragments.append(Fragment(role, delta, start_ms, end_ms))
        self.timeline_ms = max(self.timeline_ms, end_ms)
        self.last_received = time.monotonic()
        closed: list[Turn] = []
        other: Role = "assistant" if role == "user" else "user"
        theirs = self._open.get(other)
        if theirs is not None and theirs.end_ms <= start_ms:
            closed.append(self._open.pop(other))
        mine = self._open.get(role)
        if mine is not None and start_ms - mine.end_ms >= self.turn_gap_ms:
            closed.append(self._open.pop(role))
            mine = None
        if mine is None:
            self._open[role] = Turn(role, delta, start_ms, end_ms)
        else:
            mine.text = (mine.text + delta)[:MAX_TURN_CHARS]
            mine.end_ms = max(mine.end_ms, end_ms)
            mine.touched = time.monotonic()
        return sorted(closed, key=lambda turn: turn.start_ms)

    def due(self, now: float | None = None) -> list[Turn]:
        """Close and return the turns nobody added to for ``turn_gap_ms`` of wall-clock time."""
        now = time.monotonic() if now is None else now
        stale = [
            role
            for role, turn in self._open.items()
            if now - turn.touched >= self.turn_gap_ms / 1000
        ]
        return sorted((self._open.pop(role) for role in stale), key=lambda t: t.start_ms)

    def flush(self) -> list[Turn]:
        """Close and return every open turn (the session ended)."""
        turns = sorted(self._open.values(), key=lambda turn: turn.start_ms)
        self._open.clear()
        return turns

    def covers(self, offset_ms: int, *, quiet_s: float | None = None) -> bool:
        """Whether the transcript has reached ``offset_ms`` on the timeline, or (with
        ``quiet_s``) nothing has arrived for that long: the caller stopped before it."""
        if self.timeline_ms >= offset_ms:
            return True
        return quiet_s is not None and time.monotonic() - self.last_received >= quiet_s

    def caller_words(self, since_ms: int, until_ms: int) -> str:
        """What the caller said in ``[since_ms, until_ms]`` (fragments that started there)."""
        words, previous = "", None
        for index, fragment in enumerate(self.fragments):
            if fragment.role != "user" or not since_ms <= fragment.start_ms <= until_ms:
                continue
            new_turn = previous is not None and (
                index != previous + 1
                or fragment.start_ms - self.fragments[previous].end_ms >= self.turn_gap_ms
            )
            words += (" " if new_turn else "") + fragment.text
            previous = index
        return " ".join(words.split())

    def lines(self, until_ms: int, max_chars: int = 6000) -> str:
        """The conversation up to ``until_ms`` as ``Caller:``/``Assistant:`` lines (the most
        recent ``max_chars``)."""
        out: list[str] = []
        for fragment in self.fragments:
            if fragment.start_ms > until_ms:
                continue
            speaker = "Caller" if fragment.role == "user" else "Assistant"
            if out and out[-1].startswith(f"{speaker}: "):
                out[-1] += fragment.text
            else:
                out.append(f"{speaker}: {fragment.text.lstrip()}")
        text = "\n".join(" ".join(line.split()) for line in out)
        return text[-max_chars:]


__all__ = ["Fragment", "Role", "Transcript", "Turn"]
