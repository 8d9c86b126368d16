"""The ``file`` handoff sink: reports where the call's handoff bundle is.

The pipeline writes the bundle ``{storage.root}/calls/{call_id}/`` (``transcript.md``,
``handoff.json``, ``handoff.md``) once, before it queues the deliveries
(:mod:`bridgehost.handoff.bundle`); delivering to this sink returns the path of its
``handoff.md``. Only when those files are missing (removed by hand while the row waited) does
it write ``handoff.json`` and ``handoff.md`` again from the payload, atomically, so delivering
the same call twice gives the same files: idempotent by call id.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bridgehost import hookimpl
from bridgehost.basics import is_call_id
from bridgehost.providers import HandoffSink, Health, ProviderContext
from bridgehost.state import default_paths


class FileSink:
    """Reports the path of each call's ``handoff.md`` under the storage root."""

    def __init__(self, context: ProviderContext) -> None:
        self.paths = default_paths(context.config.storage.root)

    async def start(self) -> None:
        """Create the calls directory."""
        self.paths.calls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    async def stop(self) -> None:
        """Nothing to release."""

    async def health(self) -> Health:
        """Healthy when the calls directory is writable."""
        calls_dir = self.paths.calls_dir
        if os.access(calls_dir, os.W_OK):
            return Health(ok=True, detail=f"writing handoffs under {calls_dir}")
        return Health(
            ok=False,
            detail=f"{calls_dir} is not writable",
            fix="check storage.root and its permissions",
        )

    async def deliver(self, artifact: Mapping[str, Any]) -> str:
        """The path of the call's ``handoff.md`` (written from ``artifact`` if missing)."""
        call_id = artifact.get("call_id", "")
        if not is_call_id(call_id):
            raise ValueError(f"artifact has no valid call_id (got {call_id!r})")
        if "markdown" not in artifact:
            raise ValueError(f"artifact of call {call_id} has no 'markdown': pass its payload()")
        from bridgehost.handoff.bundle import ensure_bundle  # loaded on first delivery

        path: Path = ensure_bundle(self.paths.call_dir(str(call_id)), artifact)
        return str(path)


@hookimpl
def bridgehost_register_handoff_sinks() -> list[HandoffSink]:
    """Register the ``file`` sink."""
    return [
        HandoffSink(
            name="file",
            description="the handoff bundle under storage.root/calls/<call id> (handoff.md, .json)",
            factory=FileSink,
        )
    ]
