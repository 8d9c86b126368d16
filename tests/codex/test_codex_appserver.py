"""The app-server client against the real ``codex`` binary (isolated CODEX_HOME, loopback model).

Also a few stand-in executables (small Python scripts) for what the real binary will not do on
request: never answer, ignore SIGTERM, die at start-up.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridgehost.codex import (
    AppServerClient,
    CodexError,
    CodexThreadNotFound,
    open_app_server,
)
from bridgehost.config import CodexConfig
from fakes.codex_model import (
    CODEX_ENV,
    FakeCodexModel,
    codex_args,
    descendants,
    run_turn,
    running,
)

UNKNOWN_THREAD = "01a20000-0000-7000-8000-000000000000"


@pytest.fixture(scope="module")
def fake_model() -> Iterator[FakeCodexModel]:
    """The loopback model provider."""
    with FakeCodexModel() as model:
        yield model


@pytest.fixture(scope="module")
def codex_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CODEX_HOME of this module's own."""
    home = tmp_path_factory.mktemp("appserver") / "codex-home"
    home.mkdir()
    return home


@pytest.fixture
async def client(
    codex_bin: str, codex_home: Path, fake_model: FakeCodexModel, tmp_path: Path
) -> AsyncIterator[AppServerClient]:
    """A private app-server for one test."""
    c = await AppServerClient.spawn(
        codex_bin,
        codex_home,
        args=codex_args(fake_model.port),
        env=CODEX_ENV,
        cwd=tmp_path,
        timeout=20,
    )
    yield c
    await c.close()


def stub(tmp_path: Path, body: str) -> str:
    """An executable Python script standing in for codex."""
    path = tmp_path / "codex-stub"
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


async def test_handshake_and_concurrent_requests_match(
    client: AppServerClient, codex_home: Path, tmp_path: Path
) -> None:
    assert client.transport == "stdio"
    assert client.server_info["codexHome"] == str(codex_home)
    assert client.server_info["userAgent"].startswith("bridgehost/")
    dirs = [tmp_path / f"w{i}" for i in range(4)]
    for d in dirs:
        d.mkdir()
    results = await asyncio.gather(
        *(client.request("thread/start", {"cwd": str(d)}) for d in dirs),
        client.request("account/read", {}),
        client.request("thread/list", {"limit": 1}),
    )
    assert [r["thread"]["cwd"] for r in results[:4]] == [str(d) for d in dirs]
    assert results[4]["requiresOpenaiAuth"] is False
    assert "nextCursor" in results[5]
    loaded = await client.request("thread/loaded/list", {})
    assert {r["thread"]["id"] for r in results[:4]} <= set(loaded["data"])


async def test_notifications_reach_every_subscriber(
    client: AppServerClient, tmp_path: Path
) -> None:
    tid = (await client.request("thread/start", {"cwd": str(tmp_path)}))["thread"]["id"]
    with client.subscribe() as everything, client.subscribe({"turn/completed"}) as done:
        turn = await run_turn(client, tid, "hello codex")
        assert turn["status"] == "completed"
        seen = []
        while not seen or seen[-1] != "turn/completed":
            seen.append((await everything.get(timeout=5))["method"])
        only = await done.get(timeout=5)
    assert only["params"]["turn"]["id"] == turn["id"]
    assert seen.index("turn/started") < seen.index("item/completed") < seen.index("turn/completed")
    assert "item/agentMessage/delta" not in seen  # opted out at initialize
    assert not client._subscriptions


async def test_rpc_errors_name_the_fix(client: AppServerClient) -> None:
    for bad in (UNKNOWN_THREAD, "not-a-uuid"):
        with pytest.raises(CodexThreadNotFound) as info:
            await client.request("thread/turns/list", {"threadId": bad})
        assert "bridgectl threads" in str(info.value)
        assert "bridgectl bind --latest" in str(info.value)
    with pytest.raises(CodexError, match="refused thread/doesNotExist"):
        await client.request("thread/doesNotExist", {})


async def test_missing_binary_says_how_to_install(tmp_path: Path) -> None:
    for binary in (str(tmp_path / "no-such-codex"), "bridgehost-no-such-codex"):
        with pytest.raises(CodexError) as info:
            await AppServerClient.spawn(binary, tmp_path)
        assert "install with npm install -g @openai/codex or set [codex] binary" in str(info.value)
    config = CodexConfig(binary="bridgehost-no-such-codex", home=tmp_path)
    with pytest.raises(CodexError, match="npm install -g @openai/codex"):
        await open_app_server(config)


async def test_missing_home_says_what_to_set(codex_bin: str, tmp_path: Path) -> None:
    with pytest.raises(CodexError, match=r"does not exist.*\[codex\] home"):
        await AppServerClient.spawn(codex_bin, tmp_path / "absent")


async def test_close_leaves_no_codex_process(client: AppServerClient) -> None:
    pids = [client.pid, *descendants(client.pid)]
    assert client.pid is not None and all(running(p) for p in pids)
    await client.close()
    assert not [p for p in pids if running(p)]
    with pytest.raises(CodexError, match="closed"):
        await client.request("thread/list", {})


async def test_killed_wrapper_leaves_no_orphan(client: AppServerClient) -> None:
    """SIGKILL of the npm wrapper would orphan the native server; close() ends it too."""
    assert client.pid is not None
    pids = [client.pid, *descendants(client.pid)]
    os.kill(client.pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    if len(pids) > 1:  # the npm wrapper: its native server now runs on, orphaned
        assert [p for p in pids[1:] if running(p)]
    await client.close()
    assert not [p for p in pids if running(p)]


async def test_silent_server_times_out_and_is_killed(tmp_path: Path) -> None:
    binary = stub(
        tmp_path,
        f"""
        import os, signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
        open({str(tmp_path / "pids")!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        sys.stdin.read()          # EOF does not make us leave
        time.sleep(60)
    """,
    )
    with pytest.raises(CodexError, match=r"did not answer initialize within 0\.5 s"):
        await AppServerClient.spawn(binary, tmp_path, timeout=0.5, close_grace_s=0.5)
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 2 and not [p for p in pids if running(p)]


async def test_server_dying_at_start_reports_its_stderr(tmp_path: Path) -> None:
    binary = stub(
        tmp_path,
        """
        import sys
        print("Error: CODEX_HOME points to '/x', but that path does not exist", file=sys.stderr)
        sys.exit(1)
    """,
    )
    with pytest.raises(CodexError) as info:
        await AppServerClient.spawn(binary, tmp_path, timeout=10)
    message = str(info.value)
    assert "[codex] home" in message and "exited with code 1" in message


async def test_child_gets_codex_home_but_not_our_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:secret")
    monkeypatch.setenv("REALTIME_CONTROL_SECRET", "control-secret")
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    binary = stub(
        tmp_path,
        f"""
        import json, os, sys
        open({str(tmp_path / "env.json")!r}, "w").write(json.dumps(dict(os.environ)))
        for line in sys.stdin:
            msg = json.loads(line)
            if "id" in msg:
                print(json.dumps({{"id": msg["id"], "result": {{"argv": sys.argv[1:]}}}}),
                      flush=True)
    """,
    )
    client = await AppServerClient.spawn(
        binary, tmp_path, args=["-c", "x=1"], env={"EXTRA": "yes"}, timeout=10
    )
    assert client.server_info == {"argv": ["app-server", "-c", "x=1"]}
    await client.close()
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["CODEX_HOME"] == str(tmp_path) and env["EXTRA"] == "yes"
    assert not {"TELEGRAM_BOT_TOKEN", "REALTIME_CONTROL_SECRET", "NOTIFY_SOCKET"} & set(env)
