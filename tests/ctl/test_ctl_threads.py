"""``bridgectl threads`` and ``bind``/``bind --latest`` with the real ``codex app-server``.

The Codex home is seeded through the app-server with a loopback fake model; its config.toml
keeps every later ``codex app-server`` (the ones bridgectl starts) on loopback too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ctl_harness import one_line_error, run_sync

from bridgehost.state.bridge_store import BridgeStore

UNKNOWN = "019a0000-0000-7000-8000-0000000dead0"


@dataclass
class Home:
    """A seeded CODEX_HOME and the bridgectl config that points at it."""

    config: Path
    storage: Path
    older: str
    newer: str


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """Two threads: "Older work" (named) and then an unnamed, newer one."""
    try:
        from fakes.codex_model import (
            CODEX_ENV,
            KEY_ENV,
            FakeCodexModel,
            codex_args,
            codex_home_config,
            find_codex_binary,
            seed_thread,
        )
    except ImportError as exc:
        pytest.skip(f"the Codex test kit is not available ({exc})")
    from bridgehost.codex import AppServerClient

    binary = find_codex_binary()
    if not binary:
        pytest.skip(
            "codex binary not found: run `npm install --prefix .codex-npm "
            "@openai/codex@0.169.0` or set BRIDGEHOST_CODEX_BIN"
        )
    root = tmp_path_factory.mktemp("ctl-threads")
    codex_home, cwd = root / "codex-home", root / "work"
    codex_home.mkdir()
    cwd.mkdir()

    async def seed(model: FakeCodexModel) -> tuple[str, str]:
        client = await AppServerClient.spawn(
            binary, codex_home, args=codex_args(model.port), env=CODEX_ENV, cwd=cwd, timeout=20
        )
        try:
            older = await seed_thread(client, cwd, ["refactor the parser"], name="Older work")
            await asyncio.sleep(1.1)  # updatedAt has a resolution of one second
            newer = await seed_thread(client, cwd, ["write the release notes"])
        finally:
            await client.close()
        return older, newer

    with FakeCodexModel() as model:
        older, newer = asyncio.run(seed(model))
        (codex_home / "config.toml").write_text(codex_home_config(model.port, KEY_ENV))
        config = root / "bridge.config.toml"
        storage = root / "state"
        config.write_text(
            f'[codex]\nbinary = "{binary}"\nhome = "{codex_home}"\n[storage]\nroot = "{storage}"\n'
        )
        yield Home(config, storage, older, newer)


def bound_thread(home: Home) -> str | None:
    store = BridgeStore.open(home.storage)
    try:
        return store.binding().thread_id
    finally:
        store.close()


def test_threads_lists_newest_first(home: Home, cli) -> None:
    listing = run_sync(cli, home.config, "threads")
    assert listing.code == 0, listing
    lines = listing.stdout.splitlines()
    assert lines[0].startswith(f"  {home.newer}  ") and "write the release notes" in lines[0]
    assert lines[1].startswith(f"  {home.older}  ") and "Older work" in lines[1]
    assert lines[-1].startswith("Nothing bound yet")

    data = run_sync(cli, home.config, "threads", "--json", "--limit", "1").json
    assert [t["id"] for t in data["threads"]] == [home.newer]
    assert data["bound_thread_id"] is None and data["threads"][0]["bound"] is False


def test_bind_latest_and_by_id(home: Home, cli) -> None:
    latest = run_sync(cli, home.config, "bind", "--latest")
    assert latest.code == 0, latest
    assert latest.stdout.startswith(
        f"Bound calls to Codex thread {home.newer} (write the release notes)."
    )
    assert bound_thread(home) == home.newer

    by_id = run_sync(cli, home.config, "bind", home.older, "--json")
    assert by_id.code == 0, by_id
    assert by_id.json["thread_id"] == home.older and by_id.json["verified"] is True
    assert by_id.json["thread"]["title"] == "Older work"
    assert by_id.json["previous_thread_id"] == home.newer
    assert by_id.stderr == ""

    listing = run_sync(cli, home.config, "threads")
    assert f"* {home.older}  " in listing.stdout

    unknown = run_sync(cli, home.config, "bind", UNKNOWN)
    assert unknown.code == 1, unknown
    assert f"Codex thread {UNKNOWN} was not found" in one_line_error(unknown)
    assert bound_thread(home) == home.older  # a refused bind changes nothing


def test_threads_without_codex(tmp_path: Path, cli) -> None:
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    config = tmp_path / "bridge.config.toml"
    config.write_text(
        f'[codex]\nbinary = "/nonexistent/codex"\nhome = "{codex_home}"\n'
        f'[storage]\nroot = "{tmp_path / "state"}"\n'
    )
    result = run_sync(cli, config, "threads")
    assert result.code == 2, result
    error = one_line_error(result)
    assert "codex binary '/nonexistent/codex' not found" in error
    assert "npm install -g @openai/codex" in error and "[codex] binary" in error


def test_threads_on_a_machine_with_no_codex_at_all(tmp_path: Path, cli) -> None:
    """No binary and no Codex home: the first fix named is installing codex, not `codex login`."""
    config = tmp_path / "bridge.config.toml"
    config.write_text(
        f'[codex]\nbinary = "/nonexistent/codex"\nhome = "{tmp_path / "no-home"}"\n'
        f'[storage]\nroot = "{tmp_path / "state"}"\n'
    )
    result = run_sync(cli, config, "threads")
    assert result.code == 2, result
    error = one_line_error(result)
    assert "codex binary '/nonexistent/codex' not found" in error
    assert "codex login" not in error
