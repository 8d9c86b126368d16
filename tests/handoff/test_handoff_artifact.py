"""The handoff artifact built from a stored event sequence: JSON, Markdown, transcript, cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from handoff_helpers import CONVERSATION, make_config, seed_call

from bridgehost.handoff import HandoffArtifact, build_artifact, marker_line
from bridgehost.handoff._markdown import render_transcript
from bridgehost.state.bridge_store import BridgeStore


@pytest.fixture
def store(tmp_path: Path):
    opened = BridgeStore.open(tmp_path)
    yield opened
    opened.close()


def test_artifact_json_from_stored_events(store: BridgeStore, tmp_path: Path) -> None:
    seed_call(
        store,
        "call-1",
        notes=["also check the nightly job"],
        usage=[
            {
                "input_audio_s": 60.0,
                "output_audio_s": 30.0,
                "input_tokens": 1000,
                "output_tokens": 500,
            },
            {
                "input_audio_s": 60.0,
                "output_audio_s": 90.0,
                "input_tokens": 0,
                "output_tokens": 500,
            },
        ],
    )
    store.record_event(
        "call-1",
        {
            "seq": 99,
            "at": "2026-03-02T14:04:00.000+00:00",
            "type": "call.error",
            "code": "upstream",
            "message": "blip",
        },
    )
    config = make_config(tmp_path)
    artifact = build_artifact(store, "call-1", config)
    data = artifact.to_json()
    assert data["schema_version"] == 1
    assert data["call_id"] == "call-1" and data["bridge_id"] == "test-bridge"
    assert data["thread_id"] == "thread-abc"
    assert data["started_at"] == "2026-03-02T14:03:05.000+00:00"
    # 4 turns of 5 s, then two usage events of 0.5 s each before call.ended (5 s later).
    assert data["ended_at"] == "2026-03-02T14:03:31.000+00:00"
    assert data["duration_s"] == 26.0
    assert (data["end_reason"], data["ended_by"]) == ("user_hangup", "browser")
    assert data["model"] == config.realtime.model and data["voice"] == config.realtime.voice
    turns = data["transcript"]["turns"]
    assert [(t["role"], t["text"]) for t in turns] == CONVERSATION
    assert data["transcript"]["complete"] is True and data["transcript"]["total_turns"] == 4
    assert data["transcript"]["path"] == str(
        (tmp_path / "calls" / "call-1" / "transcript.md").absolute()
    )
    assert [n["text"] for n in data["notes"]] == ["also check the nightly job"]
    assert data["issues"] == ["error upstream: blip"]
    assert data["summarized"] is False and data["summary_error"]
    assert data["decisions"] == [] and data["action_items"] == []
    json.dumps(data)  # plain JSON types only
    assert HandoffArtifact.model_validate(data).to_json() == data


def test_cost_estimate_prices_each_token_class_once(store: BridgeStore, tmp_path: Path) -> None:
    seed_call(
        store,
        "call-2",
        usage=[
            {  # a response: input_tokens (3.5M) already holds the audio and the cached tokens
                "input_audio_s": 100_000.0,
                "output_audio_s": 50_000.0,
                "input_tokens": 3_500_000,
                "output_tokens": 2_000_000,
                "text_input_tokens": 1_000_000,
                "audio_input_tokens": 1_000_000,
                "cached_input_tokens": 1_500_000,
                "text_output_tokens": 1_000_000,
                "audio_output_tokens": 1_000_000,
            },
            {"transcription_input_tokens": 1_000_000, "transcription_output_tokens": 1_000_000},
            {"transcription_s": 120.0},
        ],
    )
    prices = {
        "text_input_usd_per_million_tokens": 1.0,
        "audio_input_usd_per_million_tokens": 10.0,
        "cached_input_usd_per_million_tokens": 0.1,
        "text_output_usd_per_million_tokens": 3.0,
        "audio_output_usd_per_million_tokens": 20.0,
        "transcription_input_usd_per_million_tokens": 5.0,
        "transcription_output_usd_per_million_tokens": 7.0,
        "transcription_usd_per_minute": 0.5,
    }
    config = make_config(tmp_path, prices=prices)
    usage = build_artifact(store, "call-2", config).usage
    assert (usage.input_tokens, usage.output_tokens) == (3_500_000, 2_000_000)
    # text in 1 + audio in 10 + cached 1.5 × 0.1 + text out 3 + audio out 20
    # + transcription 5 + 7 + 2 min × 0.5; the 3.5M input total is not priced again
    assert usage.estimated_cost_usd == pytest.approx(1 + 10 + 0.15 + 3 + 20 + 5 + 7 + 1)


def test_usage_with_totals_only_is_split_by_its_audio_seconds(
    store: BridgeStore, tmp_path: Path
) -> None:
    seed_call(
        store,
        "call-4",
        usage=[
            {  # 100 s of caller audio = 1000 tokens; 50 s of model audio = 1000 tokens
                "input_audio_s": 100.0,
                "output_audio_s": 50.0,
                "input_tokens": 3000,
                "output_tokens": 1500,
            }
        ],
    )
    prices = {
        "text_input_usd_per_million_tokens": 1000.0,
        "audio_input_usd_per_million_tokens": 10000.0,
        "text_output_usd_per_million_tokens": 3000.0,
        "audio_output_usd_per_million_tokens": 20000.0,
    }
    usage = build_artifact(store, "call-4", make_config(tmp_path, prices=prices)).usage
    # 2000 text in × $1000/M + 1000 audio in × $10000/M + 500 text out + 1000 audio out
    assert usage.estimated_cost_usd == pytest.approx(2 + 10 + 1.5 + 20)


def test_no_usage_reported_means_no_cost(store: BridgeStore, tmp_path: Path) -> None:
    seed_call(store, "call-3")
    assert build_artifact(store, "call-3", make_config(tmp_path)).usage.estimated_cost_usd is None


def test_long_transcript_is_an_excerpt_plus_the_path(store: BridgeStore, tmp_path: Path) -> None:
    turns = [
        ("user" if i % 2 == 0 else "assistant", f"turn {i:02d} " + "x" * 90) for i in range(30)
    ]
    seed_call(store, "call-4", turns=turns)
    artifact = build_artifact(
        store, "call-4", make_config(tmp_path, max_inline_transcript_chars=500)
    )
    info = artifact.transcript
    assert info.complete is False and info.total_turns == 30
    assert info.total_chars == sum(len(t) for _, t in turns)
    assert sum(len(t.text) for t in info.turns) <= 500
    assert [t.text for t in info.turns] == [t for _, t in turns[-len(info.turns) :]]
    assert len(artifact.full_transcript) == 30
    markdown = artifact.to_markdown()
    assert f"the last {len(info.turns)} of 30 turns" in markdown
    assert info.path is not None and f"`{info.path}`" in markdown
    assert "turn 00" not in markdown and "turn 29" in markdown


def test_markdown_for_people_and_the_agent(store: BridgeStore, tmp_path: Path) -> None:
    seed_call(
        store,
        "call-5",
        notes=["the staging key rotated"],
        usage=[{"input_audio_s": 30.0, "output_audio_s": 30.0}],
    )
    artifact = build_artifact(store, "call-5", make_config(tmp_path)).with_summary(
        summary="We looked at the failing build and agreed to pin libfoo.",
        decisions=["Ship on Friday"],
        action_items=["Pin libfoo to 1.4", "Open a PR"],
        open_questions=["Who reviews the PR?"],
        error=None,
    )
    markdown = artifact.to_markdown()
    lines = markdown.splitlines()
    assert lines[0] == marker_line("call-5") == "bridgehost-handoff: call-5"
    assert lines[2].startswith("# Voice call handoff — 2026-03-02 14:03:05 UTC")
    for expected in (
        "## Summary",
        "We looked at the failing build",
        "## Decisions",
        "- Ship on Friday",
        "## Action items for the agent",
        "- [ ] Pin libfoo to 1.4",
        "- [ ] Open a PR",
        "## Open questions",
        "- Who reviews the PR?",
        "## Notes sent in the chat during the call",
        "the staging key rotated",
        "## Transcript",
        "**User** (14:03:10): Please look at the failing build",
        "- Codex thread: `thread-abc`",
        "hung up from the call page (user_hangup)",
        "estimated cost $",
    ):
        assert expected in markdown, expected
    assert "Not summarized" not in markdown
    assert (
        markdown.index("## Summary")
        < markdown.index("## Decisions")
        < markdown.index("## Action items")
        < markdown.index("## Open questions")
        < markdown.index("## Transcript")
    )
    payload = artifact.payload()
    assert payload["markdown"] == markdown and payload["summarized"] is True


def test_unsummarized_markdown_says_so_and_keeps_the_transcript(
    store: BridgeStore, tmp_path: Path
) -> None:
    seed_call(store, "call-6")
    artifact = build_artifact(store, "call-6", make_config(tmp_path)).with_summary(
        summary="fallback",
        decisions=[],
        action_items=[],
        open_questions=[],
        error="no OPENAI_API_KEY is configured",
    )
    markdown = artifact.to_markdown()
    assert "Not summarized automatically: no OPENAI_API_KEY is configured" in markdown
    assert "## Decisions" not in markdown and "## Action items" not in markdown
    assert "pin libfoo to 1.4 and open a pull request" in markdown


def test_transcript_markdown(store: BridgeStore, tmp_path: Path) -> None:
    seed_call(store, "call-7")
    artifact = build_artifact(store, "call-7", make_config(tmp_path))
    text = render_transcript("call-7", artifact.full_transcript)
    assert text.startswith("# Call call-7 — transcript\n")
    assert "## User (2026-03-02 14:03:10 UTC)\n\nPlease look at the failing build" in text
    assert text.count("## Assistant (") == 2
    assert "(nothing was transcribed)" in render_transcript("x", [])
