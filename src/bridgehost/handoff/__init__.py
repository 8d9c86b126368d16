"""Handoff: what a finished call leaves behind, and its delivery to every sink, exactly once.

* :func:`build_artifact` / :class:`HandoffArtifact` — the versioned artifact (JSON, Markdown).
* :class:`Summarizer` — the structured-output summary; failures give a marked fallback.
* :class:`Outbox`, :func:`deliveries` — the durable per-sink outbox in ``bridge.db``.
* :class:`DeliveryWorker`, :class:`RetryPolicy` — retries with backoff, each sink on its own.
* :class:`Pipeline` — the telegram daemon's ``HandoffPipeline``: ``call_ended(call_id)``.
* :func:`apply_retention` — removes whole old call bundles.
"""

from bridgehost.handoff.artifact import (
    MARKER_PREFIX,
    SCHEMA_VERSION,
    ChatNote,
    HandoffArtifact,
    TranscriptInfo,
    Turn,
    Usage,
    build_artifact,
    estimate_cost,
    marker_line,
)
from bridgehost.handoff.bundle import write_bundle
from bridgehost.handoff.outbox import DeliveryContext, Outbox, current_delivery, deliveries
from bridgehost.handoff.pipeline import Pipeline
from bridgehost.handoff.retention import apply_retention
from bridgehost.handoff.summary import SUMMARY_SCHEMA, Summarizer
from bridgehost.handoff.worker import DeliveryWorker, RetryPolicy

__all__ = [
    "MARKER_PREFIX",
    "SCHEMA_VERSION",
    "SUMMARY_SCHEMA",
    "ChatNote",
    "DeliveryContext",
    "DeliveryWorker",
    "HandoffArtifact",
    "Outbox",
    "Pipeline",
    "RetryPolicy",
    "Summarizer",
    "TranscriptInfo",
    "Turn",
    "Usage",
    "apply_retention",
    "build_artifact",
    "current_delivery",
    "deliveries",
    "estimate_cost",
    "marker_line",
    "write_bundle",
]
