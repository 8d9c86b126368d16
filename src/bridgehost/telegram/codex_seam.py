"""The one place the bridge daemon reaches Codex: :class:`CodexContext`.

The daemon only needs "the recent work of the bound thread, as call context parts" before a
call. Everything Codex-specific (spawning ``codex app-server``, reading turns) lives in
``bridgehost.codex``; this seam lets tests and Codex-less set-ups run the daemon without it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bridgehost.config import BridgeConfig
from bridgehost.providers import ContextPart


@runtime_checkable
class CodexContext(Protocol):
    """Reads a Codex thread for a call's instructions."""

    async def context_parts(self, thread_id: str) -> list[ContextPart]:
        """Context parts (recent turns…) of ``thread_id``; raise on failure (it is logged and
        the call goes ahead without them)."""

    async def close(self) -> None:
        """Release what the reader holds (an app-server child); safe to call twice."""


class NoCodexContext:
    """No Codex at all: calls get plugin parts and notes only."""

    async def context_parts(self, thread_id: str) -> list[ContextPart]:
        """Nothing."""
        return []

    async def close(self) -> None:
        """Nothing to release."""


class AppServerContext:
    """Codex context through ``bridgehost.codex``: :func:`open_app_server` (the running
    server's control socket when the thread is loaded there, else a private ``codex
    app-server`` child) and :func:`call_context_parts`, per call.

    The connection is closed right after each read, so the daemon never keeps a private
    app-server (and the thread's writer lock) between calls.
    """

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config

    async def context_parts(self, thread_id: str) -> list[ContextPart]:
        """The bound thread's session summary and recent turns."""
        from bridgehost.codex import call_context_parts, open_app_server

        client = await open_app_server(self.config.codex, thread_id=thread_id)
        try:
            return list(await call_context_parts(client, thread_id))
        finally:
            await client.close()

    async def close(self) -> None:
        """Nothing is held between reads."""
