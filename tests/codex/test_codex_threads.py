"""Thread listing, recent turns and the call context, read from the real ``codex app-server``.

One CODEX_HOME for the module, seeded once through the app-server: thread "Alpha" (two plain
turns, a turn whose model output has a commentary message before the final answer, and an
interrupted turn) and an unnamed thread "beta" created first but updated last.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from bridgehost.codex import (
    AppServerClient,
    CodexThreadNotFound,
    call_context_parts,
    latest_thread,
    list_threads,
    recent_turns,
)
from fakes.codex_model import (
    CODEX_ENV,
    FakeCodexModel,
    codex_args,
    find_codex_binary,
    run_turn,
    seed_thread,
)

LONG = "beta " + "word " * 120


@dataclass
class Seeded:
    """The module's CODEX_HOME and what is in it."""

    binary: str
    home: Path
    cwd: Path
    model: FakeCodexModel
    alpha: str
    beta: str


async def _interrupted_turn(client: AppServerClient, model: FakeCodexModel, tid: str) -> None:
    """A turn stopped by turn/interrupt while the model is still answering."""
    model.delay_s = 30
    before = len(model.posts())
    with client.subscribe({"turn/completed"}) as done:
        started = await client.request(
            "turn/start",
            {
                "threadId": tid,
                "input": [{"type": "text", "text": "alpha aborted", "text_elements": []}],
            },
        )
        for _ in range(200):
            if len(model.posts()) > before:
                break
            await asyncio.sleep(0.02)
        model.delay_s = 0
        await client.request("turn/interrupt", {"threadId": tid, "turnId": started["turn"]["id"]})
        note = await done.get(timeout=20)
    assert note["params"]["turn"]["status"] == "interrupted"


async def _seed(binary: str, home: Path, cwd: Path, model: FakeCodexModel) -> tuple[str, str]:
    client = await AppServerClient.spawn(
        binary, home, args=codex_args(model.port), env=CODEX_ENV, cwd=cwd, timeout=20
    )
    try:
        beta = await seed_thread(client, cwd, [LONG])
        alpha = await seed_thread(client, cwd, ["alpha one", "alpha two"], name="Alpha")
        model.script(("commentary", "let me look at the code"), ("final_answer", "alpha final"))
        await run_turn(client, alpha, "alpha three")
        await _interrupted_turn(client, model, alpha)
        await asyncio.sleep(1.1)  # updatedAt has a resolution of one second
        await run_turn(client, beta, "beta again")
    finally:
        await client.close()
    return alpha, beta


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """The seeded CODEX_HOME (skips without the codex binary)."""
    binary = find_codex_binary()
    if not binary:
        pytest.skip(
            "codex binary not found: run `npm install --prefix .codex-npm "
            "@openai/codex@0.169.0` or set BRIDGEHOST_CODEX_BIN"
        )
    root = tmp_path_factory.mktemp("threads")
    home, cwd = root / "codex-home", root / "work"
    home.mkdir()
    cwd.mkdir()
    with FakeCodexModel() as model:
        alpha, beta = asyncio.run(_seed(binary, home, cwd, model))
        yield Seeded(binary, home, cwd, model, alpha, beta)


@pytest.fixture
async def client(seeded: Seeded) -> AsyncIterator[AppServerClient]:
    """A fresh app-server process on the seeded home (nothing loaded in it)."""
    c = await AppServerClient.spawn(
        seeded.binary,
        seeded.home,
        args=codex_args(seeded.model.port),
        env=CODEX_ENV,
        cwd=seeded.cwd,
        timeout=20,
    )
    yield c
    await c.close()


async def test_list_threads_newest_update_first(client: AppServerClient, seeded: Seeded) -> None:
    threads = await list_threads(client)
    assert [t.id for t in threads] == [seeded.beta, seeded.alpha]
    beta, alpha = threads
    assert alpha.title == "Alpha" and alpha.name == "Alpha" and alpha.preview == "alpha one"
    assert beta.name is None and beta.title == LONG.strip()
    assert alpha.cwd == beta.cwd == str(seeded.cwd)
    assert beta.updated_at > alpha.updated_at and beta.updated_at.tzinfo is not None
    assert alpha.status == "notLoaded"
    assert [t.id for t in await list_threads(client, limit=1)] == [seeded.beta]
    latest = await latest_thread(client)
    assert latest is not None and latest.id == seeded.beta


async def test_latest_thread_of_an_empty_home(seeded: Seeded, tmp_path: Path) -> None:
    home = tmp_path / "empty-home"
    home.mkdir()
    async with await AppServerClient.spawn(
        seeded.binary, home, args=codex_args(seeded.model.port), env=CODEX_ENV, timeout=20
    ) as c:
        assert await list_threads(c) == []
        assert await latest_thread(c) is None


async def test_recent_turns_drop_aborted_and_non_final(
    client: AppServerClient, seeded: Seeded
) -> None:
    raw = await client.request("thread/turns/list", {"threadId": seeded.alpha, "itemsView": "full"})
    statuses = [t["status"] for t in raw["data"]]
    phases = [
        i.get("phase") for t in raw["data"] for i in t["items"] if i["type"] == "agentMessage"
    ]
    assert "interrupted" in statuses and "commentary" in phases  # both are really there

    turns = await recent_turns(client, seeded.alpha)
    assert [(t.role, t.text) for t in turns] == [
        ("user", "alpha one"),
        ("assistant", "FAKE-REPLY to: alpha one"),
        ("user", "alpha two"),
        ("assistant", "FAKE-REPLY to: alpha two"),
        ("user", "alpha three"),
        ("assistant", "alpha final"),
    ]
    stamps = [t.timestamp for t in turns]
    assert all(isinstance(s, datetime) and s.tzinfo for s in stamps)
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    last3 = await recent_turns(client, seeded.alpha, limit=3)
    assert [t.text for t in last3] == ["FAKE-REPLY to: alpha two", "alpha three", "alpha final"]
    assert await recent_turns(client, seeded.alpha, limit=0) == []


async def test_recent_turns_of_unknown_thread(client: AppServerClient) -> None:
    with pytest.raises(CodexThreadNotFound, match="bridgectl bind --latest"):
        await recent_turns(client, "01a20000-0000-7000-8000-000000000000")


async def test_call_context_parts_are_short(client: AppServerClient, seeded: Seeded) -> None:
    started = time.monotonic()
    summary, recent = await call_context_parts(client, seeded.beta)
    assert time.monotonic() - started < 5
    assert seeded.beta in summary.text and str(seeded.cwd) in summary.text
    assert "Latest user focus: beta again" in summary.text
    assert "Latest assistant response: FAKE-REPLY to: beta again" in summary.text
    assert summary.priority > recent.priority
    lines = recent.text.splitlines()
    assert lines[0].startswith("user: beta word") and lines[0].endswith("…")
    assert lines[-1] == "assistant: FAKE-REPLY to: beta again"
    assert len(lines) == 4
    assert all(len(line.split(": ", 1)[1]) <= 180 for line in lines)
