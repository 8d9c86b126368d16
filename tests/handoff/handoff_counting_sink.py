"""A test plugin: the ``counting`` sink, which records its effect in a ledger file.

Every attempt appends ``attempt <call id> <pid>``; the effect, ``effect <call id>``, is written
only once per call id (the sink is idempotent by call id, as sinks must be). ``block`` makes an
attempt stop forever before or after its effect, printing ``PAUSED <where>`` so that a test can
kill the process right there.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from handoff_helpers import fsync_append
from pydantic import BaseModel

from bridgehost import hookimpl
from bridgehost.providers import HandoffSink, Health, ProviderContext


class CountingSettings(BaseModel):
    """``[plugins.counting]``."""

    ledger: str
    block: Literal["none", "before", "after"] = "none"


def effects(ledger: Path, call_id: str) -> int:
    """How many times the effect for ``call_id`` happened."""
    if not ledger.exists():
        return 0
    return ledger.read_text().splitlines().count(f"effect {call_id}")


class CountingSink:
    """See the module docstring."""

    def __init__(self, context: ProviderContext) -> None:
        assert isinstance(context.settings, CountingSettings)
        self.ledger = Path(context.settings.ledger)
        self.block = context.settings.block

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def health(self) -> Health:
        """Always fine."""
        return Health(ok=True, detail=f"counting into {self.ledger}")

    async def _pause(self, where: str) -> None:
        print(f"PAUSED {where}", flush=True)
        await asyncio.Event().wait()

    async def deliver(self, artifact: Mapping[str, Any]) -> str:
        """Count the attempt, then have the effect once."""
        call_id = str(artifact["call_id"])
        fsync_append(self.ledger, f"attempt {call_id} {os.getpid()}")
        if self.block == "before":
            await self._pause("delivering-before-effect")
        if effects(self.ledger, call_id) == 0:
            fsync_append(self.ledger, f"effect {call_id}")
        if self.block == "after":
            await self._pause("delivering-after-effect")
        return f"counted:{call_id}"


@hookimpl
def bridgehost_register_handoff_sinks() -> list[HandoffSink]:
    """Register the ``counting`` sink."""
    return [
        HandoffSink(
            name="counting",
            description="counts deliveries in a ledger file",
            factory=CountingSink,
            settings_model=CountingSettings,
        )
    ]
