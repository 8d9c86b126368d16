"""Retention: whole call bundles older than ``storage.retention_days`` go, never half of one.

A bundle is the directory ``{storage.root}/calls/{call_id}`` (the gateway's event log,
``transcript.md``, ``handoff.json``, ``handoff.md``) together with the call's rows in
``bridge.db``. A bundle is old when its newest file and its call's end (or creation) are older
than the limit. Kept whatever their age: the active call, calls that have not ended, ended calls
still waiting for their artifact, and calls with any handoff delivery not delivered yet.
Directories are first renamed to ``.trash-<id>`` and then removed, so a crash never leaves a
partial bundle that looks whole; leftovers are removed on the next run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from bridgehost.basics import CALL_ID_PATTERN
from bridgehost.handoff.artifact import parse_time
from bridgehost.handoff.outbox import Outbox

if TYPE_CHECKING:
    from bridgehost.state.bridge_store import BridgeStore

log = structlog.get_logger("bridgehost.handoff.retention")

TRASH_PREFIX = ".trash-"
BUNDLE_FILES = ("handoff.json", "handoff.md", "transcript.md")
"""The files the bridge writes into a call's directory."""


def _newest_mtime(directory: Path) -> datetime | None:
    newest: float | None = None
    for root, _dirs, files in os.walk(directory):
        for name in [*files, "."]:
            try:
                mtime = os.stat(os.path.join(root, name)).st_mtime
            except OSError:
                continue
            newest = mtime if newest is None else max(newest, mtime)
    return datetime.fromtimestamp(newest, UTC) if newest is not None else None


def _protected(store: BridgeStore, outbox: Outbox, active: Iterable[str | None]) -> set[str]:
    keep = {call_id for call_id in active if call_id}
    keep |= {
        row["call_id"]
        for row in store.db.query("SELECT call_id FROM bridge_calls WHERE status != 'ended'")
    }
    keep |= set(outbox.calls_needing_artifact())
    keep |= outbox.undelivered_calls()
    return keep


def apply_retention(
    store: BridgeStore,
    storage_root: Path,
    retention_days: int,
    *,
    active_call_id: str | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Remove old call bundles (see the module docstring); return the removed call ids.

    ``retention_days = 0`` keeps everything.
    """
    calls_dir = Path(storage_root) / "calls"
    _empty_trash(calls_dir)
    if retention_days <= 0:
        return []
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    outbox = Outbox(store)
    keep = _protected(store, outbox, [active_call_id])
    db_times: dict[str, datetime | None] = {
        row["call_id"]: parse_time(row["ended_at"] or row["created_at"])
        for row in store.db.query("SELECT call_id, ended_at, created_at FROM bridge_calls")
    }
    dirs = (
        {p.name: p for p in calls_dir.iterdir() if p.is_dir() and CALL_ID_PATTERN.fullmatch(p.name)}
        if calls_dir.is_dir()
        else {}
    )
    removed = []
    for call_id in sorted(set(db_times) | set(dirs)):
        if call_id in keep:
            continue
        moments = [db_times.get(call_id)] if call_id in db_times else []
        if call_id in dirs:
            moments.append(_newest_mtime(dirs[call_id]))
        if not moments or any(m is None or m >= cutoff for m in moments):
            continue
        if call_id in dirs:
            _remove_dir(dirs[call_id])
        outbox.forget([call_id])
        removed.append(call_id)
    if removed:
        log.info("old call bundles removed", count=len(removed), retention_days=retention_days)
    return removed


def sweep_partial_writes(storage_root: Path) -> int:
    """Remove temporary files a crash left in call directories (``.handoff.md.xyz``…).

    Atomic writes go through a hidden temporary file that is renamed into place; a process
    killed in between leaves it behind. Run at start, before anything writes bundles.
    """
    calls_dir = Path(storage_root) / "calls"
    if not calls_dir.is_dir():
        return 0
    removed = 0
    for name in BUNDLE_FILES:
        for leftover in calls_dir.glob(f"*/.{name}.*"):
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed


def _remove_dir(path: Path) -> None:
    trash = path.with_name(f"{TRASH_PREFIX}{path.name}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _empty_trash(calls_dir: Path) -> None:
    if not calls_dir.is_dir():
        return
    for entry in calls_dir.iterdir():
        if entry.name.startswith(TRASH_PREFIX) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
