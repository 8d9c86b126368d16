"""The ``file`` handoff sink: writes ``{storage.root}/calls/{call_id}/handoff.json`` and ``.md``.

Writes are atomic (temporary file, fsync, rename), so a crash leaves either the old file or the
new one, and delivering the same call twice rewrites identical content: idempotent by call id.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bridgehost import hookimpl
from bridgehost.providers import HandoffSink, Health, ProviderContext

_CALL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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
        if not _CALL_ID.match(call_id):
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
