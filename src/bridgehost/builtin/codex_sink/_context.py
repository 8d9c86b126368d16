"""The ``codex`` plugin's call context: the bound Codex thread's recent work, per call.

:func:`bridgehost_call_context` (re-exported by the package, so the plugin registers it like any
other hook) reads the thread through :class:`AppServerContext`. :class:`CodexThreadContext`
is the same contribution around any :class:`CodexContext` reader, which
:meth:`bridgehost.plugins.PluginHost.replace_call_context` puts in the builtin's place (tests,
set-ups without Codex).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bridgehost import hookimpl
from bridgehost.config import BridgeConfig
from bridgehost.providers import CallInfo, ContextPart


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

    The connection is closed right after each read, so the bridge never keeps a private
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


class CodexThreadContext:
    """A ``bridgehost_call_context`` plugin object reading the bound thread with ``reader``."""

    def __init__(self, reader: CodexContext) -> None:
        self.reader = reader

    @hookimpl
    async def bridgehost_call_context(
        self, call: CallInfo, config: BridgeConfig
    ) -> list[ContextPart] | None:
        """The bound thread's parts; nothing when no thread is bound."""
        if not call.thread_id:
            return None
        return await self.reader.context_parts(call.thread_id)


@hookimpl
async def bridgehost_call_context(call: CallInfo, config: BridgeConfig) -> list[ContextPart] | None:
    """The bound Codex thread's session summary and recent turns (``codex app-server``)."""
    return await CodexThreadContext(AppServerContext(config)).bridgehost_call_context(call, config)
