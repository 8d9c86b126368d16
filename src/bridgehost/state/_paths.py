"""Where each piece of state lives under ``storage.root``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bridgehost.basics import validate_call_id

EVENTS_FILENAME = "events.jsonl"
"""The name of a call's append-only event log inside its call directory."""


@dataclass(frozen=True)
class StatePaths:
    """The files and directories of bridgehost's state under one storage root.

    The gateway owns ``gateway_db`` and the call logs under ``calls_dir``; the bridge (telegram)
    process owns ``bridge_db``. Neither writes the other's database.
    """

    root: Path
    gateway_db: Path
    bridge_db: Path
    calls_dir: Path

    def call_dir(self, call_id: str) -> Path:
        """``{root}/calls/{call_id}``; raises :class:`ValueError` for an invalid call id."""
        return self.calls_dir / validate_call_id(call_id)

    def call_log(self, call_id: str) -> Path:
        """``{root}/calls/{call_id}/events.jsonl``, the call's append-only event log."""
        return self.call_dir(call_id) / EVENTS_FILENAME


def default_paths(storage_root: Path | str) -> StatePaths:
    """The standard layout under ``storage_root`` (nothing is created on disk)."""
    root = Path(storage_root)
    return StatePaths(
        root=root,
        gateway_db=root / "gateway.db",
        bridge_db=root / "bridge.db",
        calls_dir=root / "calls",
    )
