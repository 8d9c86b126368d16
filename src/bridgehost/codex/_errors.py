"""Errors of the Codex integration, each with a sentence that names the fix.

``codex app-server`` answers failures as JSON-RPC errors whose *text* is the only precise part
(every observed code is ``-32600``), and some texts mislead: ``thread/read`` and
``thread/turns/list`` on an unknown id say "thread not loaded". :func:`rpc_error` turns them into
our exceptions; :func:`describe_turn_error` does the same for a failed turn's ``error`` object.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

INSTALL_HINT = "install with npm install -g @openai/codex or set [codex] binary"
"""What to do when the codex executable cannot be found."""

BIND_HINT = (
    "run `bridgectl threads` to list the threads, then `bridgectl bind <id>` "
    "(or `bridgectl bind --latest`)"
)
"""What to do when the bound thread does not exist."""

_NOT_FOUND = re.compile(
    r"thread not (?:found|loaded)|no rollout found for thread|invalid thread id", re.I
)
_BUSY = re.compile(r"already has an active writer", re.I)
_NOT_MATERIALIZED = re.compile(r"is not materialized yet", re.I)


class CodexError(RuntimeError):
    """Something went wrong talking to Codex; ``str(error)`` says what to do about it.

    :param message: the whole sentence, fix included.
    :param method: the JSON-RPC method involved, if any.
    :param code: the JSON-RPC error code, if the server answered with one.
    :param detail: the server's own error text, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        code: int | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.code = code
        self.detail = detail


class CodexThreadNotFound(CodexError):
    """The thread id is unknown to this ``CODEX_HOME`` (or is not a thread id at all)."""


class CodexThreadNotMaterialized(CodexError):
    """The thread has no user message yet, so it has no turns: ``thread/turns/list`` refuses it
    (and a thread that never gets one is not saved)."""


class CodexThreadBusy(CodexError):
    """Another Codex process holds the thread's writer lock and we could not reach it."""


def binary_missing(binary: str) -> CodexError:
    """The error for a codex executable that is not there or cannot be run."""
    return CodexError(f"codex binary {binary!r} not found: {INSTALL_HINT}")


def thread_not_found(
    thread_id: str, home: Path | str | None, detail: str | None = None, method: str | None = None
) -> CodexThreadNotFound:
    """The error for an unknown thread id."""
    where = f" in CODEX_HOME {home}" if home else ""
    return CodexThreadNotFound(
        f"Codex thread {thread_id} was not found{where}: {BIND_HINT}", method=method, detail=detail
    )


def rpc_error(
    method: str, error: Mapping[str, Any], params: Mapping[str, Any] | None, home: Path | str | None
) -> CodexError:
    """Turn a JSON-RPC ``error`` object into the matching :class:`CodexError`."""
    text = str(error.get("message") or error)
    code = error.get("code") if isinstance(error.get("code"), int) else None
    thread_id = str((params or {}).get("threadId") or "")
    if thread_id and _NOT_FOUND.search(text):
        err = thread_not_found(thread_id, home, detail=text, method=method)
        err.code = code
        return err
    if thread_id and _NOT_MATERIALIZED.search(text):
        return CodexThreadNotMaterialized(
            f"codex app-server refused {method}: {text}", method=method, code=code, detail=text
        )
    if _BUSY.search(text):
        return CodexThreadBusy(
            f"Codex thread {thread_id or '?'} is open in another Codex process, which holds its "
            "writer lock, and no control socket of that process was reachable: finish or close "
            "the thread there (or run that Codex with its shared app-server), then retry",
            method=method,
            code=code,
            detail=text,
        )
    if code == -32001:
        return CodexError(
            f"codex app-server is overloaded ({text}): retry later",
            method=method,
            code=code,
            detail=text,
        )
    return CodexError(
        f"codex app-server refused {method}: {text}", method=method, code=code, detail=text
    )


def startup_problem(stderr_tail: str, home: Path | str | None) -> str | None:
    """A fix for a well-known start-up failure found in the app-server's stderr, if any."""
    if "CODEX_HOME" in stderr_tail and "does not exist" in stderr_tail:
        return (
            f"Codex home {home} does not exist: run `codex login` once (it creates it) "
            "or set [codex] home"
        )
    if re.search(r"error loading config|failed to (?:load|parse) config", stderr_tail, re.I):
        return "Codex could not read its config.toml: fix it (see the error above) and retry"
    return None


def _status_of(info: Any) -> int | None:
    """The HTTP status buried in a ``codexErrorInfo`` value, if any."""
    if isinstance(info, Mapping):
        for value in info.values():
            if isinstance(value, Mapping) and isinstance(value.get("httpStatusCode"), int):
                return int(value["httpStatusCode"])
    return None


def describe_turn_error(
    error: Mapping[str, Any] | None, *, home: Path | str | None, login_problem: str | None = None
) -> str:
    """One sentence with a fix for a failed (or endlessly retrying) turn's ``error`` object."""
    error = error or {}
    message = str(error.get("message") or "unknown error")
    info = error.get("codexErrorInfo")
    status = _status_of(info)
    details = str(error.get("additionalDetails") or "")
    if status in (401, 403) or info == "unauthorized":
        return (
            f"Codex's model provider refused the credentials ({message}): run `codex login` "
            f"with CODEX_HOME={home}, or fix the provider's API key"
        )
    if login_problem:
        return login_problem
    unreachable = ("responseStreamDisconnected" in str(info) and status is None) or re.search(
        r"connection failed|waiting for network|error sending request", f"{message} {details}", re.I
    )
    if unreachable:
        return (
            f"Codex could not reach its model provider ({details or message}): check the "
            "network and the provider's base_url in Codex's config.toml"
        )
    return f"the Codex turn failed: {message}"
