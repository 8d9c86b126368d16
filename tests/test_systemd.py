"""bridgehost.systemd: sd_notify datagrams, the watchdog, child environment, socket activation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridgehost.systemd import (
    Notifier,
    child_environment,
    inherited_sockets,
    run_watchdog,
    watchdog_interval,
)
from bridgehost.testing import NotifyRecorder


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a watchdog task and wait until it has finished."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
def abstract_socket() -> Iterator[NotifyRecorder]:
    recorder = NotifyRecorder.abstract()
    yield recorder
    recorder.close()


# --- Notifier ------------------------------------------------------------------------------------


def test_ready_sends_ready_mainpid_and_status(notify_socket):
    assert not notify_socket.address.startswith("@"), "the fixture uses a socket file"
    notifier = Notifier()
    assert notifier.enabled

    assert notifier.ready("Serving on 127.0.0.1:8787")

    message = notify_socket.wait_for("READY", "1")
    assert message == {
        "READY": "1",
        "MAINPID": str(os.getpid()),
        "STATUS": "Serving on 127.0.0.1:8787",
    }


def test_messages_arrive_in_order_on_an_abstract_socket(abstract_socket):
    notifier = Notifier(env={"NOTIFY_SOCKET": abstract_socket.address})
    assert abstract_socket.address.startswith("@")

    notifier.status("Starting plugins")
    notifier.ready()
    notifier.watchdog()
    notifier.extend_timeout(2.5)
    notifier.reloading()
    notifier.stopping("Draining 1 call")

    abstract_socket.wait_for("STOPPING", "1")
    messages = abstract_socket.messages()
    assert messages[0] == {"STATUS": "Starting plugins"}
    assert messages[1] == {"READY": "1", "MAINPID": str(os.getpid())}
    assert messages[2] == {"WATCHDOG": "1"}
    assert messages[3] == {"EXTEND_TIMEOUT_USEC": "2500000"}
    assert messages[4]["RELOADING"] == "1"
    assert int(messages[4]["MONOTONIC_USEC"]) > 0
    assert messages[5] == {"STOPPING": "1", "STATUS": "Draining 1 call"}
    notifier.close()


def test_env_mapping_beats_process_environment(notify_socket, abstract_socket):
    Notifier(env={"NOTIFY_SOCKET": abstract_socket.address}).status("here")
    assert abstract_socket.wait_for("STATUS") == {"STATUS": "here"}
    assert notify_socket.messages() == []


def test_without_notify_socket_everything_is_a_silent_noop(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    assert notifier.ready("x") is False
    assert notifier.status("x") is False
    assert notifier.watchdog() is False
    assert notifier.stopping() is False
    assert notifier.extend_timeout(1) is False
    assert notifier.reloading() is False


def test_unreachable_socket_warns_once_and_never_raises(tmp_path, captured_logs):
    notifier = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.status("one") is False
    assert notifier.watchdog() is False
    warnings = [e for e in captured_logs if e["event"] == "systemd.notify_failed"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["error"] == "ENOENT"


# --- watchdog_interval ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "100000", "WATCHDOG_PID": str(os.getpid())}, 0.05),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "not-a-pid"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env, expected):
    assert watchdog_interval(env) == expected


def test_watchdog_interval_reads_os_environ(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 1.5


# --- run_watchdog --------------------------------------------------------------------------------


async def test_watchdog_pings_while_healthy_and_stops_when_not(notify_socket, captured_logs):
    healthy = True
    task = asyncio.create_task(run_watchdog(Notifier(), 0.01, lambda: healthy))
    try:
        await notify_socket.wait_for_async("WATCHDOG", "1", timeout=2, count=3)
        healthy = False
        await asyncio.sleep(0.05)  # let the loop see it
        stopped_at = len(notify_socket.messages())
        await asyncio.sleep(0.1)  # ten intervals
        assert len(notify_socket.messages()) == stopped_at
    finally:
        await stop(task)
    assert all(m == {"WATCHDOG": "1"} for m in notify_socket.messages())
    [stopped] = [e for e in captured_logs if e["event"] == "systemd.watchdog_stopped"]
    assert stopped["reason"] == "health check reported unhealthy"
    assert stopped["log_level"] == "warning"


async def test_watchdog_resumes_when_health_returns(notify_socket, captured_logs):
    state = {"healthy": False}

    async def is_healthy() -> bool:
        return state["healthy"]

    # An interval long enough that a loaded machine still answers the check within it.
    task = asyncio.create_task(run_watchdog(Notifier(), 0.1, is_healthy))
    try:
        await asyncio.sleep(0.3)
        assert notify_socket.messages() == []
        state["healthy"] = True
        await notify_socket.wait_for_async("WATCHDOG", "1", timeout=2, count=2)
    finally:
        await stop(task)
    events = [e["event"] for e in captured_logs]
    assert events == ["systemd.watchdog_stopped", "systemd.watchdog_resumed"]


async def test_failing_or_hanging_health_check_stops_pings(notify_socket, captured_logs):
    def broken() -> bool:
        raise RuntimeError("database locked")

    async def hangs() -> bool:
        await asyncio.sleep(10)
        return True

    for check in (broken, hangs):
        task = asyncio.create_task(run_watchdog(Notifier(), 0.02, check))
        await asyncio.sleep(0.1)
        await stop(task)
    assert notify_socket.messages() == []
    reasons = [e["reason"] for e in captured_logs if e["event"] == "systemd.watchdog_stopped"]
    assert reasons == [
        "health check raised RuntimeError: database locked",
        "health check did not answer within 0.02s",
    ]


async def test_watchdog_task_cancels_cleanly(notify_socket):
    task = asyncio.create_task(run_watchdog(Notifier(), 0.01, lambda: True))
    await notify_socket.wait_for_async("WATCHDOG", "1", timeout=2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    received = len(notify_socket.messages())
    await asyncio.sleep(0.05)
    assert len(notify_socket.messages()) == received


async def test_watchdog_rejects_a_non_positive_interval():
    with pytest.raises(ValueError, match="positive"):
        await run_watchdog(Notifier(env={}), 0, lambda: True)


# --- child_environment ---------------------------------------------------------------------------


def test_child_environment_drops_systemd_variables():
    env = {
        "PATH": "/usr/bin",
        "HOME": "/var/lib/bridge",
        "NOTIFY_SOCKET": "/run/systemd/notify",
        "WATCHDOG_USEC": "20000000",
        "WATCHDOG_PID": "7",
        "LISTEN_FDS": "1",
        "LISTEN_PID": "7",
        "LISTEN_FDNAMES": "gateway",
        "INVOCATION_ID": "abc",
    }
    child = child_environment(env)
    assert child == {"PATH": "/usr/bin", "HOME": "/var/lib/bridge", "INVOCATION_ID": "abc"}
    assert env["NOTIFY_SOCKET"] == "/run/systemd/notify", "the input is not modified"


def test_child_environment_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", "@x")
    monkeypatch.setenv("BRIDGEHOST_TEST_MARKER", "1")
    child = child_environment()
    assert "NOTIFY_SOCKET" not in child
    assert child["BRIDGEHOST_TEST_MARKER"] == "1"


# --- inherited_sockets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"LISTEN_FDS": "1"},
        {"LISTEN_FDS": "1", "LISTEN_PID": "1"},
        {"LISTEN_FDS": "0", "LISTEN_PID": str(os.getpid())},
        {"LISTEN_FDS": "x", "LISTEN_PID": str(os.getpid())},
    ],
)
def test_inherited_sockets_none_unless_meant_for_us(env):
    assert inherited_sockets(env) == []


CHILD = textwrap.dedent(
    """
    import json, os, sys

    # Put the fds where systemd would: the socket on 3, then (LISTEN_FDS=2) a pipe on 4.
    source = int(sys.argv[1])
    if source != 3:
        os.dup2(source, 3)
        os.close(source)
    read_end, write_end = os.pipe()
    os.dup2(read_end, 4)

    from bridgehost.systemd import inherited_sockets

    assert inherited_sockets({"LISTEN_FDS": "2", "LISTEN_PID": "1"}) == []
    sockets = inherited_sockets({"LISTEN_FDS": "2", "LISTEN_PID": str(os.getpid())})
    [sock] = sockets
    conn, _ = sock.accept()
    print(json.dumps({
        "fd": sock.fileno(),
        "family": sock.family.name,
        "type": sock.type.name,
        "name": sock.getsockname(),
        "inheritable": sock.get_inheritable(),
        "received": conn.recv(100).decode(),
        "pipe_left_open": os.fstat(4).st_size >= 0,
    }))
    """
)


def test_inherited_socket_is_taken_over(tmp_path: Path):
    path = str(tmp_path / "gateway.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(path)  # queued in the backlog until the child accepts
        client.sendall(b"hello from systemd's queue")
        fd = listener.fileno()
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(fd)],
            pass_fds=[fd],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    finally:
        client.close()
        listener.close()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "fd": 3,
        "family": "AF_UNIX",
        "type": "SOCK_STREAM",
        "name": path,
        "inheritable": False,
        "received": "hello from systemd's queue",
        "pipe_left_open": True,
    }
