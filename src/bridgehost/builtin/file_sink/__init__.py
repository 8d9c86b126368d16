"""The ``file`` handoff sink: writes ``{storage.root}/calls/{call_id}/handoff.json`` and ``.md``.

Writes are atomic (temporary file, fsync, rename), so a crash leaves either the old file or the
new one, and delivering the same call twice rewrites identical content: idempotent by call id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bridgehost import hookimpl
from bridgehost.basics import is_call_id, write_atomically
from bridgehost.providers import HandoffSink, Health, ProviderContext


def _fallback_markdown(artifact: Mapping[str, Any]) -> str:
    lines = [f"# Call {artifact['call_id']}", ""]
    for key in ("summary", "end_reason"):
        if artifact.get(key):
            lines.append(f"- {key.replace('_', ' ')}: {artifact[key]}")
    return "\n".join(lines) + "\n"


class FileSink:
    """Writes each artifact as JSON and Markdown under the storage root."""

    def __init__(self, context: ProviderContext) -> None:
        self.calls_dir = Path(context.config.storage.root) / "calls"

    async def start(self) -> None:
        """Create the calls directory."""
        self.calls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    async def stop(self) -> None:
        """Nothing to release."""

    async def health(self) -> Health:
        """Healthy when the calls directory is writable."""
        if os.access(self.calls_dir, os.W_OK):
            return Health(ok=True, detail=f"writing handoffs under {self.calls_dir}")
        return Health(
            ok=False,
            detail=f"{self.calls_dir} is not writable",
            fix="check storage.root and its permissions",
        )

    async def deliver(self, artifact: Mapping[str, Any]) -> str:
        """Write ``handoff.json`` and ``handoff.md``; return the Markdown path."""
        call_id = str(artifact.get("call_id", ""))
        if not is_call_id(call_id):
            raise ValueError(f"artifact has no valid call_id (got {call_id!r})")
        call_dir = self.calls_dir / call_id
        write_atomically(call_dir / "handoff.json", json.dumps(artifact, indent=2, default=str))
        markdown = artifact.get("markdown") or _fallback_markdown(artifact)
        write_atomically(call_dir / "handoff.md", str(markdown))
        return str(call_dir / "handoff.md")


@hookimpl
def bridgehost_register_handoff_sinks() -> list[HandoffSink]:
    """Register the ``file`` sink."""
    return [
        HandoffSink(
            name="file",
            description="write handoff.json and handoff.md under storage.root/calls/<call id>",
            factory=FileSink,
        )
    ]
