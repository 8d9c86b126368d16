"""The summary through the fake OpenAI Responses API, and every way it can fail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest
from handoff_helpers import make_config, seed_call

from bridgehost.config import Secrets
from bridgehost.handoff import SUMMARY_SCHEMA, HandoffArtifact, Summarizer, build_artifact
from bridgehost.state.bridge_store import BridgeStore
from fakes.openai_api import FakeOpenAI

pytestmark = pytest.mark.timeout(30)

KEY = "sk-test-summary-0123456789"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=KEY) as server:
        yield server


@pytest.fixture
def artifact(tmp_path: Path) -> HandoffArtifact:
    store = BridgeStore.open(tmp_path)
    try:
        seed_call(store, "call-s", notes=["remember the nightly job"])
        return build_artifact(store, "call-s", make_config(tmp_path))
    finally:
        store.close()


def summarizer(fake: FakeOpenAI, **kwargs) -> Summarizer:
    return Summarizer(
        model="gpt-summary-test",
        api_key=kwargs.pop("api_key", KEY),
        base_url=fake.base_url,
        **kwargs,
    )


async def test_structured_summary_is_parsed(fake: FakeOpenAI, artifact: HandoffArtifact) -> None:
    result = await summarizer(fake).summarize(artifact)
    assert result.summarized is True and result.summary_error is None
    assert result.summary.startswith("Summary:")
    assert result.decisions and result.action_items and result.open_questions
    assert result.transcript == artifact.transcript
    body = fake.responses_requests[-1]
    assert body["model"] == "gpt-summary-test" and body["store"] is False
    fmt = body["text"]["format"]
    assert (fmt["type"], fmt["strict"]) == ("json_schema", True)
    assert fmt["schema"] == SUMMARY_SCHEMA
    assert "pin libfoo to 1.4" in body["input"] and "remember the nightly job" in body["input"]
    jsonschema.validate(
        {
            "summary": result.summary,
            "decisions": result.decisions,
            "action_items": result.action_items,
            "open_questions": result.open_questions,
        },
        SUMMARY_SCHEMA,
    )
    assert "## Action items for the agent\n\n- [ ] " in result.to_markdown()


async def test_model_answer_is_used_verbatim(fake: FakeOpenAI, artifact: HandoffArtifact) -> None:
    fake.responses_output = {
        "summary": "  Pinned libfoo.  ",
        "decisions": ["Ship Friday", " "],
        "action_items": ["Pin libfoo to 1.4"],
        "open_questions": [],
    }
    result = await summarizer(fake).summarize(artifact)
    assert result.summary == "Pinned libfoo."
    assert result.decisions == ["Ship Friday"] and result.action_items == ["Pin libfoo to 1.4"]
    assert result.open_questions == []


def assert_unsummarized(result: HandoffArtifact, original: HandoffArtifact, reason: str) -> None:
    assert result.summarized is False
    assert reason in (result.summary_error or ""), result.summary_error
    assert result.decisions == result.action_items == result.open_questions == []
    assert result.transcript == original.transcript
    assert result.full_transcript == original.full_transcript
    assert "Voice call of 25 s" in result.summary
    assert "Not summarized automatically" in result.to_markdown()


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (401, "rejected the API key (HTTP 401)"),
        (429, "rate limit or quota (HTTP 429)"),
        (500, "answered HTTP 500"),
        (503, "answered HTTP 503"),
    ],
)
async def test_http_failures_give_an_unsummarized_artifact(
    fake: FakeOpenAI, artifact: HandoffArtifact, status: int, reason: str
) -> None:
    fake.fail("responses", status, times=5, retry_after=0.01)
    result = await summarizer(fake, max_retries=1).summarize(artifact)
    assert_unsummarized(result, artifact, reason)


async def test_timeout_gives_an_unsummarized_artifact(
    fake: FakeOpenAI, artifact: HandoffArtifact
) -> None:
    fake.fail("responses", delay=3.0, times=3)
    result = await summarizer(fake, timeout_s=0.5).summarize(artifact)
    assert_unsummarized(result, artifact, "no answer from OpenAI within 0.5 s")


@pytest.mark.parametrize(
    "output", ["not json at all", '{"summary": ""}', '{"summary": "x", "decisions": "nope"}']
)
async def test_bad_json_gives_an_unsummarized_artifact(
    fake: FakeOpenAI, artifact: HandoffArtifact, output: str
) -> None:
    fake.responses_output = output
    result = await summarizer(fake).summarize(artifact)
    assert_unsummarized(result, artifact, "not the summary JSON asked for")


async def test_no_key_makes_no_request(fake: FakeOpenAI, artifact: HandoffArtifact) -> None:
    result = await summarizer(fake, api_key=None).summarize(artifact)
    assert_unsummarized(result, artifact, "no OPENAI_API_KEY")
    assert fake.responses_requests == []


async def test_unreachable_server(artifact: HandoffArtifact) -> None:
    gone = Summarizer(model="m", api_key=KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
    assert_unsummarized(await gone.summarize(artifact), artifact, "could not reach OpenAI")


async def test_empty_call_is_not_sent(fake: FakeOpenAI, tmp_path: Path) -> None:
    store = BridgeStore.open(tmp_path)
    seed_call(store, "quiet", turns=[])
    artifact = build_artifact(store, "quiet", make_config(tmp_path))
    store.close()
    result = await summarizer(fake).summarize(artifact)
    assert result.summarized is False and "nothing was said" in (result.summary_error or "")
    assert "Nothing was transcribed" in result.summary
    assert fake.responses_requests == []


async def test_from_config_honours_openai_base_url(
    fake: FakeOpenAI, artifact: HandoffArtifact, tmp_path: Path
) -> None:
    secrets = Secrets(env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url}, dotenv={})
    config = make_config(tmp_path)
    made = Summarizer.from_config(config, secrets)
    assert made.model == config.realtime.summary_model
    result = await made.summarize(artifact)
    assert result.summarized is True
    assert fake.responses_requests[-1]["model"] == config.realtime.summary_model


async def test_sdk_reads_openai_base_url_from_the_environment(
    fake: FakeOpenAI, artifact: HandoffArtifact, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    result = await Summarizer(model="m", api_key=KEY).summarize(artifact)
    assert result.summarized is True
