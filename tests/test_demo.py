"""``bridgehost demo`` as a user runs it: a real process, every step printed, a handoff file;
``--serve`` stops with everything it started on Ctrl-C (SIGINT to its group) or SIGTERM."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest


def test_demo_carries_a_call_from_bootstrap_to_handoff(cli, tmp_path):
    result = cli(["bridgehost", "demo", "--state-dir", str(tmp_path / "demo")], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "surface armed: http://127.0.0.1:" in out
    assert re.search(r"sent 25 audio frames .*; 25 came back", out)
    assert "call.ended reason=user_hangup" in out
    handoff = Path(re.search(r"handoff written: (\S+)", out).group(1))
    assert handoff.is_file() and handoff.is_relative_to(tmp_path)
    assert handoff.read_text().startswith("bridgehost-handoff: ")
    assert "demo finished" in out


@dataclass
class ServingDemo:
    """A ``bridgehost demo --serve`` process, leader of its own process group, now serving."""

    process: subprocess.Popen[str]
    port: int
    output: list[str]
    lines: queue.Queue[str | None]

    def rest(self) -> str:
        """What it printed after serving, up to the end of its output."""
        rest = []
        while (line := self.lines.get(timeout=5)) is not None:
            rest.append(line)
        return "".join(rest)


def _lines(stream: IO[str], into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _answers(port: int) -> bool:
    """Whether something accepts TCP connections on ``127.0.0.1:port``."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def serving_demo(tmp_path: Path) -> Iterator[ServingDemo]:
    """Start ``bridgehost demo --serve`` and wait for its browser URL (stdout is a pipe)."""
    exe = Path(sys.executable).with_name("bridgehost")
    process = subprocess.Popen(
        [str(exe), "demo", "--serve", "--state-dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        process_group=0,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    output: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any(line.startswith("  http://127.0.0.1:") for line in output):
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, "demo ended before serving:\n" + "".join(output)
            output.append(line)
        port = int(re.search(r"gateway listening on http://127\.0\.0\.1:(\d+)", "".join(output))[1])
        assert _answers(port), "".join(output)
        yield ServingDemo(process, port, output, lines)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_stops_on_a_signal_to_its_group(serving_demo: ServingDemo, signum: int) -> None:
    process = serving_demo.process
    os.killpg(process.pid, signum)
    started = time.monotonic()
    try:
        code = process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 2 s after {signal.Signals(signum).name}")
    assert time.monotonic() - started < 2
    rest = serving_demo.rest()
    assert code == 0, "".join(serving_demo.output) + rest
    assert "demo finished" in rest
    assert "Traceback" not in rest
    assert not _group_alive(process.pid), "a process of the demo's group outlived it"
    assert not _answers(serving_demo.port), "the gateway port is still open"
