"""The one place the bridge daemon reaches Codex: :class:`CodexContext`.

The daemon only needs "the recent work of the bound thread, as call context parts" before a
call. Everything Codex-specific (spawning ``codex app-server``, reading turns) lives in
``bridgehost.codex``; this seam lets tests and Codex-less set-ups run the daemon without it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import structlog

from bridgehost.config import BridgeConfig
from bridgehost.providers import ContextPart

log = structlog.get_logger("bridgehost.telegram.codex")


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
    """Codex context through ``bridgehost.codex`` (``codex app-server``), started per call.

    A private app-server is spawned for each read and closed right after, so the daemon never
    holds a thread's writer lock between calls.
    """

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config

    async def context_parts(self, thread_id: str) -> list[ContextPart]:
        """The bound thread's recent turns, as ``bridgehost.codex.context`` renders them."""
        try:
            from bridgehost.codex import appserver, context
        except ImportError as exc:  # the Codex integration is not installed in this build
            log.warning("codex integration unavailable; calls get no thread context",
                        error=str(exc))
            return []
        client: Any = await _open_client(appserver, self.config)
        try:
            return list(await context.call_context_parts(client, thread_id))
        finally:
            await _close_client(client)

    async def close(self) -> None:
        """Nothing is held between reads."""


async def _open_client(appserver: Any, config: BridgeConfig) -> Any:
    """Start an app-server client with the ``[codex]`` settings."""
    opener = getattr(appserver, "open_client", None)
    if opener is not None:
        return await opener(config.codex)
    client = appserver.AppServerClient(config.codex)
    await client.start()
    return client


async def _close_client(client: Any) -> None:
    for name in ("close", "stop", "aclose"):
        method = getattr(client, name, None)
        if method is not None:
            await method()
            return
