"""Handoffs into a Codex thread through the real ``codex app-server`` (loopback model only).

Each test gets a fresh thread with two turns in the module's CODEX_HOME, appends through a
private app-server, and reads the thread back (often from a second app-server process).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from bridgehost.codex import (
    AppServerClient,
    CodexThreadBusy,
    CodexThreadNotFound,
    CodexThreadNotMaterialized,
    append_handoff,
    call_context_parts,
    control_socket_path,
    find_handoff,
    open_app_server,
    recent_turns,
)
from bridgehost.config import CodexConfig
from fakes.codex_model import (
    CODEX_ENV,
    FakeCodexModel,
    codex_args,
    input_texts,
    run_turn,
    seed_thread,
)

SUMMARY = "Voice call summary: bump the retry limit to 5 in config.py."


@pytest.fixture(scope="module")
def model() -> Iterator[FakeCodexModel]:
    """The loopback model provider."""
    with FakeCodexModel() as fake:
        yield fake


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's CODEX_HOME."""
    path = tmp_path_factory.mktemp("handoff") / "codex-home"
    path.mkdir()
    return path


Spawn = Callable[..., Awaitable[AppServerClient]]


@pytest.fixture
async def spawn(
    codex_bin: str, home: Path, model: FakeCodexModel, tmp_path: Path
) -> AsyncIterator[Spawn]:
    """Start private app-servers on the module's home; all are closed after the test."""
    clients: list[AppServerClient] = []

    async def start(port: int | None = None) -> AppServerClient:
        c = await AppServerClient.spawn(
            codex_bin,
            home,
            args=codex_args(port or model.port),
            env=CODEX_ENV,
            cwd=tmp_path,
            timeout=20,
        )
        clients.append(c)
        return c

    yield start
    for c in clients:
        await c.close()


@pytest.fixture
async def client(spawn: Spawn) -> AppServerClient:
    """A private app-server, closed after the test."""
    return await spawn()


@pytest.fixture
async def thread(client: AppServerClient, tmp_path: Path) -> str:
    """A fresh thread with two completed turns, still loaded in ``client``."""
    return await seed_thread(client, tmp_path, ["first request", "second request"])


async def _turn_texts(c: AppServerClient, thread_id: str) -> list[str]:
    return [t.text for t in await recent_turns(c, thread_id, limit=50)]


async def test_turn_handoff_lands_in_the_thread(
    client, spawn, thread: str, model: FakeCodexModel
) -> None:
    receipt = await append_handoff(client, thread, text=SUMMARY, mode="turn", call_id="c-turn")
    assert (receipt.status, receipt.mode, receipt.duplicate) == ("completed", "turn", False)
    assert receipt.turn_id and receipt.transport == "stdio" and receipt.error is None
    expected = f"bridgehost-handoff: c-turn\n{SUMMARY}"
    assert input_texts(model.posts()[-1])[-1] == expected
    await client.close()

    reader = await spawn()
    texts = await _turn_texts(reader, thread)
    assert texts[-2:] == [expected, f"FAKE-REPLY to: {expected}"]
    attachments = await reader.request("thread/attachment/list", {"threadId": thread})
    assert [a["identityKey"] for a in attachments["data"]] == ["bridgehost-handoff:c-turn"]
    parts = await call_context_parts(reader, thread)
    assert f"user: (voice call handoff) {SUMMARY}" in parts[1].text
    await reader.close()


async def test_inject_handoff_adds_context_without_a_model_call(
    client, spawn, thread: str, model: FakeCodexModel
) -> None:
    calls = len(model.posts())
    receipt = await append_handoff(client, thread, text=SUMMARY, mode="inject", call_id="c-inject")
    assert (receipt.status, receipt.mode, receipt.turn_id) == ("injected", "inject", None)
    assert len(model.posts()) == calls
    assert len(await _turn_texts(client, thread)) == 4  # invisible in the thread's turns
    await client.close()

    later = await spawn()  # the next turn, in another process, carries it to the model
    await later.request("thread/resume", {"threadId": thread, "excludeTurns": True})
    await run_turn(later, thread, "what did the call decide?")
    texts = input_texts(model.posts()[-1])
    marked = f"bridgehost-handoff: c-inject\n{SUMMARY}"
    assert texts.index(marked) == texts.index("what did the call decide?") - 1
    await later.close()


@pytest.mark.parametrize("mode", ["turn", "inject"])
async def test_retried_append_is_not_duplicated(
    client, spawn, thread: str, mode: str, model: FakeCodexModel
) -> None:
    first = await append_handoff(client, thread, text=SUMMARY, mode=mode, call_id="c-retry")
    await client.close()
    calls = len(model.posts())

    retry_client = await spawn()  # a retry after a restart: a new process
    again = await append_handoff(retry_client, thread, text=SUMMARY, mode=mode, call_id="c-retry")
    assert again.duplicate and not first.duplicate
    assert (again.status, again.turn_id, again.mode) == (first.status, first.turn_id, mode)
    assert len(model.posts()) == calls
    await retry_client.request("thread/resume", {"threadId": thread, "excludeTurns": True})
    await run_turn(retry_client, thread, "next")
    marked = f"bridgehost-handoff: c-retry\n{SUMMARY}"
    assert input_texts(model.posts()[-1]).count(marked) == 1
    await retry_client.close()


async def test_marker_alone_is_enough_to_detect_an_earlier_append(
    client, thread: str, model: FakeCodexModel
) -> None:
    """No attachment record (say a crash right after appending): the marker still counts."""
    await client.request("thread/resume", {"threadId": thread, "excludeTurns": True})
    turn = await run_turn(client, thread, "bridgehost-handoff: c-raw-turn\nhand-made")
    await client.request(
        "thread/inject_items",
        {
            "threadId": thread,
            "items": [
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "bridgehost-handoff: c-raw-inject\nx"}
                    ],
                }
            ],
        },
    )
    calls = len(model.posts())
    by_turn = await append_handoff(client, thread, text="x", mode="turn", call_id="c-raw-turn")
    by_inject = await append_handoff(
        client, thread, text="x", mode="inject", call_id="c-raw-inject"
    )
    assert by_turn.duplicate and by_turn.turn_id == turn["id"]
    assert by_inject.duplicate and by_inject.status == "injected"
    assert len(model.posts()) == calls


@pytest.mark.parametrize("mode", ["turn", "inject"])
async def test_handoff_to_a_brand_new_thread(
    client, tmp_path: Path, mode: str, model: FakeCodexModel
) -> None:
    """A thread with no user message yet has no turns to search (thread/turns/list refuses it):
    that is no earlier handoff, so the first append goes ahead and a retry finds it."""
    thread = (await client.request("thread/start", {"cwd": str(tmp_path)}))["thread"]["id"]
    with pytest.raises(CodexThreadNotMaterialized):
        await client.request("thread/turns/list", {"threadId": thread, "limit": 1})
    assert await find_handoff(client, thread, "c-new") is None

    first = await append_handoff(client, thread, text=SUMMARY, mode=mode, call_id="c-new")
    assert not first.duplicate and first.error is None
    assert first.status == ("completed" if mode == "turn" else "injected")
    if mode == "turn":
        assert input_texts(model.posts()[-1])[-1] == f"bridgehost-handoff: c-new\n{SUMMARY}"
    again = await append_handoff(client, thread, text=SUMMARY, mode=mode, call_id="c-new")
    assert again.duplicate and (again.status, again.turn_id) == (first.status, first.turn_id)


async def test_wrong_thread_id_names_the_fix(client, model: FakeCodexModel) -> None:
    calls = len(model.posts())
    with pytest.raises(CodexThreadNotFound) as info:
        await append_handoff(
            client,
            "01a20000-0000-7000-8000-000000000000",
            text=SUMMARY,
            mode="turn",
            call_id="c-wrong",
        )
    message = str(info.value)
    assert "was not found" in message and "bridgectl threads" in message
    assert "bridgectl bind --latest" in message
    assert len(model.posts()) == calls
    with pytest.raises(ValueError, match="call id"):
        await append_handoff(client, "x", text=SUMMARY, mode="turn", call_id="bad id\n")


async def test_slow_turn_reports_started_and_leaves_no_waiter(
    client, thread: str, model: FakeCodexModel
) -> None:
    model.delay_s = 20
    try:
        receipt = await append_handoff(
            client, thread, text=SUMMARY, mode="turn", call_id="c-slow", wait_s=0.3
        )
    finally:
        model.delay_s = 0
    assert receipt.status == "started" and receipt.turn_id and receipt.error is None
    assert not client._subscriptions
    again = await append_handoff(client, thread, text=SUMMARY, mode="turn", call_id="c-slow")
    assert again.duplicate and again.turn_id == receipt.turn_id and again.status == "started"


async def test_refused_credentials_fail_with_the_login_fix(
    client, thread: str, model: FakeCodexModel
) -> None:
    model.status = 401
    try:
        receipt = await append_handoff(client, thread, text=SUMMARY, mode="turn", call_id="c-401")
    finally:
        model.status = 200
    assert receipt.status == "failed" and receipt.turn_id
    assert receipt.error and "codex login" in receipt.error
    again = await append_handoff(client, thread, text=SUMMARY, mode="turn", call_id="c-401")
    assert again.duplicate and again.status == "failed" and "codex login" in str(again.error)


async def test_unreachable_model_provider_is_named(client, spawn, thread: str) -> None:
    await client.close()  # release the thread
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    c = await spawn(port=port)
    receipt = await append_handoff(
        c, thread, text=SUMMARY, mode="turn", call_id="c-down", wait_s=1.5
    )
    assert receipt.status == "started"
    assert receipt.error and "could not reach its model provider" in receipt.error
    await c.close()


async def test_thread_held_by_another_process(client, spawn, thread: str) -> None:
    await client.request("thread/resume", {"threadId": thread, "excludeTurns": True})
    other = await spawn()
    with pytest.raises(CodexThreadBusy, match="another Codex process"):
        await append_handoff(other, thread, text=SUMMARY, mode="inject", call_id="c-busy")
    await other.close()


@pytest.fixture
def listener(codex_bin: str, model: FakeCodexModel, tmp_path: Path) -> Iterator[Path]:
    """A shared ``codex app-server --listen unix://`` on its own CODEX_HOME (our own pid)."""
    codex_home = tmp_path / "shared-home"
    codex_home.mkdir()
    proc = subprocess.Popen(
        [codex_bin, "app-server", "--listen", "unix://", *codex_args(model.port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **CODEX_ENV, "CODEX_HOME": str(codex_home)},
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        yield codex_home
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


async def test_handoff_through_the_control_socket(
    listener: Path, codex_bin: str, model: FakeCodexModel, tmp_path: Path
) -> None:
    sock = control_socket_path(listener)
    for _ in range(300):
        if sock.exists():
            break
        await asyncio.sleep(0.05)
    owner = await AppServerClient.connect(sock, home=listener, timeout=20)  # "the desktop app"
    try:
        tid = await seed_thread(owner, tmp_path, ["desktop turn"])
        config = CodexConfig(binary=codex_bin, home=listener, app_server_timeout_s=20)
        with owner.subscribe({"turn/completed"}) as live:
            c = await open_app_server(config, thread_id=tid)
            assert c.transport == "socket" and c.pid is None
            receipt = await append_handoff(c, tid, text=SUMMARY, mode="turn", call_id="c-sock")
            await c.close()
            seen = await live.get(timeout=10)
        assert receipt.status == "completed" and receipt.transport == "socket"
        assert seen["params"]["turn"]["id"] == receipt.turn_id  # the owner saw it live
        assert (await _turn_texts(owner, tid))[-2] == f"bridgehost-handoff: c-sock\n{SUMMARY}"

        private = await open_app_server(
            config,
            thread_id="01a20000-0000-7000-8000-00000000000f",
            args=codex_args(model.port),
            env=CODEX_ENV,
        )
        assert private.transport == "stdio"  # not loaded there: a private server instead
        await private.close()
    finally:
        await owner.close()
