"""One process's SQLite store: WAL, versioned migrations, owner check, settings.

The API is synchronous: SQLite answers our sizes in microseconds. Callers on the event loop keep
transactions short (a few statements, no awaits or network inside ``transaction()``); anything
long goes through ``asyncio.to_thread``. A lock serializes threads, and a transaction holds it
until it ends, so another thread's statements never slip into it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Self

from bridgehost.basics import create_private_file, ensure_private_dir, utc_iso
from bridgehost.state._errors import StateError
from bridgehost.state._migrations import (
    Migration,
    applied_versions,
    apply_migration,
    check_existing,
    plan,
)

_OWNER = re.compile(r"[a-z][a-z0-9_-]{0,31}")
Params = Sequence[Any] | dict[str, Any]


class Store:
    """A SQLite database file owned by exactly one process (``owner``). Use :meth:`open`."""

    def __init__(self, conn: sqlite3.Connection, path: Path, owner: str) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()
        self._savepoints = 0
        self.path = path
        """The database file."""
        self.owner = owner
        """The process that owns this file, e.g. ``"gateway"`` or ``"bridge"``."""

    @classmethod
    def open(
        cls,
        path: Path | str,
        owner: str,
        migrations: Iterable[Migration] = (),
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout: float = 5.0,
    ) -> Self:
        """Open (creating it, mode 0600, in 0700 directories) and migrate the store at ``path``.

        Refuses with :class:`StateError` a file owned by another process, a file written by a
        newer bridgehost, a database that is not a bridgehost store, and a failing migration
        (which is rolled back). Misordered ``migrations`` raise :class:`ValueError`.
        ``synchronous="FULL"`` also survives power loss for the last commits; ``NORMAL`` in WAL
        mode is crash-safe for processes and loses at most the last commits on power loss.
        """
        path = Path(path)
        if _OWNER.fullmatch(owner) is None:
            raise ValueError(f"invalid store owner {owner!r}: use a short lower-case name")
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        steps = plan(migrations)
        try:
            ensure_private_dir(path.parent)
            create_private_file(path)
            conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StateError(
                f"cannot create or open {path}: {exc}. Check that the storage directory exists "
                "and is writable by the service's user"
            ) from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StateError(
                    f"{path}: SQLite refused WAL mode (journal_mode is {mode}); "
                    "put the storage directory on a local file system"
                )
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            current = check_existing(conn, path, owner, steps)
            for step in steps:
                if step.version > current:
                    apply_migration(conn, step, path, owner)
        except sqlite3.OperationalError as exc:
            conn.close()
            raise StateError(
                f"cannot prepare {path}: {exc}. If another process keeps it locked, stop that "
                "process and try again"
            ) from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StateError(
                f"{path} is not a usable SQLite database ({exc}). Move it away or restore a "
                "backup, then start again"
            ) from exc
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, owner)

    # -- life cycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent). Later calls raise :class:`StateError`."""
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StateError(f"the {self.owner} store {self.path} is closed")
        return self._conn

    @property
    def version(self) -> int:
        """The highest migration version applied to this database."""
        return max(applied_versions(self._connection()))

    # -- statements --------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Self]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back if the block raises.

        Nested use becomes a savepoint. The write lock is taken at the start, so the block
        never fails half-way with "database is locked"; keep it short.
        """
        with self._lock:
            conn = self._connection()
            if conn.in_transaction:
                self._savepoints += 1
                name = f"bridgehost_sp{self._savepoints}"
                conn.execute(f"SAVEPOINT {name}")
                try:
                    yield self
                except BaseException:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                    raise
                else:
                    conn.execute(f"RELEASE {name}")
                finally:
                    self._savepoints -= 1
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        """Run one statement (autocommitted unless inside :meth:`transaction`)."""
        with self._lock:
            return self._connection().execute(sql, params)

    def query(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Run one query and return all its rows."""
        with self._lock:
            return self._connection().execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """Run one query and return its first row, or ``None``."""
        with self._lock:
            row: sqlite3.Row | None = self._connection().execute(sql, params).fetchone()
            return row

    # -- settings ----------------------------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key``, or ``default`` if there is none."""
        row = self.query_one("SELECT value FROM settings WHERE key = ?", (key,))
        return default if row is None else json.loads(row[0])

    def set_setting(self, key: str, value: Any) -> None:
        """Store ``value`` (anything JSON can encode; ``TypeError``/``ValueError`` otherwise)."""
        text = json.dumps(value, allow_nan=False, sort_keys=True, ensure_ascii=False)
        self.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (key, text, utc_iso()),
        )

    def delete_setting(self, key: str) -> None:
        """Remove ``key`` (no error if it is absent)."""
        self.execute("DELETE FROM settings WHERE key = ?", (key,))
