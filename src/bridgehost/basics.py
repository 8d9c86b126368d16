"""The lowest layer: clocks, call ids, durable file writes and lazy exports (standard library
only).

Every other module of bridgehost may import this one; it imports nothing of bridgehost.

    stamp = iso(utc_now())                      # '2025-01-01T10:00:00.000+00:00'
    moment = parse_iso(stamp)                   # aware datetime, or None
    validate_call_id("c_7f3a")                  # ValueError for ids that could leave calls/
    write_atomically(path, text)                # readers never see a partial file
    __getattr__ = lazy_exports(__name__, {"Big": "._big"})  # loads ._big on first use
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

DIR_MODE = 0o700
"""The mode of every directory bridgehost creates for its state."""
FILE_MODE = 0o600
"""The mode of every file bridgehost creates for its state."""

CALL_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""A call id: 1–64 of ``A-Z a-z 0-9 _ -``. No dots or slashes, so it can never leave ``calls/``."""


# -- clocks ------------------------------------------------------------------------------------


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 with milliseconds, or None."""
    return moment.isoformat(timespec="milliseconds") if moment else None


def utc_iso(moment: datetime | None = None) -> str:
    """``moment`` (default: now) in UTC as ISO 8601 with milliseconds (``+00:00``)."""
    return (moment or utc_now()).astimezone(UTC).isoformat(timespec="milliseconds")


def parse_iso(value: object, *, naive_as_utc: bool = False) -> datetime | None:
    """An ISO 8601 timestamp (``Z`` accepted) as an aware datetime, or None.

    A timestamp without a zone is read as UTC when ``naive_as_utc``, else refused (None).
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC) if naive_as_utc else None
    return moment


def local_day(moment: datetime) -> str:
    """The host's local calendar day of ``moment``: the budget's day boundary."""
    return moment.astimezone().date().isoformat()


def today(now: datetime | None = None) -> str:
    """Today's budget day key."""
    return local_day(now or utc_now())


# -- call ids ----------------------------------------------------------------------------------


def validate_call_id(call_id: str) -> str:
    """Return ``call_id`` unchanged if it is a valid call id, else raise :class:`ValueError`."""
    if not isinstance(call_id, str) or CALL_ID_PATTERN.fullmatch(call_id) is None:
        raise ValueError(
            f"invalid call id {call_id!r}: use 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'"
        )
    return call_id


def is_call_id(value: object) -> bool:
    """Whether ``value`` is a valid call id."""
    return isinstance(value, str) and CALL_ID_PATTERN.fullmatch(value) is not None


# -- durable files -----------------------------------------------------------------------------


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` durable (best effort where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # pragma: no cover - platforms without O_DIRECTORY opens
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700.

    Directories that already exist keep their mode (under systemd, ``StateDirectory=`` owns the
    root). Each directory created is chmod-ed explicitly, so the umask cannot widen it, and its
    parent is fsync-ed, so the new entry survives a power loss.
    """
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:  # pragma: no cover - the root always exists
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:  # created concurrently by another process
            continue
        os.chmod(directory, DIR_MODE)
        fsync_dir(directory.parent)


def create_private_file(path: Path) -> bool:
    """Create ``path`` with mode 0600 unless it exists; return whether it was created.

    The parent directory must exist. An existing file keeps its mode.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
    return True


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (mode 0600) so that readers never see a partial file.

    Temporary file in the same directory, fsync, rename, fsync of the directory: a crash leaves
    either the old file or the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` (PEP 562) that imports each name of ``where`` (name → module,
    relative to ``package``) on first use: importing ``package`` does not load them."""

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import importlib

        return getattr(importlib.import_module(module, package), name)

    return __getattr__
