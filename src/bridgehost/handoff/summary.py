"""The post-call summary: one Responses API request with a strict JSON schema.

The request goes through the official ``openai`` SDK (``AsyncOpenAI``, which honours
``OPENAI_BASE_URL``) to ``realtime.summary_model``, bounded in time. Whatever goes wrong (no key,
401, 429, 5xx, timeout, output that is not the JSON asked for), :meth:`Summarizer.summarize`
still returns the artifact: marked ``summarized = false`` with the reason in
``summary_error``, a plain fallback summary, no decisions or action items, the transcript
untouched. A call never ends without a handoff because the summary failed.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bridgehost.handoff._markdown import describe_end, format_duration

if TYPE_CHECKING:
    import openai

    from bridgehost.config import BridgeConfig, Secrets
    from bridgehost.handoff.artifact import HandoffArtifact

log = structlog.get_logger("bridgehost.handoff.summary")

DEFAULT_TIMEOUT_S = 45.0
"""Longest time one summary may take, retries included."""
DEFAULT_MAX_RETRIES = 1
"""Retries the SDK makes on 429/5xx/connection errors within that time."""
MAX_INPUT_CHARS = 120_000
"""Longest transcript text sent; longer ones keep their start and end."""
MAX_ITEMS = 25
MAX_ITEM_CHARS = 1000

SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "decisions", "action_items", "open_questions"],
    "properties": {
        "summary": {
            "type": "string",
            "description": "3 to 6 sentences: what was discussed and concluded",
        },
        "decisions": {
            "type": "array",
            "items": {"type": "string"},
            "description": "what the user decided or agreed to",
        },
        "action_items": {
            "type": "array",
            "items": {"type": "string"},
            "description": "concrete next tasks for the Codex agent, imperative",
        },
        "open_questions": {
            "type": "array",
            "items": {"type": "string"},
            "description": "what is still unresolved",
        },
    },
}
"""The JSON schema of the summary (Structured Outputs, strict mode)."""

INSTRUCTIONS = (
    "You write the handoff of a live voice call. The user talked with a voice assistant that "
    "speaks for their Codex coding agent; the agent continues the work from your handoff. "
    "Use only what the transcript and notes say; never invent. Write in the language the user "
    "spoke. summary: 3 to 6 sentences. decisions: what the user decided or agreed to. "
    "action_items: concrete tasks the Codex agent should do next, each one imperative "
    "sentence. open_questions: what is still unresolved. Use empty lists when there is none."
)


class SummaryOutput(BaseModel):
    """What the model must return; validated after parsing."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1)
    decisions: list[str]
    action_items: list[str]
    open_questions: list[str]

    @field_validator("summary")
    @classmethod
    def _summary(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the summary is empty")
        return value

    @field_validator("decisions", "action_items", "open_questions")
    @classmethod
    def _items(cls, value: list[str]) -> list[str]:
        return [item.strip()[:MAX_ITEM_CHARS] for item in value if item.strip()][:MAX_ITEMS]


def describe_failure(exc: BaseException, timeout_s: float) -> str:
    """A one-line reason for ``summary_error`` (never contains the API key)."""
    import openai  # the SDK takes ~0.7 s to import: only when used

    if isinstance(exc, openai.AuthenticationError):
        return "OpenAI rejected the API key (HTTP 401); check OPENAI_API_KEY"
    if isinstance(exc, openai.RateLimitError):
        return f"OpenAI rate limit or quota (HTTP 429): {_message(exc)}"
    if isinstance(exc, openai.APIStatusError):
        return f"OpenAI answered HTTP {exc.status_code}: {_message(exc)}"
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return f"no answer from OpenAI within {timeout_s:g} s"
    if isinstance(exc, openai.APIConnectionError):
        return f"could not reach OpenAI: {exc}"
    if isinstance(exc, json.JSONDecodeError | ValidationError):
        return f"the model's answer was not the summary JSON asked for: {str(exc)[:200]}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    message = body.get("message") or str(exc)
    return str(message)[:200]


def transcript_text(artifact: HandoffArtifact, limit: int = MAX_INPUT_CHARS) -> str:
    """The transcript as ``User: …`` / ``Assistant: …`` lines, bounded to ``limit`` chars."""
    lines = [
        f"{'User' if t.role == 'user' else 'Assistant'}: {t.text.strip()}"
        for t in artifact.full_transcript
    ]
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    head, tail = text[: limit // 3], text[-(limit - limit // 3) :]
    return f"{head}\n[… {len(text) - limit} characters omitted …]\n{tail}"


def fallback_summary(artifact: HandoffArtifact) -> str:
    """A summary written without a model: length, end reason and the last thing said."""
    text = (
        f"Voice call of {format_duration(artifact.duration_s)}, ended: "
        f"{describe_end(artifact.end_reason)}."
    )
    turns = artifact.full_transcript
    if not turns:
        return text + " Nothing was transcribed."
    last = " ".join(turns[-1].text.split())
    if len(last) > 300:
        last = last[:297] + "…"
    who = "the user" if turns[-1].role == "user" else "the assistant"
    return text + f" {len(turns)} turns were transcribed; the last, by {who}: “{last}”"


class Summarizer:
    """Summarizes artifacts with ``realtime.summary_model``; see the module docstring."""

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self._api_key = api_key
        self._base_url = base_url

    @classmethod
    def from_config(cls, config: BridgeConfig, secrets: Secrets, **kwargs: Any) -> Summarizer:
        """From ``realtime.summary_model``, ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``."""
        key = secrets.openai_api_key
        base = secrets.get("OPENAI_BASE_URL")
        return cls(
            model=config.realtime.summary_model,
            api_key=key.get_secret_value() if key else None,
            base_url=base.get_secret_value() if base else None,
            **kwargs,
        )

    def request_input(self, artifact: HandoffArtifact) -> str:
        """The text sent as ``input``: call facts, chat notes, the transcript."""
        notes = "\n".join(f"- {n.text}" for n in artifact.notes) or "(none)"
        return (
            f"Call {artifact.call_id}, {format_duration(artifact.duration_s)}, ended: "
            f"{describe_end(artifact.end_reason)}.\n\n"
            f"Notes the user typed into the chat during the call:\n{notes}\n\n"
            f"Transcript:\n{transcript_text(artifact) or '(empty)'}"
        )

    async def summarize(self, artifact: HandoffArtifact) -> HandoffArtifact:
        """Return ``artifact`` with its summary; on any failure, a marked fallback."""
        if not artifact.full_transcript and not artifact.notes:
            return self._fallback(artifact, "nothing was said that could be summarized")
        if not self._api_key:
            return self._fallback(artifact, "no OPENAI_API_KEY is configured")
        try:
            async with asyncio.timeout(self.timeout_s):
                output = await self._request(artifact)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return self._fallback(artifact, describe_failure(exc, self.timeout_s))
        log.info("call summarized", call_id=artifact.call_id, model=self.model)
        return artifact.with_summary(
            summary=output.summary,
            decisions=output.decisions,
            action_items=output.action_items,
            open_questions=output.open_questions,
            error=None,
        )

    async def _request(self, artifact: HandoffArtifact) -> SummaryOutput:
        import openai  # the SDK takes ~0.7 s to import: only when used

        async with openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self._base_url,
            timeout=self.timeout_s,
            max_retries=self.max_retries,
        ) as client:
            response = await client.responses.create(
                model=self.model,
                instructions=INSTRUCTIONS,
                input=self.request_input(artifact),
                store=False,
                text={
                    "format": {
                        "type": "json_schema",
                        "name": "call_handoff",
                        "strict": True,
                        "schema": SUMMARY_SCHEMA,
                    }
                },
                metadata={"bridgehost_call_id": artifact.call_id},
            )
        return SummaryOutput.model_validate(json.loads(response.output_text))

    def _fallback(self, artifact: HandoffArtifact, reason: str) -> HandoffArtifact:
        log.warning("call not summarized", call_id=artifact.call_id, reason=reason)
        return artifact.with_summary(
            summary=fallback_summary(artifact),
            decisions=[],
            action_items=[],
            open_questions=[],
            error=reason,
        )
