"""Private file-system helpers: private directories and durable creation."""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


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
