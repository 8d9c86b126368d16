"""``bridgectl claim``/``release`` and ``bind THREAD_ID``: round trips through bridge.db, seen by
``status`` and ``capabilities`` (Codex unreachable here: ``[codex] binary`` points nowhere)."""

from __future__ import annotations

from pathlib import Path

from ctl_harness import (
    add_section,
    one_line_error,
    run,
    run_sync,
    write_config,
)

from bridgehost.state.bridge_store import BridgeStore

THREAD = "019a0000-0000-7000-8000-00000000beef"
OTHER = "019a0000-0000-7000-8000-00000000f00d"

pytest_plugins = ("ctl_fixtures",)  # the ctl_gateway fixture


def no_codex(config: Path) -> Path:
    """``config`` with a Codex home of its own but no codex binary."""
    home = config.parent / "codex-home"
    home.mkdir()
    add_section(config, f'[codex]\nbinary = "/nonexistent/codex"\nhome = "{home}"\n')
    return config


def owner_check(result) -> dict:
    return next(c for c in result.json["checks"] if c["name"] == "Session owner")


async def test_release_and_claim_round_trip(ctl_gateway, cli) -> None:
    gw = await ctl_gateway()
    config = gw.loaded.path

    released = await run(cli, config, "release")
    assert released.code == 0, released
    assert released.stdout.strip() == (
        "Session owner: desktop (was telegram). /call is refused until 'bridgectl claim'."
    )
    status = await run(cli, config, "status")
    assert "Owner:           desktop — /call is refused until 'bridgectl claim'" in status.stdout
    caps = await run(cli, config, "capabilities", "--json")
    assert caps.code == 1
    check = owner_check(caps)
    assert check["ok"] is False and check["detail"] == "owned by desktop"
    assert "bridgectl claim" in check["fix"]

    again = await run(cli, config, "release", "--json")
    assert again.json["owner"] == "desktop" and again.json["previous_owner"] == "desktop"

    claimed = await run(cli, config, "claim", "--json")
    assert claimed.code == 0, claimed
    assert claimed.json["owner"] == "telegram" and claimed.json["previous_owner"] == "desktop"
    status = await run(cli, config, "status", "--json")
    assert status.json["bridge"]["owner"] == "telegram"
    assert status.json["bridge"]["source"] == "bridge.db"
    assert owner_check(await run(cli, config, "capabilities", "--json"))["ok"] is True

    store = BridgeStore.open(gw.loaded.config.storage.root)
    try:
        assert store.binding().owner == "telegram"
    finally:
        store.close()


async def test_bind_round_trip_without_codex(ctl_gateway, cli) -> None:
    gw = await ctl_gateway()
    config = no_codex(gw.loaded.path)
    before = await run(cli, config, "status")
    assert "Bound thread:    none — run 'bridgectl bind --latest'" in before.stdout

    bound = await run(cli, config, "bind", THREAD)
    assert bound.code == 0, bound
    assert bound.stdout.startswith(f"Bound calls to Codex thread {THREAD}.")
    assert "note: could not check the thread with Codex" in bound.stderr
    assert "/nonexistent/codex" in bound.stderr

    status = await run(cli, config, "status")
    assert f"Bound thread:    {THREAD} (bound " in status.stdout
    caps = (await run(cli, config, "capabilities", "--json")).json
    thread = next(c for c in caps["checks"] if c["name"] == "Bound Codex thread")
    assert thread == {"name": "Bound Codex thread", "ok": True, "detail": THREAD, "fix": None}

    rebound = await run(cli, config, "bind", OTHER, "--json")
    assert rebound.code == 0, rebound
    assert rebound.json["thread_id"] == OTHER and rebound.json["previous_thread_id"] == THREAD
    assert rebound.json["verified"] is False and rebound.json["thread"] is None
    assert (await run(cli, config, "status", "--json")).json["bridge"]["thread_id"] == OTHER


def test_bind_usage_and_missing_codex(tmp_path: Path, cli) -> None:
    config = no_codex(write_config(tmp_path, 9))
    neither = run_sync(cli, config, "bind")
    assert neither.code == 2 and "give a THREAD_ID or --latest" in one_line_error(neither)
    bad = run_sync(cli, config, "bind", "not a thread")
    assert bad.code == 2 and "is not a Codex thread id" in one_line_error(bad)
    latest = run_sync(cli, config, "bind", "--latest", "--json")
    assert latest.code == 2, latest
    assert latest.json["error"]["code"] == "codex_missing"
    assert "/nonexistent/codex" in one_line_error(latest)
    # Nothing was bound by the refusals.
    assert not (tmp_path / "state" / "bridge.db").exists()
