"""The little ``bridgectl`` needs from Codex: list threads, find the newest, check one exists.

Everything goes through :mod:`bridgehost.codex` (``open_app_server`` with ``[codex]``: a
running server's control socket when there is one, else a private ``codex app-server`` child).
This module only maps outcomes onto command errors: Codex not installed or not set up (no
binary, no ``CODEX_HOME``) is a configuration problem (exit 2); a refusal or failure of the
app-server, or an unknown thread, is exit 1.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from bridgehost.ctl._output import EXIT_NOT_READY, EXIT_USAGE, CtlError

if TYPE_CHECKING:
    from bridgehost.codex import AppServerClient, ThreadSummary
    from bridgehost.config import LoadedConfig

T = TypeVar("T")


class CodexUnavailable(CtlError):
    """Codex cannot be asked at all (no client module, no binary, no Codex home)."""


def thread_json(thread: ThreadSummary) -> dict[str, Any]:
    """A thread for ``--json`` output."""
    return {
        "id": thread.id,
        "title": thread.title,
        "name": thread.name,
        "preview": thread.preview,
        "cwd": thread.cwd,
        "updated_at": thread.updated_at.isoformat(),
        "status": thread.status,
    }


def _error(exc: Exception, *, as_json: bool) -> CtlError:
    from bridgehost.codex import CodexThreadNotFound
    from bridgehost.codex._errors import INSTALL_HINT

    text = str(exc)
    if INSTALL_HINT in text or ("Codex home" in text and "does not exist" in text):
        return CodexUnavailable(text, exit_code=EXIT_USAGE, code="codex_missing", as_json=as_json)
    code = "thread_not_found" if isinstance(exc, CodexThreadNotFound) else "codex_error"
    return CtlError(text, exit_code=EXIT_NOT_READY, code=code, as_json=as_json)


async def with_codex(
    loaded: LoadedConfig, use: Callable[[AppServerClient], Awaitable[T]], *, as_json: bool
) -> T:
    """Open the app-server as ``[codex]`` says, run ``use(client)``, close it again."""
    try:
        from bridgehost.codex import CodexError, open_app_server
    except ImportError as exc:
        raise CodexUnavailable(
            f"this bridgehost has no Codex client ({exc}); reinstall bridgehost",
            exit_code=EXIT_USAGE,
            code="codex_missing",
            as_json=as_json,
        ) from exc
    try:
        client = await open_app_server(loaded.config.codex)
        async with client:
            return await use(client)
    except CodexError as exc:
        raise _error(exc, as_json=as_json) from exc


async def list_threads(loaded: LoadedConfig, limit: int, *, as_json: bool) -> list[ThreadSummary]:
    """The most recently updated threads, newest first."""
    from bridgehost.codex import list_threads as codex_list

    return await with_codex(loaded, lambda client: codex_list(client, limit), as_json=as_json)


async def latest_thread(loaded: LoadedConfig, *, as_json: bool) -> ThreadSummary:
    """The most recently updated thread, or a refusal when there is none."""
    from bridgehost.codex import latest_thread as codex_latest

    found = await with_codex(loaded, codex_latest, as_json=as_json)
    if found is None:
        raise CtlError(
            f"Codex has no threads in {loaded.config.codex.home}; start one in "
            "Codex first, then run 'bridgectl bind --latest'",
            code="no_threads",
            as_json=as_json,
        )
    return found


async def find_thread(loaded: LoadedConfig, thread_id: str, *, as_json: bool) -> ThreadSummary:
    """The thread with this id; :class:`CtlError` (exit 1) when Codex does not know it."""
    from bridgehost.codex import read_thread

    return await with_codex(loaded, lambda client: read_thread(client, thread_id), as_json=as_json)
