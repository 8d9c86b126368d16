"""Start a service process and time it: process start → ``READY=1`` on a ``NOTIFY_SOCKET`` we
create, → first ``GET /healthz`` 200; then its resident memory once idle.

Everything is loopback and bounded: a process that is not ready within ``timeout`` is killed
and reported as an error.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HEALTH_POLL_S = 0.002


@dataclass
class Started:
    """One timed start of one process."""

    ready_ms: float
    healthz_ms: float | None
    rss_mib: float
    pid: int


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` (``VmRSS``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _healthz_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


@contextlib.contextmanager
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A bound ``AF_UNIX`` datagram socket standing in for systemd's notification socket."""
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp:
        path = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        try:
            yield sock, path
        finally:
            sock.close()


def _wait_ready(sock: socket.socket, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before READY=1")
        sock.settimeout(0.1)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        if b"READY=1" in data.split(b"\n"):
            return
    raise RuntimeError("no READY=1 before the deadline")


@contextlib.contextmanager
def started(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    port: int | None,
    settle_s: float = 1.0,
    timeout: float = 30.0,
    cwd: Path | None = None,
) -> Iterator[Started]:
    """Start ``argv``, time READY=1 and (with ``port``) the first ``/healthz`` 200, measure RSS
    after ``settle_s`` idle, yield, then stop the process with SIGTERM (SIGKILL after 10 s)."""
    with notify_socket() as (sock, path):
        begin = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            env={**env, "NOTIFY_SOCKET": path},
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + timeout
            _wait_ready(sock, proc, deadline)
            ready_ms = (time.perf_counter() - begin) * 1000
            healthz_ms = None
            if port is not None:
                while not _healthz_ok(port):
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("no /healthz 200 before the deadline")
                    time.sleep(HEALTH_POLL_S)
                healthz_ms = (time.perf_counter() - begin) * 1000
            time.sleep(settle_s)
            yield Started(ready_ms, healthz_ms, rss_mib(proc.pid), proc.pid)
        except RuntimeError as exc:
            proc.kill()
            err = proc.communicate(timeout=10)[1].decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(argv)}: {exc}\n{err}") from None
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()
