"""The per-call append-only event log: ``{storage_root}/calls/{call_id}/events.jsonl``.

One JSON object per line. :meth:`CallLog.append` returns only once the line is written and
fsync-ed, so an event may be acknowledged as soon as it returns: after a crash (even ``kill -9``
or power loss) every acknowledged event is in the file. A crash during a write can leave a torn,
newline-less last line; :meth:`CallLog.read` skips and reports it, and the next writer cuts it
off before appending. A log has one writer (the gateway); any number may read it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from bridgehost.basics import (
    CALL_ID_PATTERN,
    create_private_file,
    ensure_private_dir,
    validate_call_id,
)
from bridgehost.state._paths import EVENTS_FILENAME

DEFAULT_MAX_LINE_BYTES = 256 * 1024
"""The largest accepted event, as one encoded JSON line including its newline."""

_TAIL_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ReadResult:
    """What :meth:`CallLog.read` found.

    ``events`` are the complete lines, in order. ``torn_tail`` is true when the file ended in a
    partial line (a write interrupted by a crash; never acknowledged, so nothing is lost).
    ``bad_lines`` holds the 1-based numbers of complete lines that were not JSON objects
    (corruption from outside); they are skipped, the lines around them are kept.
    """

    events: list[dict[str, Any]]
    torn_tail: bool = False
    bad_lines: tuple[int, ...] = field(default=())


class CallLog:
    """An append-only JSON-lines event log at ``path`` (created, mode 0600, on first append)."""

    def __init__(self, path: Path | str, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.path = Path(path)
        """The ``events.jsonl`` file."""
        self.max_line_bytes = max_line_bytes
        """Events whose JSON line (with newline) is longer than this are refused."""
        self.repaired_bytes = 0
        """How many bytes of torn tail were cut off when this log was opened for appending."""
        self._fd: int | None = None
        self._finalizer: weakref.finalize[..., Any] | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_call(cls, calls_dir: Path | str, call_id: str, **kwargs: Any) -> Self:
        """The log of ``call_id`` under ``calls_dir``; raises :class:`ValueError` for a bad id."""
        return cls(Path(calls_dir) / validate_call_id(call_id) / EVENTS_FILENAME, **kwargs)

    def append(self, event: Mapping[str, Any]) -> None:
        """Write ``event`` as one JSON line, flush and fsync it; acknowledge after this returns.

        Raises :class:`ValueError` if the line would exceed ``max_line_bytes`` or the event holds
        NaN/infinity, :class:`TypeError` if it is not JSON-encodable, :class:`OSError` if the
        write fails (then nothing of it stays in the file, as far as the OS lets us undo it).
        """
        if not isinstance(event, Mapping):
            raise TypeError(f"a call log event must be a mapping, got {type(event).__name__}")
        text = json.dumps(dict(event), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        line = text.encode("utf-8") + b"\n"
        if len(line) > self.max_line_bytes:
            raise ValueError(
                f"event {event.get('type', '?')!r} is {len(line)} bytes as a JSON line, more than "
                f"the call log limit of {self.max_line_bytes} bytes ({self.path}); shorten it"
            )
        with self._lock:
            fd = self._open_for_append()
            size = os.fstat(fd).st_size
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except BaseException:
                # Undo a partial line so the next one is not glued onto it; if even that fails,
                # the reopen in the next append cuts the torn tail.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                self._close_locked()
                raise

    def read(self) -> ReadResult:
        """Every complete event in order; a torn last line is skipped and reported.

        Raises :class:`FileNotFoundError` if the log does not exist. Never modifies the file.
        """
        events: list[dict[str, Any]] = []
        bad: list[int] = []
        torn = False
        with open(self.path, "rb") as file:
            for number, raw in enumerate(file, start=1):
                if not raw.endswith(b"\n"):
                    torn = True
                    break
                try:
                    obj = json.loads(raw)
                except ValueError:
                    bad.append(number)
                    continue
                if isinstance(obj, dict):
                    events.append(obj)
                else:
                    bad.append(number)
        return ReadResult(events=events, torn_tail=torn, bad_lines=tuple(bad))

    def close(self) -> None:
        """Release the file descriptor (idempotent; a later append reopens the log)."""
        with self._lock:
            self._close_locked()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _close_locked(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # closes the descriptor exactly once
        self._fd, self._finalizer = None, None

    def _open_for_append(self) -> int:
        if self._fd is not None:
            return self._fd
        ensure_private_dir(self.path.parent)
        created = create_private_file(self.path)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        try:
            if not created:
                self.repaired_bytes += _cut_torn_tail(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._finalizer = fd, weakref.finalize(self, os.close, fd)
        return fd


def _cut_torn_tail(fd: int) -> int:
    """Truncate the file after its last newline; return how many bytes were cut."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    keep, end = 0, size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    os.ftruncate(fd, keep)
    os.fsync(fd)
    return size - keep


def list_call_logs(calls_dir: Path | str) -> list[str]:
    """The ids (sorted) of the calls under ``calls_dir`` that have an event log."""
    try:
        entries = list(os.scandir(calls_dir))
    except FileNotFoundError:
        return []
    return sorted(
        entry.name
        for entry in entries
        if CALL_ID_PATTERN.fullmatch(entry.name)
        and entry.is_dir(follow_symlinks=False)
        and os.path.isfile(os.path.join(entry.path, EVENTS_FILENAME))
    )
