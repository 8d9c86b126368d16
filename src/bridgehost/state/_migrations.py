"""Versioned schema migrations: the model, the base migration, and how one is applied."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bridgehost import __version__
from bridgehost.basics import utc_iso
from bridgehost.state._errors import StateError


@dataclass(frozen=True)
class Migration:
    """One step of a store's schema, applied once, inside a transaction, in version order.

    ``sql`` is a script of one or more statements; ``apply``, if given, runs after it with the
    connection (already inside the migration's transaction: it must not COMMIT, ROLLBACK or call
    ``executescript``, which commits). Version 0 is the base migration every store gets; a
    store's own migrations start at 1 and strictly increase. Never edit a released migration:
    add a new one.
    """

    version: int
    description: str
    sql: str = ""
    apply: Callable[[sqlite3.Connection], None] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise ValueError(f"migration version must be an int >= 0, got {self.version!r}")
        if not self.description.strip():
            raise ValueError(f"migration {self.version} needs a description")
        if not self.sql.strip() and self.apply is None:
            raise ValueError(f"migration {self.version} has neither sql nor apply")


BASE_MIGRATION = Migration(
    version=0,
    description="bridgehost bookkeeping: schema_migrations, store_meta, settings",
    sql="""
    CREATE TABLE schema_migrations (
        version     INTEGER PRIMARY KEY,
        description TEXT NOT NULL,
        applied_at  TEXT NOT NULL
    );
    CREATE TABLE store_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE settings (
        key        TEXT PRIMARY KEY,
        value      TEXT NOT NULL,   -- JSON
        updated_at TEXT NOT NULL
    );
    """,
)


def plan(migrations: Iterable[Migration]) -> tuple[Migration, ...]:
    """The base migration followed by ``migrations``; raise :class:`ValueError` if misordered.

    A duplicate or decreasing version, or a store migration claiming version 0, is a
    programming error in this build, not an operator problem.
    """
    steps = [BASE_MIGRATION]
    for migration in migrations:
        if not isinstance(migration, Migration):
            raise ValueError(f"expected a Migration, got {migration!r}")
        if migration.version == 0:
            raise ValueError("migration version 0 is reserved for the base migration; start at 1")
        if migration.version <= steps[-1].version:
            raise ValueError(
                f"migration versions must be unique and strictly increasing: "
                f"{migration.version} ({migration.description!r}) comes after {steps[-1].version}"
            )
        steps.append(migration)
    return tuple(steps)


def split_script(script: str) -> Iterator[str]:
    """Yield the statements of an SQL script one at a time (triggers and strings respected).

    ``Connection.executescript`` commits any open transaction first, so migrations run their
    statements one by one instead.
    """
    start = 0
    for index, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : index + 1]):
            yield script[start : index + 1]
            start = index + 1
    rest = script[start:]
    if rest.strip():
        yield rest


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    """Whether a table called ``name`` exists in the main schema."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def applied_versions(conn: sqlite3.Connection) -> list[int]:
    """The versions recorded in ``schema_migrations`` (empty if there is no such table)."""
    if not table_exists(conn, "schema_migrations"):
        return []
    return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


def stored_owner(conn: sqlite3.Connection) -> str | None:
    """The owner recorded in ``store_meta``, if any."""
    if not table_exists(conn, "store_meta"):
        return None
    row = conn.execute("SELECT value FROM store_meta WHERE key = 'owner'").fetchone()
    return None if row is None else str(row[0])


def apply_migration(conn: sqlite3.Connection, migration: Migration, path: Path, owner: str) -> bool:
    """Apply ``migration`` in its own ``BEGIN IMMEDIATE`` transaction; return whether it ran.

    The version is re-checked under the write lock, so two processes opening the same new file
    never apply a step twice. On failure everything the step did is rolled back and a
    :class:`StateError` naming the migration is raised.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        if migration.version in applied_versions(conn):
            conn.execute("ROLLBACK")
            return False
        for statement in split_script(migration.sql):
            conn.execute(statement)
        if migration.apply is not None:
            migration.apply(conn)
        if not conn.in_transaction:
            raise StateError(
                f"migration {migration.version} ({migration.description}) ended its own "
                f"transaction in {path}; it may be partly applied. This is a bug in bridgehost: "
                "restore a backup and report it"
            )
        now = utc_iso()
        conn.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.description, now),
        )
        conn.execute(f"PRAGMA user_version = {int(migration.version)}")
        if migration.version == 0:
            conn.executemany(
                "INSERT INTO store_meta (key, value) VALUES (?, ?)",
                [("owner", owner), ("created_at", now)],
            )
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, StateError) or not isinstance(exc, Exception):
            raise
        raise StateError(
            f"migration {migration.version} ({migration.description}) failed on {path}: {exc}. "
            "Nothing from it was applied; the database stays at the version before it"
        ) from exc
    return True


def check_existing(
    conn: sqlite3.Connection, path: Path, owner: str, steps: Sequence[Migration]
) -> int:
    """Refuse a file we must not touch; return its schema version (-1 for a new file)."""
    applied = applied_versions(conn)
    user_version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if not applied:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        if tables or user_version:
            raise StateError(
                f"{path} is an SQLite database but not a bridgehost state store (tables: "
                f"{', '.join(tables[:5]) or 'none'}). Point storage.root elsewhere or move the file"
            )
        return -1
    found = stored_owner(conn)
    if found is not None and found != owner:
        raise StateError(
            f"{path} is owned by the {found}; the {owner} keeps its own state in its own file "
            f"(by default {path.with_name(owner + '.db')}). Check the storage paths"
        )
    db_version, known = max(*applied, user_version), steps[-1].version
    if db_version > known:
        raise StateError(
            f"{path} is at schema version {db_version}, but this bridgehost ({__version__}) knows "
            f"versions up to {known}: a newer bridgehost wrote it. Upgrade bridgehost, or "
            "restore a backup taken before the upgrade"
        )
    missing = [s.version for s in steps if s.version < db_version and s.version not in applied]
    if missing:
        raise StateError(
            f"{path} is at schema version {db_version}, but migrations {missing} of this build "
            "were never applied to it (a migration was inserted below the newest one). This is "
            "a bug in bridgehost: restore a backup and report it"
        )
    return db_version
