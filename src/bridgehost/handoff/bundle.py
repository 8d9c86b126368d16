"""A call's handoff bundle: ``transcript.md``, ``handoff.json`` and ``handoff.md`` in its call
directory (``default_paths(storage.root).call_dir(call_id)``).

The pipeline writes it once per call (:func:`write_bundle`), before it queues the deliveries;
the ``file`` sink only reports where it is (:func:`ensure_bundle` writes the handoff files again
only when they are missing, e.g. for an outbox row whose bundle was removed by hand).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridgehost.basics import write_atomically
from bridgehost.handoff._markdown import render_transcript

if TYPE_CHECKING:
    from bridgehost.handoff.artifact import HandoffArtifact

HANDOFF_JSON = "handoff.json"
HANDOFF_MD = "handoff.md"
TRANSCRIPT_MD = "transcript.md"


def _write_handoff_files(call_dir: Path, payload: Mapping[str, Any]) -> None:
    write_atomically(call_dir / HANDOFF_JSON, json.dumps(dict(payload), indent=2, default=str))
    write_atomically(call_dir / HANDOFF_MD, str(payload["markdown"]))


def write_bundle(call_dir: Path, artifact: HandoffArtifact, payload: Mapping[str, Any]) -> None:
    """Write ``transcript.md``, ``handoff.json`` and ``handoff.md`` atomically (0600 files).

    ``payload`` is ``artifact.payload()``: ``handoff.json`` is what every sink receives, and
    ``handoff.md`` its ``markdown``.
    """
    write_atomically(
        call_dir / TRANSCRIPT_MD, render_transcript(artifact.call_id, artifact.full_transcript)
    )
    _write_handoff_files(call_dir, payload)


def ensure_bundle(call_dir: Path, payload: Mapping[str, Any]) -> Path:
    """The path of ``handoff.md`` in ``call_dir``; writes ``handoff.json`` and ``handoff.md``
    from ``payload`` only when one of them is missing (the transcript is never rewritten)."""
    if not ((call_dir / HANDOFF_JSON).is_file() and (call_dir / HANDOFF_MD).is_file()):
        _write_handoff_files(call_dir, payload)
    return call_dir / HANDOFF_MD
