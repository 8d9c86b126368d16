"""The handoff artifact: what a finished call leaves behind, for a person and for the agent.

:func:`build_artifact` reads a call's stored events (server time, sequence order), its row and
the chat notes from :class:`~bridgehost.state.bridge_store.BridgeStore` and returns an unsummarized
:class:`HandoffArtifact`; :mod:`bridgehost.handoff.summary` fills in the summary.
``to_json()`` is ``handoff.json``; ``to_markdown()`` is ``handoff.md`` and the text the Codex
thread receives, starting with the marker line ``bridgehost-handoff: <call_id>``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from bridgehost.basics import parse_iso, utc_iso

if TYPE_CHECKING:
    from bridgehost.config import BridgeConfig, PricesConfig
    from bridgehost.state.bridge_store import BridgeStore

SCHEMA_VERSION: Final = 1
"""The version of the artifact's JSON shape; bumped on any incompatible change."""

MARKER_PREFIX = "bridgehost-handoff: "
"""The first line of every handoff's Markdown is this prefix plus the call id."""

NOT_SUMMARIZED = "not summarized yet"


def marker_line(call_id: str) -> str:
    """The idempotency marker a handoff's Markdown starts with (``bridgehost-handoff: <id>``)."""
    return f"{MARKER_PREFIX}{call_id}"


class Turn(BaseModel):
    """One final transcript turn: who spoke, what was said, when (server time)."""

    model_config = ConfigDict(frozen=True)

    role: Literal["user", "assistant"]
    text: str
    at: str | None = None


class ChatNote(BaseModel):
    """Something the user sent to the Telegram chat while the call ran."""

    model_config = ConfigDict(frozen=True)

    text: str
    at: str | None = None


class Usage(BaseModel):
    """What the call used, summed over the backend's ``usage`` events, and a cost estimate.

    ``estimated_cost_usd`` prices each billed token class once at ``[handoff.prices]``, the
    input transcription included (:mod:`bridgehost.cost`); it is ``None`` when the backend
    reported no usage (the echo backend, or a call that ended before any response).
    """

    model_config = ConfigDict(frozen=True)

    input_audio_s: float = 0.0
    output_audio_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_cost_usd: float | None = None


class TranscriptInfo(BaseModel):
    """The transcript as the artifact carries it: inline in full, or an excerpt plus a path.

    :param turns: the turns carried inline (all of them, or the last ones that fit).
    :param complete: whether ``turns`` is the whole transcript.
    :param total_turns: how many turns the call had.
    :param total_chars: the length of all turns' text.
    :param path: the full ``transcript.md`` in the call's directory (always written).
    """

    model_config = ConfigDict(frozen=True)

    turns: list[Turn] = Field(default_factory=list)
    complete: bool = True
    total_turns: int = 0
    total_chars: int = 0
    path: str | None = None


class Delegation(BaseModel):
    """A question the voice model asked Codex during the call, and what Codex answered.

    :param turn_id: the Codex turn that answered (in the bound thread), if it ran.
    """

    model_config = ConfigDict(frozen=True)

    question: str
    answer: str = ""
    ok: bool = False
    turn_id: str | None = None


def _delegations(events: list[dict[str, Any]]) -> list[Delegation]:
    """Each ``delegation.started`` with its ``delegation.finished`` (if it finished)."""
    finished = {e.get("delegation_id"): e for e in events if e.get("type") == "delegation.finished"}
    out = []
    for event in events:
        if event.get("type") != "delegation.started":
            continue
        done = finished.get(event.get("delegation_id")) or {}
        out.append(
            Delegation(
                question=str(event.get("question") or ""),
                answer=str(done.get("answer") or ("" if done else "(no answer before the end)")),
                ok=bool(done.get("ok")),
                turn_id=done.get("turn_id") if isinstance(done.get("turn_id"), str) else None,
            )
        )
    return out


class HandoffArtifact(BaseModel):
    """A finished call's structured handoff (``schema_version`` 1)."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    call_id: str
    bridge_id: str
    thread_id: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    end_reason: str | None = None
    ended_by: str | None = None
    model: str | None = None
    voice: str | None = None
    usage: Usage = Field(default_factory=Usage)
    transcript: TranscriptInfo = Field(default_factory=TranscriptInfo)
    summary: str = ""
    decisions: list[str] = Field(default_factory=list)
    action_items: list[str] = Field(default_factory=list)
    open_questions: list[str] = Field(default_factory=list)
    notes: list[ChatNote] = Field(default_factory=list)
    delegations: list[Delegation] = Field(default_factory=list)
    """Questions asked of Codex during the call, already answered in the bound thread."""
    issues: list[str] = Field(default_factory=list)
    summarized: bool = False
    summary_error: str | None = NOT_SUMMARIZED
    created_at: str | None = None

    _all_turns: list[Turn] = PrivateAttr(default_factory=list)

    @property
    def full_transcript(self) -> list[Turn]:
        """Every turn of the call (only on an artifact built in this process)."""
        return list(self._all_turns) or list(self.transcript.turns)

    def marker(self) -> str:
        """The marker line for this call."""
        return marker_line(self.call_id)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``handoff.json``): plain types only."""
        return self.model_dump(mode="json")

    def to_markdown(self) -> str:
        """The readable form (``handoff.md``, and what the Codex thread receives)."""
        from bridgehost.handoff._markdown import render_handoff

        return render_handoff(self)

    def payload(self) -> dict[str, Any]:
        """What sinks receive: the JSON form plus ``markdown`` (the ``file`` sink writes it)."""
        return {**self.to_json(), "markdown": self.to_markdown()}

    def with_summary(
        self,
        *,
        summary: str,
        decisions: list[str],
        action_items: list[str],
        open_questions: list[str],
        error: str | None,
    ) -> HandoffArtifact:
        """A copy carrying a summary (``error`` set means the summary is a fallback)."""
        copy = self.model_copy(
            update={
                "summary": summary,
                "decisions": list(decisions),
                "action_items": list(action_items),
                "open_questions": list(open_questions),
                "summarized": error is None,
                "summary_error": error,
            }
        )
        copy._all_turns = list(self._all_turns)
        return copy


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime, or ``None``."""
    return parse_iso(value)


def estimate_cost(events: list[dict[str, Any]], prices: PricesConfig) -> float:
    """Estimated USD cost of a call's ``usage`` events at ``prices`` (each token class once,
    transcription included; see :func:`bridgehost.cost.cost_usd`)."""
    from bridgehost.cost import TokenUsage, cost_usd

    return round(cost_usd(TokenUsage.total(events), prices), 4)


def transcript_path(config: BridgeConfig, call_id: str) -> Path:
    """``{storage.root}/calls/{call_id}/transcript.md``, absolute."""
    return (Path(config.storage.root) / "calls" / call_id / "transcript.md").absolute()


def _usage(events: list[dict[str, Any]], prices: PricesConfig) -> Usage:
    reports = [e for e in events if e.get("type") == "usage"]
    if not reports:
        return Usage()
    summed = Usage(
        input_audio_s=round(sum(float(e.get("input_audio_s") or 0) for e in reports), 3),
        output_audio_s=round(sum(float(e.get("output_audio_s") or 0) for e in reports), 3),
        input_tokens=sum(int(e.get("input_tokens") or 0) for e in reports),
        output_tokens=sum(int(e.get("output_tokens") or 0) for e in reports),
    )
    return summed.model_copy(update={"estimated_cost_usd": estimate_cost(reports, prices)})


def _issues(events: list[dict[str, Any]]) -> list[str]:
    issues = []
    for event in events:
        kind = event.get("type")
        if kind == "transcript.unavailable":
            issues.append(f"transcript unavailable: {event.get('reason') or 'no reason given'}")
        elif kind == "call.error":
            issues.append(f"error {event.get('code') or ''}: {event.get('message') or ''}".strip())
        elif kind == "call.start_failed":
            issues.append(f"call failed to start: {event.get('message') or ''}".strip())
    return issues


def _inline(turns: list[Turn], limit: int) -> tuple[list[Turn], bool]:
    """All turns if their text fits in ``limit`` characters, else the last ones that fit."""
    if sum(len(t.text) for t in turns) <= limit:
        return list(turns), True
    kept: list[Turn] = []
    used = 0
    for turn in reversed(turns):
        if used + len(turn.text) > limit:
            break
        kept.append(turn)
        used += len(turn.text)
    return kept[::-1], False


def _notes(store: BridgeStore, call_id: str, events: list[dict[str, Any]]) -> list[ChatNote]:
    rows = store.db.query(
        "SELECT text, created_at FROM call_notes WHERE call_id = ? ORDER BY id", (call_id,)
    )
    notes = [ChatNote(text=row["text"], at=row["created_at"]) for row in rows]
    known = {note.text for note in notes}
    notes += [
        ChatNote(text=e["text"], at=e.get("at"))
        for e in events
        if e.get("type") in ("chat.message", "chat.note")
        and e.get("text")
        and e["text"] not in known
    ]
    return notes


def build_artifact(store: BridgeStore, call_id: str, config: BridgeConfig) -> HandoffArtifact:
    """Build a call's (unsummarized) artifact from what ``store`` holds about it.

    Times are the gateway's server stamps; the duration runs from ``call.started`` to
    ``call.ended`` (else the gateway's connected time). The transcript is inline when its text
    fits ``handoff.max_inline_transcript_chars``, else the last turns that fit, plus the path of
    the full ``transcript.md``.
    """
    events = store.call_events(call_id)
    row = store.call(call_id) or {}
    started = next((e for e in events if e.get("type") == "call.started"), None)
    ended = next((e for e in reversed(events) if e.get("type") == "call.ended"), None)
    started_at = (started or {}).get("at") or row.get("started_at")
    ended_at = (ended or {}).get("at") or row.get("ended_at")
    begin, end = parse_time(started_at), parse_time(ended_at)
    if begin and end:
        duration: float | None = round(max(0.0, (end - begin).total_seconds()), 3)
    elif ended and ended.get("duration_ms") is not None:
        duration = round(int(ended["duration_ms"]) / 1000, 3)
    else:
        duration = None
    turns = [
        Turn(
            role="user" if e["type"].startswith("user") else "assistant",
            text=str(e.get("text") or ""),
            at=e.get("at"),
        )
        for e in events
        if e.get("type") in ("user.transcript.final", "assistant.transcript.final")
        and str(e.get("text") or "").strip()
    ]
    inline, complete = _inline(turns, config.handoff.max_inline_transcript_chars)
    thread_id = row.get("thread_id") or config.codex.thread_id or store.binding().thread_id
    artifact = HandoffArtifact(
        call_id=call_id,
        bridge_id=config.realtime.bridge_id,
        thread_id=thread_id,
        started_at=started_at,
        ended_at=ended_at,
        duration_s=duration,
        end_reason=(ended or {}).get("reason") or row.get("end_reason"),
        ended_by=(ended or {}).get("ended_by") or row.get("ended_by"),
        model=config.realtime.model,
        voice=config.realtime.voice,
        usage=_usage(events, config.handoff.prices),
        transcript=TranscriptInfo(
            turns=inline,
            complete=complete,
            total_turns=len(turns),
            total_chars=sum(len(t.text) for t in turns),
            path=str(transcript_path(config, call_id)),
        ),
        notes=_notes(store, call_id, events),
        delegations=_delegations(events),
        issues=_issues(events),
        created_at=utc_iso(),
    )
    artifact._all_turns = turns
    return artifact
