"""Tests for bridgehost.state: the SQLite store, its migrations, settings and paths."""

from __future__ import annotations

import sqlite3
import stat
import threading
from contextlib import closing
from pathlib import Path

import pytest

from bridgehost.state import Migration, StateError, Store, default_paths, validate_call_id

M1 = Migration(1, "calls table", "CREATE TABLE calls (id TEXT PRIMARY KEY, n INTEGER);")
M2 = Migration(2, "calls.note", "ALTER TABLE calls ADD COLUMN note TEXT;")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def migrations_table(path: Path) -> list[tuple[int, str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT * FROM schema_migrations ORDER BY version").fetchall()


def test_pragmas_wal_foreign_keys_synchronous(tmp_path: Path) -> None:
    with Store.open(tmp_path / "g.db", "gateway", busy_timeout=2.5) as store:
        assert store.query_one("PRAGMA journal_mode")[0] == "wal"
        assert store.query_one("PRAGMA foreign_keys")[0] == 1
        assert store.query_one("PRAGMA synchronous")[0] == 1  # NORMAL
        assert store.query_one("PRAGMA busy_timeout")[0] == 2500
    with Store.open(tmp_path / "g.db", "gateway", synchronous="FULL") as store:
        assert store.query_one("PRAGMA synchronous")[0] == 2
    # WAL is persistent: a plain connection sees it too.
    with closing(sqlite3.connect(tmp_path / "g.db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_file_and_directory_modes(tmp_path: Path) -> None:
    db = tmp_path / "state" / "nested" / "gateway.db"
    with Store.open(db, "gateway", [M1]) as store:
        store.execute("INSERT INTO calls (id) VALUES ('a')")
        assert mode(db) == 0o600
        assert mode(db.parent) == 0o700
        assert mode(db.parent.parent) == 0o700
        for suffix in ("-wal", "-shm"):
            side = db.with_name(db.name + suffix)
            assert side.exists()
            assert mode(side) == 0o600


def test_migrations_applied_once_and_idempotent_on_reopen(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with Store.open(db, "gateway", [M1]) as store:
        assert store.version == 1
        store.execute("INSERT INTO calls (id, n) VALUES ('c1', 1)")
    first = migrations_table(db)
    assert [(v, d) for v, d, _ in first] == [(0, first[0][1]), (1, "calls table")]
    with Store.open(db, "gateway", [M1]) as store:
        assert store.version == 1
        assert store.query_one("SELECT n FROM calls WHERE id = 'c1'")["n"] == 1
        assert store.query_one("PRAGMA user_version")[0] == 1
    assert migrations_table(db) == first  # not re-applied, applied_at unchanged


def test_new_migration_applied_on_reopen(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with Store.open(db, "gateway", [M1]) as store:
        store.execute("INSERT INTO calls (id) VALUES ('c1')")
    with Store.open(db, "gateway", [M1, M2]) as store:
        assert store.version == 2
        store.execute("UPDATE calls SET note = 'hi' WHERE id = 'c1'")
        assert store.query("SELECT id, note FROM calls")[0]["note"] == "hi"
    assert [v for v, _, _ in migrations_table(db)] == [0, 1, 2]


def test_database_newer_than_code_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    Store.open(db, "gateway", [M1, M2]).close()
    with pytest.raises(StateError) as info:
        Store.open(db, "gateway", [M1])
    message = str(info.value)
    assert str(db) in message
    assert "schema version 2" in message and "up to 1" in message
    assert "Upgrade bridgehost" in message and "restore a backup" in message


def test_failing_migration_rolls_back_and_names_itself(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    bad = Migration(2, "half-broken", "CREATE TABLE extra (x); INSERT INTO missing VALUES (1);")
    with pytest.raises(StateError, match=r"migration 2 \(half-broken\) failed") as info:
        Store.open(db, "gateway", [M1, bad])
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    with Store.open(db, "gateway", [M1]) as store:  # M1 committed, nothing of the bad one
        assert store.version == 1
        assert store.query_one("SELECT name FROM sqlite_master WHERE name = 'extra'") is None
        assert store.query_one("PRAGMA user_version")[0] == 1


def test_failing_callable_migration_rolls_back(tmp_path: Path) -> None:
    def boom(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO calls (id) VALUES ('ghost')")
        raise RuntimeError("data fix failed")

    db = tmp_path / "g.db"
    Store.open(db, "gateway", [M1]).close()
    with pytest.raises(StateError, match=r"migration 2 .*data fix failed"):
        Store.open(db, "gateway", [M1, Migration(2, "data fix", apply=boom)])
    with Store.open(db, "gateway", [M1]) as store:
        assert store.query("SELECT * FROM calls") == []


def test_callable_and_script_with_trigger(tmp_path: Path) -> None:
    script = """
    CREATE TABLE log (msg TEXT);  -- a comment; with a semicolon
    CREATE TRIGGER calls_ins AFTER INSERT ON calls BEGIN
        INSERT INTO log (msg) VALUES ('new; call ' || NEW.id);
    END;
    """

    def seed(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO calls (id) VALUES ('seeded')")

    with Store.open(tmp_path / "g.db", "gateway", [M1, Migration(2, "log", script, seed)]) as s:
        assert [r["msg"] for r in s.query("SELECT msg FROM log")] == ["new; call seeded"]


@pytest.mark.parametrize(
    "migrations",
    [[M1, M1], [M2, M1], [Migration(0, "clash", "SELECT 1;")], [M1, "nope"]],
)
def test_misordered_migrations_are_a_programming_error(tmp_path: Path, migrations: list) -> None:
    with pytest.raises(ValueError):
        Store.open(tmp_path / "g.db", "gateway", migrations)
    assert not (tmp_path / "g.db").exists()


def test_migration_needs_content() -> None:
    with pytest.raises(ValueError):
        Migration(1, "empty")
    with pytest.raises(ValueError):
        Migration(-1, "negative", "SELECT 1;")


def test_owner_mismatch_is_refused(tmp_path: Path) -> None:
    paths = default_paths(tmp_path)
    Store.open(paths.gateway_db, "gateway").close()
    with pytest.raises(StateError) as info:
        Store.open(paths.gateway_db, "bridge")
    message = str(info.value)
    assert f"{paths.gateway_db} is owned by the gateway; the bridge keeps its own state" in message
    assert str(paths.bridge_db) in message


def test_foreign_or_garbage_files_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "other.db"
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE stuff (x)")
    with pytest.raises(StateError, match="not a bridgehost state store"):
        Store.open(foreign, "gateway")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StateError, match="not a usable SQLite database"):
        Store.open(garbage, "gateway")


def test_settings_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    value = {"thread": "t-1", "ids": [1, 2.5, None], "ok": True, "name": "Zoë"}
    with Store.open(db, "bridge") as store:
        assert store.get_setting("binding") is None
        assert store.get_setting("binding", {}) == {}
        store.set_setting("binding", value)
        store.set_setting("armed", False)
        assert store.get_setting("binding") == value
        store.set_setting("binding", 7)
        assert store.get_setting("binding") == 7
        with pytest.raises(ValueError):
            store.set_setting("bad", float("nan"))
        with pytest.raises(TypeError):
            store.set_setting("bad", object())
    with Store.open(db, "bridge") as store:
        assert store.get_setting("binding") == 7
        assert store.get_setting("armed") is False
        store.delete_setting("armed")
        assert store.get_setting("armed") is None


def test_transactions_commit_roll_back_and_nest(tmp_path: Path) -> None:
    with Store.open(tmp_path / "g.db", "gateway", [M1]) as store:
        with store.transaction():
            store.execute("INSERT INTO calls (id) VALUES ('a')")
        with pytest.raises(RuntimeError), store.transaction():
            store.execute("INSERT INTO calls (id) VALUES ('b')")
            raise RuntimeError
        with store.transaction():
            store.execute("INSERT INTO calls (id) VALUES ('c')")
            with pytest.raises(sqlite3.IntegrityError), store.transaction():
                store.execute("INSERT INTO calls (id) VALUES ('d')")
                store.execute("INSERT INTO calls (id) VALUES ('a')")
        assert [r["id"] for r in store.query("SELECT id FROM calls ORDER BY id")] == ["a", "c"]


def test_transaction_excludes_other_threads(tmp_path: Path) -> None:
    with Store.open(tmp_path / "g.db", "gateway", [M1]) as store:
        seen: list[int] = []
        with store.transaction():
            store.execute("INSERT INTO calls (id) VALUES ('a')")
            worker = threading.Thread(
                target=lambda: seen.append(store.query_one("SELECT count(*) FROM calls")[0])
            )
            worker.start()
            worker.join(0.05)
            assert worker.is_alive()  # waits for the transaction to end
            store.execute("INSERT INTO calls (id) VALUES ('b')")
        worker.join(1)
        assert seen == [2]


def test_closed_store_raises(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "g.db", "gateway")
    store.close()
    store.close()
    with pytest.raises(StateError, match="closed"):
        store.get_setting("x")


def test_default_paths_and_call_ids(tmp_path: Path) -> None:
    paths = default_paths(tmp_path)
    assert paths.gateway_db == tmp_path / "gateway.db"
    assert paths.bridge_db == tmp_path / "bridge.db"
    assert paths.calls_dir == tmp_path / "calls"
    assert paths.call_dir("c_1-A") == tmp_path / "calls" / "c_1-A"
    assert paths.call_log("c1") == tmp_path / "calls" / "c1" / "events.jsonl"
    assert validate_call_id("x" * 64) == "x" * 64
    for bad in ["../x", "..", ".", "", "a/b", "a\\b", "x" * 65, "abc\n", "ca ll", "é", "/abs"]:
        with pytest.raises(ValueError, match="invalid call id"):
            paths.call_dir(bad)
    assert not paths.root.joinpath("calls").exists()  # nothing created
