"""Markdown for people and the agent: ``handoff.md`` and ``transcript.md``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from bridgehost.handoff.artifact import Turn, marker_line, parse_time
from bridgehost.protocol.end_reasons import end_label

if TYPE_CHECKING:
    from bridgehost.handoff.artifact import HandoffArtifact


def describe_end(reason: str | None) -> str:
    """``"hung up from the call page (user_hangup)"``: the reason's label
    (:class:`~bridgehost.protocol.end_reasons.EndReason`); unknown reasons are shown as they
    are."""
    return end_label(reason)


def format_duration(seconds: float | None) -> str:
    """``"12 min 5 s"``, ``"45 s"``, ``"1 h 2 min"``; ``"unknown"`` for ``None``."""
    if seconds is None:
        return "unknown"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def format_time(value: str | None, *, with_date: bool = True) -> str:
    """An ISO timestamp as ``2025-06-01 14:03:05 UTC`` (or ``14:03:05``); raw if unparsable."""
    moment = parse_time(value)
    if moment is None:
        return value or "unknown"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if with_date else "%H:%M:%S")


def _section(title: str, lines: Iterable[str]) -> list[str]:
    body = list(lines)
    return [f"## {title}", "", *body, ""] if body else []


def _turn_lines(turns: Iterable[Turn]) -> list[str]:
    lines = []
    for turn in turns:
        who = "User" if turn.role == "user" else "Assistant"
        text = " ".join(turn.text.split())
        lines.append(f"**{who}** ({format_time(turn.at, with_date=False)}): {text}")
        lines.append("")
    return lines[:-1]


def _usage_line(artifact: HandoffArtifact) -> str | None:
    usage = artifact.usage
    if usage.estimated_cost_usd is None:
        return None
    tokens = usage.input_tokens + usage.output_tokens
    return (
        f"- Usage: {usage.input_audio_s / 60:.1f} min of the user's audio, "
        f"{usage.output_audio_s / 60:.1f} min of the assistant's, {tokens:,} text tokens; "
        f"estimated cost ${usage.estimated_cost_usd:.2f}"
    )


def render_handoff(artifact: HandoffArtifact) -> str:
    """``handoff.md``: marker line, heading, facts, summary, lists, notes, transcript."""
    when = format_time(artifact.started_at or artifact.ended_at)
    lines = [
        marker_line(artifact.call_id),
        "",
        f"# Voice call handoff — {when}",
        "",
        "A live voice call between the user and their voice assistant just ended. This is what "
        "was said and decided; the action items are for the Codex agent.",
        "",
        f"- Call: `{artifact.call_id}` (bridge `{artifact.bridge_id}`)",
        f"- Codex thread: `{artifact.thread_id}`"
        if artifact.thread_id
        else "- Codex thread: none bound",
        f"- Duration: {format_duration(artifact.duration_s)}, from "
        f"{format_time(artifact.started_at)} to {format_time(artifact.ended_at)}",
        f"- Ended: {describe_end(artifact.end_reason)}"
        + (f", by the {artifact.ended_by}" if artifact.ended_by else ""),
    ]
    if artifact.model:
        voice = f" (voice {artifact.voice})" if artifact.voice else ""
        lines.append(f"- Model: {artifact.model}{voice}")
    if usage := _usage_line(artifact):
        lines.append(usage)
    lines.append("")
    summary = [artifact.summary or "(no summary)"]
    if not artifact.summarized:
        summary += [
            "",
            f"> Not summarized automatically: {artifact.summary_error}. "
            "Decisions and action items were not extracted; read the transcript.",
        ]
    lines += _section("Summary", summary)
    lines += _section("Decisions", (f"- {d}" for d in artifact.decisions))
    lines += _section("Action items for the agent", (f"- [ ] {a}" for a in artifact.action_items))
    lines += _section("Open questions", (f"- {q}" for q in artifact.open_questions))
    lines += _section(
        "Notes sent in the chat during the call",
        (f"- ({format_time(n.at, with_date=False)}) {n.text}" for n in artifact.notes),
    )
    lines += _section(
        "Asked Codex during the call (already answered in this thread: build on these answers "
        "rather than repeat the work)",
        (
            f"- Q: {d.question}\n  A: {d.answer or '(none)'}"
            + (f" (Codex turn {d.turn_id})" if d.turn_id else "")
            + ("" if d.ok else " [did not complete]")
            for d in artifact.delegations
        ),
    )
    lines += _section("Problems during the call", (f"- {i}" for i in artifact.issues))
    lines += _transcript_section(artifact)
    return "\n".join(lines).rstrip() + "\n"


def _transcript_section(artifact: HandoffArtifact) -> list[str]:
    info = artifact.transcript
    if info.total_turns == 0:
        return _section("Transcript", ["(nothing was transcribed)"])
    if info.complete:
        head = [f"Full transcript ({info.total_turns} turns); also in `{info.path}`.", ""]
    else:
        head = [
            f"Excerpt: the last {len(info.turns)} of {info.total_turns} turns "
            f"({info.total_chars:,} characters in all). The full transcript is in "
            f"`{info.path}`.",
            "",
        ]
    return _section("Transcript", head + _turn_lines(info.turns))


def render_transcript(call_id: str, turns: Iterable[Turn]) -> str:
    """``transcript.md``: a heading, then one level-2 heading per turn with its server time."""
    lines = [f"# Call {call_id} — transcript", ""]
    count = 0
    for turn in turns:
        who = "User" if turn.role == "user" else "Assistant"
        lines += [f"## {who} ({format_time(turn.at)})", "", turn.text.strip(), ""]
        count += 1
    if not count:
        lines += ["(nothing was transcribed)", ""]
    return "\n".join(lines).rstrip() + "\n"
