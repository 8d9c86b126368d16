"""The little ``bridgectl`` needs from Codex: list threads, find the newest, check one exists.

Everything goes through the app-server client in :mod:`bridgehost.codex`; this module only maps
its outcomes onto command errors: no client or no ``codex`` binary is a configuration problem
(exit 2), a refusal or failure of the app-server is exit 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bridgehost.ctl._output import EXIT_NOT_READY, EXIT_USAGE, CtlError

if TYPE_CHECKING:
    from bridgehost.config import LoadedConfig


class CodexUnavailable(CtlError):
    """Codex cannot be asked at all (no client module, no binary)."""


@dataclass(frozen=True)
class ThreadInfo:
    """A Codex thread as listed: id plus what helps a person recognise it."""

    id: str
    name: str | None
    preview: str | None
    updated_at: Any
    cwd: str | None

    @classmethod
    def of(cls, thread: Any) -> ThreadInfo:
        """From a mapping (wire shape) or an object with the same attributes."""
        def get(*names: str) -> Any:
            for name in names:
                value = thread.get(name) if isinstance(thread, Mapping) else \
                    getattr(thread, name, None)
                if value not in (None, ""):
                    return value
            return None
        return cls(str(get("id", "thread_id")), get("name", "title"), get("preview"),
                   get("updated_at", "updatedAt", "created_at", "createdAt"), get("cwd"))

    def label(self) -> str:
        """Name, else the first line of the preview."""
        text = self.name or (self.preview or "").strip().splitlines()[0:1]
        if isinstance(text, list):
            text = text[0] if text else ""
        return (text[:70] + "…") if len(text) > 71 else text

    def to_json(self) -> dict[str, Any]:
        """For ``--json`` output."""
        return {"id": self.id, "name": self.name, "preview": self.preview,
                "updated_at": self.updated_at, "cwd": self.cwd}


def _modules(as_json: bool) -> tuple[Any, Any]:
    try:
        from bridgehost.codex import appserver, threads
    except ImportError as exc:
        raise CodexUnavailable(f"this bridgehost has no Codex client ({exc}); reinstall "
                               "bridgehost", exit_code=EXIT_USAGE, code="codex_missing",
                               as_json=as_json) from exc
    return appserver, threads


def _error(exc: Exception, *, as_json: bool) -> CtlError:
    from bridgehost.codex import CodexError

    text = str(exc)
    if isinstance(exc, CodexError) and "not found:" in text and "binary" in text:
        return CodexUnavailable(text, exit_code=EXIT_USAGE, code="codex_missing",
                                as_json=as_json)
    code = "thread_not_found" if type(exc).__name__ == "CodexThreadNotFound" else "codex_error"
    return CtlError(text, exit_code=EXIT_NOT_READY, code=code, as_json=as_json)


@contextlib.asynccontextmanager
async def codex_client(loaded: LoadedConfig, *, as_json: bool) -> AsyncIterator[Any]:
    """An app-server client for ``[codex]``; errors become :class:`CtlError`."""
    appserver, _threads = _modules(as_json)
    from bridgehost.codex import CodexError

    try:
        async with appserver.AppServerClient.from_config(loaded.config) as client:
            yield client
    except CodexError as exc:
        raise _error(exc, as_json=as_json) from exc


async def list_threads(loaded: LoadedConfig, limit: int, *, as_json: bool) -> list[ThreadInfo]:
    """The newest threads, newest first."""
    _appserver, threads = _modules(as_json)
    from bridgehost.codex import CodexError

    async with codex_client(loaded, as_json=as_json) as client:
        try:
            return [ThreadInfo.of(t) for t in await threads.list_threads(client, limit)]
        except CodexError as exc:
            raise _error(exc, as_json=as_json) from exc


async def latest_thread(loaded: LoadedConfig, *, as_json: bool) -> ThreadInfo:
    """The most recently updated thread, or a refusal when there is none."""
    _appserver, threads = _modules(as_json)
    from bridgehost.codex import CodexError

    async with codex_client(loaded, as_json=as_json) as client:
        try:
            found = await threads.latest_thread(client)
        except CodexError as exc:
            raise _error(exc, as_json=as_json) from exc
    if found is None:
        raise CtlError(f"Codex has no threads in {loaded.config.codex.home}; start one in "
                       "Codex first, then run 'bridgectl bind --latest'", code="no_threads",
                       as_json=as_json)
    return ThreadInfo.of(found)


async def find_thread(loaded: LoadedConfig, thread_id: str, *, as_json: bool) -> ThreadInfo:
    """The thread with this id; :class:`CtlError` (exit 1) when Codex does not know it."""
    _appserver, threads = _modules(as_json)
    from bridgehost.codex import CodexError

    async with codex_client(loaded, as_json=as_json) as client:
        try:
            return ThreadInfo.of(await threads.read_thread(client, thread_id))
        except CodexError as exc:
            raise _error(exc, as_json=as_json) from exc
