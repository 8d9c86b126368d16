"""Shared helpers for the handoff tests (also imported by the crash driver process)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bridgehost.basics import iso
from bridgehost.config import BridgeConfig, Secrets, validate_config
from bridgehost.plugins import PluginHost
from bridgehost.providers import Health
from bridgehost.state.bridge_store import BridgeStore

T0 = datetime(2026, 3, 2, 14, 3, 5, tzinfo=UTC)

CONVERSATION = [
    ("user", "Please look at the failing build on the release branch."),
    ("assistant", "The linker step fails because libfoo moved. Shall I pin it?"),
    ("user", "Yes, pin libfoo to 1.4 and open a pull request. We ship on Friday."),
    ("assistant", "Understood: pin libfoo to 1.4, open a pull request, ship Friday."),
]


def config_data(root: Path, *, sinks: Iterable[str] = ("file",), **handoff: Any) -> dict[str, Any]:
    """A config document with ``storage.root = root`` and fast retries."""
    return {
        "storage": {"root": str(root), "retention_days": 14},
        "handoff": {
            "sinks": list(sinks),
            "retry_base_s": 0.05,
            "retry_max_s": 0.2,
            "retry_max_attempts": 4,
            **handoff,
        },
        "telegram": {"authorized_chat_id": 4242},
        "realtime": {"bridge_id": "test-bridge"},
    }


def make_config(
    root: Path, *, plugins: Mapping[str, Any] | None = None, **kwargs: Any
) -> BridgeConfig:
    """A validated :class:`BridgeConfig` for ``root``."""
    data = config_data(root, **kwargs)
    if plugins:
        data["plugins"] = dict(plugins)
    return validate_config(data, env={})


def no_secrets() -> Secrets:
    """Secrets with nothing set."""
    return Secrets(env={}, dotenv={})


def seed_call(
    store: BridgeStore,
    call_id: str,
    *,
    turns: Iterable[tuple[str, str]] = CONVERSATION,
    started: bool = True,
    reason: str = "user_hangup",
    ended_by: str = "browser",
    thread_id: str | None = "thread-abc",
    start: datetime = T0,
    usage: Iterable[Mapping[str, Any]] = (),
    notes: Iterable[str] = (),
    end: bool = True,
) -> None:
    """Store a call as the gateway would forward it: stamped, sequenced events."""
    store.set_call_details(call_id, thread_id=thread_id, telegram_user_id=4242)
    seq, clock = 0, start

    def add(event: dict[str, Any], step_s: float = 5.0) -> None:
        nonlocal seq, clock
        seq += 1
        clock += timedelta(seconds=step_s)
        store.record_event(call_id, {"seq": seq, "at": iso(clock), **event})

    if started:
        add({"type": "call.started"}, 0.0)
    for note in notes:
        store.add_note(note, call_id)
    for role, text in turns:
        add({"type": f"{role}.transcript.final", "text": text})
    for item in usage:
        add({"type": "usage", **item}, 0.5)
    if end:
        add(
            {
                "type": "call.ended",
                "reason": reason,
                "ended_by": ended_by,
                "duration_ms": int((clock - start).total_seconds() * 1000),
            }
        )


def plugin_host() -> PluginHost:
    """Installed plugins plus the builtin codex/telegram sinks when not installed yet."""
    from bridgehost.builtin import codex_sink, telegram_sink

    host = PluginHost.load(env={})
    provided = host.providers("handoff_sinks")
    for name, module in (("codex", codex_sink), ("telegram", telegram_sink)):
        if name not in provided:
            host.register(module, f"builtin-{name}-sink")
    return host


class RecordingSink:
    """An in-process sink: records every attempt; fails ``fail_times`` times, or hangs."""

    def __init__(
        self, name: str, *, fail_times: int = 0, fail_forever: bool = False, hang: bool = False
    ) -> None:
        self.name = name
        self.fail_times = fail_times
        self.fail_forever = fail_forever
        self.hang = hang
        self.attempts: list[tuple[str, float]] = []
        self.delivered: list[str] = []
        self.started = 0
        self.stopped = 0

    async def start(self) -> None:
        self.started += 1

    async def stop(self) -> None:
        self.stopped += 1

    async def health(self) -> Health:
        return Health(ok=True, detail="recording")

    async def deliver(self, artifact: Mapping[str, Any]) -> str:
        call_id = str(artifact["call_id"])
        self.attempts.append((call_id, asyncio.get_running_loop().time()))
        if self.hang:
            await asyncio.Event().wait()
        if self.fail_forever or len(self.attempts) <= self.fail_times:
            raise RuntimeError(f"{self.name} is down")
        if call_id not in self.delivered:
            self.delivered.append(call_id)
        return f"{self.name}:{call_id}"


def fsync_append(path: Path, line: str) -> None:
    """Append one line and make it durable (it must survive a SIGKILL right after)."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
