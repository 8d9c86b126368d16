"""The ``codex`` plugin: the bound thread's recent work as call context, and the handoff sink.

Before each call, its ``bridgehost_call_context`` (:mod:`._context`) reads the bound thread's
session summary and recent turns. After it, the ``codex`` handoff sink appends the call's
Markdown handoff to the thread.

The thread is the one the call was bound to (the artifact's ``thread_id``), else ``[codex]
thread_id``. The sink talks to ``codex app-server`` through :mod:`bridgehost.codex`: over the
control socket of a running server when the thread is loaded there (the user sees the handoff
arrive live), otherwise through a private ``codex app-server`` that resumes the thread and is
closed right after.

``handoff.codex_mode``:

``turn``
    a visible user turn carrying the handoff; the agent answers it. The sink waits up to
    ``[plugins.codex] turn_wait_s`` for the answer; a turn that is still running or failed
    after the handoff landed still counts as delivered (the receipt says so).
``inject``
    the handoff is added to the thread's context without a model call.

Idempotent by call id: the handoff text starts with ``bridgehost-handoff: <call_id>``, and an
earlier append of that marker is looked for before anything is appended
(:func:`bridgehost.codex.append_handoff`), so a retried or recovered delivery appends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from bridgehost import hookimpl
from bridgehost.builtin.codex_sink._context import (
    AppServerContext,
    CodexContext,
    CodexThreadContext,
    NoCodexContext,
    bridgehost_call_context,
)
from bridgehost.providers import HandoffSink, Health, ProviderContext, ProviderStartError

if TYPE_CHECKING:
    from bridgehost.codex import AppServerClient


class CodexSinkSettings(BaseModel):
    """The ``[plugins.codex]`` table (every key optional)."""

    # Built when the config selects this sink and validates its table, not at registration.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    turn_wait_s: float = Field(
        60.0,
        gt=0,
        le=600,
        description='With handoff.codex_mode "turn": how long to wait for the agent to answer '
        "the handoff",
        json_schema_extra={"unit": "s"},
    )
    app_server_args: list[str] = Field(
        default_factory=list,
        description="Extra arguments for a private `codex app-server` (e.g. -c overrides)",
    )


def _binary_found(binary: str) -> bool:
    if os.sep in binary:
        return os.access(binary, os.X_OK)
    return shutil.which(binary) is not None


class CodexSink:
    """Appends handoffs to the bound Codex thread; see the module docstring."""

    def __init__(self, context: ProviderContext) -> None:
        self.codex = context.config.codex
        self.mode = context.config.handoff.codex_mode
        settings = context.settings
        self.settings = settings if isinstance(settings, CodexSinkSettings) else CodexSinkSettings()
        self._lock = asyncio.Lock()  # one writer per thread: never two app-servers of ours

    def _problem(self) -> tuple[str, str] | None:
        from bridgehost.codex._errors import INSTALL_HINT  # the Codex client loads on first use

        if not _binary_found(self.codex.binary):
            return f"codex binary {self.codex.binary!r} not found", INSTALL_HINT
        if not Path(self.codex.home).is_dir():
            return (
                f"Codex home {self.codex.home} does not exist",
                "run `codex login` once (it creates it) or set [codex] home",
            )
        return None

    async def start(self) -> None:
        """Check that the codex binary and home exist."""
        if problem := self._problem():
            raise ProviderStartError(f"codex sink: {problem[0]}", fix=problem[1])

    async def stop(self) -> None:
        """Nothing is held between deliveries."""

    async def health(self) -> Health:
        """Healthy when the binary and the home are there."""
        if problem := self._problem():
            return Health(ok=False, detail=problem[0], fix=problem[1])
        return Health(
            ok=True,
            detail=f"appending handoffs ({self.mode}) through "
            f"{self.codex.binary} with CODEX_HOME={self.codex.home}",
        )

    def _text(self, artifact: Mapping[str, Any]) -> str:
        from bridgehost.handoff.artifact import marker_line

        call_id = str(artifact["call_id"])
        markdown = str(artifact.get("markdown") or "")
        if not markdown.startswith(marker_line(call_id)):
            summary = artifact.get("summary") or "(no summary)"
            markdown = f"{marker_line(call_id)}\n\n# Voice call handoff\n\n{summary}\n"
        return markdown

    @contextlib.asynccontextmanager
    async def _connection(self, thread_id: str) -> AsyncIterator[AppServerClient]:
        """The bridge's own app-server connection when it shares one (the chat's conversation
        runs there, so the handoff turn is in its history and its answer can be posted),
        else :func:`~bridgehost.codex.open_app_server`, closed afterwards."""
        from bridgehost.codex import open_app_server
        from bridgehost.codex.turns import shared_runner

        runner = shared_runner(self.codex.home)
        if runner is not None:
            async with runner.thread_connection(thread_id) as client:
                yield client
            return
        client = await open_app_server(
            self.codex, thread_id=thread_id, args=self.settings.app_server_args
        )
        try:
            yield client
        finally:
            await client.close()

    async def deliver(self, artifact: Mapping[str, Any]) -> str:
        """Append the handoff once; return ``codex:<thread>:<mode>:<status>[:turn id]``."""
        from bridgehost.codex import CodexError, append_handoff
        from bridgehost.codex._errors import BIND_HINT

        call_id = str(artifact["call_id"])
        thread_id = artifact.get("thread_id") or self.codex.thread_id
        if not thread_id:
            raise CodexError(f"no Codex thread is bound for call {call_id}: {BIND_HINT}")
        await self.start()
        async with self._lock, self._connection(str(thread_id)) as client:
            receipt = await append_handoff(
                client,
                str(thread_id),
                text=self._text(artifact),
                mode=self.mode,
                call_id=call_id,
                wait_s=self.settings.turn_wait_s,
            )
        parts = ["codex", receipt.thread_id, receipt.mode, receipt.status]
        if receipt.turn_id:
            parts.append(receipt.turn_id)
        text = ":".join(parts)
        if receipt.duplicate:
            text += " (already there)"
        if receipt.error:
            text += f" — {receipt.error}"
        return text


@hookimpl
def bridgehost_register_handoff_sinks() -> list[HandoffSink]:
    """Register the ``codex`` sink: the handoff lands in the bound Codex thread.

    Uses ``[codex] binary``/``home``/``thread_id`` and ``handoff.codex_mode``; its own
    ``[plugins.codex]`` table takes ``turn_wait_s`` and ``app_server_args``.
    """
    return [
        HandoffSink(
            name="codex",
            description="append the Markdown handoff to the bound Codex thread through "
            "codex app-server (a visible turn, or injected context)",
            factory=CodexSink,
            settings_model=CodexSinkSettings,
        )
    ]


__all__ = [
    "AppServerContext",
    "CodexContext",
    "CodexSink",
    "CodexSinkSettings",
    "CodexThreadContext",
    "NoCodexContext",
    "bridgehost_call_context",
    "bridgehost_register_handoff_sinks",
]
