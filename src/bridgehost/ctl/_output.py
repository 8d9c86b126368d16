"""What every operator command shares: exit codes, one-line errors, human and JSON printing.

Exit codes (also in ``bridgectl --help``):

* ``0`` success (``capabilities``: ready)
* ``1`` not ready, nothing to do, or the gateway/Codex/Telegram refused
* ``2`` usage or configuration error (bad option, invalid config, missing or wrong secret)
* ``3`` the gateway (for ``telegram discover``: the Bot API server) is not answering
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

import click

EXIT_OK = 0
EXIT_NOT_READY = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

T = TypeVar("T")


def one_line(text: str) -> str:
    """Collapse a message to a single line (errors are one line on stderr)."""
    return " ".join(str(text).split())


class CtlError(click.ClickException):
    """A refusal or failure: one line on stderr and an exit code.

    With ``--json`` the same reason also goes to stdout as
    ``{"ok": false, "error": {"code", "message"}}`` so a script always gets one JSON object.
    """

    def __init__(
        self,
        message: str,
        *,
        exit_code: int = EXIT_NOT_READY,
        code: str = "refused",
        as_json: bool = False,
    ) -> None:
        super().__init__(one_line(message))
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance
        self.code = code
        self.as_json = as_json

    def show(self, file: Any = None) -> None:
        """Print the reason (and the JSON object when asked for JSON)."""
        if self.as_json:
            emit_json({"ok": False, "error": {"code": self.code, "message": self.message}})
        click.echo(f"bridgectl: {self.message}", err=True)


def emit_json(payload: dict[str, Any]) -> None:
    """Print one JSON object on stdout."""
    click.echo(json.dumps(payload, indent=2, ensure_ascii=False, default=str))


def progress(text: str) -> None:
    """A progress line on stderr (stdout stays clean for the result)."""
    click.echo(text, err=True)


def note(text: str) -> None:
    """A one-line remark on stderr that does not change the exit code."""
    click.echo(f"note: {one_line(text)}", err=True)


def echo_pairs(pairs: Iterable[tuple[str, str]], *, indent: str = "") -> None:
    """Aligned ``label: value`` lines."""
    rows = list(pairs)
    width = max((len(label) for label, _ in rows), default=0) + 1
    for label, value in rows:
        click.echo(f"{indent}{label + ':':<{width}} {value}")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's async body."""
    return asyncio.run(coro)


def seconds(ms: Any) -> str:
    """``12s`` from milliseconds (``?`` when unknown)."""
    try:
        return f"{int(ms) // 1000}s"
    except (TypeError, ValueError):
        return "?"


def gateway_exit_code(code: str, status: int | None) -> int:
    """The exit code for a :class:`~bridgehost.gateway_api.GatewayApiError`."""
    if code == "unreachable":
        return EXIT_UNREACHABLE
    if code == "no_secret" or status == 401:
        return EXIT_USAGE
    return EXIT_NOT_READY


def gateway_error(exc: Exception, *, as_json: bool) -> CtlError:
    """A gateway client error as a command error with the matching exit code."""
    code = str(getattr(exc, "code", "error"))
    status = getattr(exc, "status", None)
    return CtlError(str(exc), exit_code=gateway_exit_code(code, status), code=code, as_json=as_json)
