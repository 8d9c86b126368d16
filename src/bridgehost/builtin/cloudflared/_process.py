"""The ``cloudflared`` child process: command line, spawning, reading its log, stopping it.

The child must die with the gateway. We keep it in the gateway's process group (so a terminal's
Ctrl-C reaches it too) and, on Linux, ask the kernel to send it SIGTERM when its parent dies
(``prctl(PR_SET_PDEATHSIG, SIGTERM)`` in the child between ``fork`` and ``exec``), so even a
SIGKILLed gateway leaves no orphan. Under systemd, ``KillMode=mixed`` in the unit does the same
from the outside: when the gateway's main process is gone, whatever is left in the unit's control
group (``cloudflared`` included) is killed before a restart.

``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child ends; asyncio forks from the
event-loop thread, which lives as long as the gateway does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import signal
import socket
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from structlog.typing import FilteringBoundLogger

URL_PATTERN = re.compile(
    r"https://(?!api\.trycloudflare\.com)[a-z0-9-]+\.trycloudflare\.com(?![\w/.-])", re.I
)
"""A quick tunnel's public origin in cloudflared's log; the *last* match wins.

Not ``https://api.trycloudflare.com/tunnel``, the creation service that error lines name
(``failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": …``).
"""
RATE_LIMIT_PATTERN = re.compile(
    r"error code:? ?1015|\b429\b|too many requests|rate[ -]?limit", re.I
)
"""Cloudflare refusing a new quick tunnel (HTTP 429 with error 1015)."""
_IMPORTANT = re.compile(r"\b(ERR|WRN|FTL)\b|error|failed|1015|too many requests", re.I)
_LOG_PREFIX = re.compile(r"^\S+T\S+Z\s+")  # the RFC 3339 time of zerolog console lines
KEEP_LINES = 200
LINE_LIMIT = 1 << 20
PR_SET_PDEATHSIG = 1


def free_local_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now (for ``--metrics``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tunnel_target(host: str, port: int) -> str:
    """The ``--url`` cloudflared forwards to: the gateway, on loopback when it binds everywhere."""
    if host in {"", "0.0.0.0"}:
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    return f"http://{host}:{port}"


def build_command(
    binary: str, *, metrics: str, target: str, protocol: str | None = None
) -> list[str]:
    """``cloudflared tunnel --no-autoupdate --metrics ADDR [--protocol P] --url TARGET``."""
    argv = [binary, "tunnel", "--no-autoupdate", "--metrics", metrics]
    if protocol:
        argv += ["--protocol", protocol]
    return [*argv, "--url", target]


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that sets ``PR_SET_PDEATHSIG`` to SIGTERM (Linux only, else None)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes.util  # when a child starts, not when the plugin loads

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def summarize(lines: Sequence[str], *, count: int = 4, limit: int = 800) -> str:
    """The last few telling lines (errors and warnings first), timestamps dropped, one line."""
    telling = [line for line in lines if _IMPORTANT.search(line)]
    chosen = (telling or list(lines))[-count:]
    text = " | ".join(" ".join(_LOG_PREFIX.sub("", line).split()) for line in chosen)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TunnelChild:
    """One running ``cloudflared``: its output, the public URL it printed, and its exit."""

    def __init__(self, proc: asyncio.subprocess.Process, log: FilteringBoundLogger) -> None:
        self.proc = proc
        self.lines: deque[str] = deque(maxlen=KEEP_LINES)
        self.url: str | None = None
        self.rate_limited = False
        self.registered = False
        self._log = log
        self._url_seen = asyncio.Event()
        self._reader = asyncio.create_task(self._read(), name=f"cloudflared-{proc.pid}-output")

    @classmethod
    async def spawn(
        cls, argv: Sequence[str], *, env: Mapping[str, str], log: FilteringBoundLogger
    ) -> TunnelChild:
        """Start ``argv`` with ``env``; stdout and stderr are read together, line by line."""
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            preexec_fn=_die_with_parent(),
            limit=LINE_LIMIT,
        )
        return cls(proc, log)

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    @property
    def running(self) -> bool:
        """True until the child has exited (and been reaped)."""
        return self.proc.returncode is None

    def summary(self) -> str:
        """Its last telling output lines, for error messages."""
        return summarize(self.lines)

    async def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        try:
            while raw := await stream.readline():
                self._take(raw.decode(errors="replace").rstrip())
        except (ValueError, OSError) as exc:  # a line over the limit, or the pipe broke
            self._log.warning("tunnel.output_unreadable", pid=self.pid, error=str(exc))

    def _take(self, line: str) -> None:
        if not line:
            return
        self.lines.append(line)
        if found := URL_PATTERN.findall(line):
            self.url = found[-1].lower().rstrip("/")
            self._url_seen.set()
        if self.url is None and RATE_LIMIT_PATTERN.search(line):
            self.rate_limited = True
        if "Registered tunnel connection" in line:
            self.registered = True
        important = bool(_IMPORTANT.search(line))
        (self._log.warning if important else self._log.debug)(
            "tunnel.output", pid=self.pid, line=line
        )

    async def wait_url(self, timeout: float) -> str | None:
        """The URL once printed; None when the child exited first or ``timeout`` passed."""
        waiters = {
            asyncio.ensure_future(self._url_seen.wait()),
            asyncio.ensure_future(self.wait_exit()),
        }
        try:
            await asyncio.wait(
                waiters, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self.url

    async def wait_exit(self) -> int:
        """Wait for the child to exit and its output to be read; its exit code."""
        code = await self.proc.wait()
        if not self._reader.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), 2.0)
        return code

    async def terminate(self, grace_s: float) -> int | None:
        """SIGTERM, then SIGKILL after ``grace_s``; wait (bounded) for the exit code."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace_s)
            except TimeoutError:
                self._log.warning("tunnel.kill", pid=self.pid, after_s=grace_s)
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.proc.wait(), 5.0)
        if not self._reader.done():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._reader), 1.0)
            self._reader.cancel()
        return self.proc.returncode
