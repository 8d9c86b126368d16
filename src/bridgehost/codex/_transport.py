"""The two ways to reach ``codex app-server``: a child on stdio, or a running server's socket.

*stdio*: one JSON object per line, both ways. The child runs in its own session (so its process
group id is its pid): the npm ``codex`` command is a Node wrapper that spawns the native binary as
a child, and killing only the wrapper would orphan the native server, which keeps the thread's
writer lock. Shutdown is stdin EOF, then SIGTERM to the child's pid, then SIGKILL to its process
group, each bounded; afterwards any member of the group still running is ended too.

*socket*: the control socket of a running server (``codex app-server --listen unix://``, the
daemon, or a desktop app) speaks WebSocket over a Unix stream socket, one JSON message per text
frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from websockets.asyncio.client import ClientConnection, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from bridgehost.codex._errors import CodexError, binary_missing

LINE_LIMIT = 64 * 1024 * 1024
"""Largest single message we accept (a full ``thread/turns/list`` page can be big)."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def resolve_binary(binary: str) -> str:
    """The executable to run for ``binary`` (a name on PATH or a path), or a CodexError."""
    if os.sep in binary or (os.altsep and os.altsep in binary):
        path = Path(binary).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        raise binary_missing(binary)
    found = shutil.which(binary)
    if not found:
        raise binary_missing(binary)
    return found


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover - not Linux
        try:
            os.killpg(pgid, 0)
        except OSError:
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[0] not in ("Z", "X") and fields[2] == str(pgid):
            members.append(int(entry.name))
    return members


class StdioTransport:
    """A ``codex app-server`` child speaking newline-delimited JSON on stdin/stdout."""

    kind: Literal["stdio"] = "stdio"

    def __init__(self, proc: asyncio.subprocess.Process, argv: Sequence[str]) -> None:
        self.proc = proc
        self.pid: int | None = proc.pid
        self.argv = list(argv)
        self.stderr_tail: deque[str] = deque(maxlen=40)
        self._stderr_task = asyncio.create_task(self._drain_stderr())

    @classmethod
    async def start(
        cls,
        binary: str,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | os.PathLike[str] | None = None,
    ) -> StdioTransport:
        """Spawn ``binary`` with ``args`` in a session of its own."""
        exe = resolve_binary(binary)
        try:
            proc = await asyncio.create_subprocess_exec(
                exe,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
                limit=LINE_LIMIT,
            )
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            raise binary_missing(binary) from exc
        return cls(proc, [exe, *args])

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            text = _ANSI.sub("", line.decode(errors="replace")).rstrip()
            if text:
                self.stderr_tail.append(text)

    async def send(self, text: str) -> None:
        """Write one message as one line."""
        stdin = self.proc.stdin
        if stdin is None or stdin.is_closing():
            raise BrokenPipeError("codex app-server's stdin is closed")
        stdin.write(text.encode() + b"\n")
        await stdin.drain()

    async def recv(self) -> str | None:
        """The next line, or None at end of output."""
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        return line.decode(errors="replace") if line else None

    def describe_exit(self) -> str:
        """What is known about why the child stopped talking."""
        code = self.proc.returncode
        state = "is still running" if code is None else f"exited with code {code}"
        tail = " | ".join(list(self.stderr_tail)[-4:])
        return f"codex app-server (pid {self.pid}) {state}" + (f": {tail}" if tail else "")

    async def _wait(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.proc.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def close(self, grace_s: float = 3.0) -> None:
        """Stop the child: stdin EOF, then SIGTERM, then SIGKILL to its group; no orphans."""
        pgid = self.proc.pid
        group = set(await asyncio.to_thread(_group_members, pgid)) - {pgid}
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        if not await self._wait(grace_s) and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            if not await self._wait(grace_s):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)  # not reaped yet: the group is still ours
                await self._wait(grace_s)
        await self._sweep(pgid, group, grace_s)
        await asyncio.wait({self._stderr_task}, timeout=0.5)  # the group is gone: EOF soon
        self._stderr_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._stderr_task
        transport = getattr(self.proc, "_transport", None)  # close the pipes now, not at GC
        if transport is not None:
            transport.close()

    @staticmethod
    async def _sweep(pgid: int, group: set[int], grace_s: float) -> None:
        """End what is left of the child's group (e.g. an orphaned native server).

        Only processes seen in the group before shutdown are signalled, by pid, and only while
        they are still in that group: the group id itself may be reused once the child is reaped.
        """
        loop = asyncio.get_running_loop()
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            left = group & set(await asyncio.to_thread(_group_members, pgid))
            for pid in left if sig is not None else ():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)  # type: ignore[arg-type]  # sig is set: see the loop
            deadline = loop.time() + (min(grace_s, 1.0) if sig is None else grace_s)
            while left and loop.time() < deadline:
                await asyncio.sleep(0.05)
                left &= set(await asyncio.to_thread(_group_members, pgid))
            if not left:
                return


class SocketTransport:
    """A WebSocket connection to a running app-server's Unix control socket."""

    kind: Literal["socket"] = "socket"
    pid: int | None = None

    def __init__(self, ws: ClientConnection, path: Path) -> None:
        self.ws = ws
        self.path = path

    @classmethod
    async def connect(cls, path: Path, timeout: float) -> SocketTransport:
        """Open the WebSocket; CodexError when nothing (usable) listens there.

        The socket is a symlink into the system temp dir; we connect to its target, whose path
        is short, because a Unix socket path must fit in about 100 bytes.
        """
        try:
            target = os.path.realpath(path)
            ws = await asyncio.wait_for(
                unix_connect(
                    target,
                    uri="ws://localhost/",
                    max_size=LINE_LIMIT,
                    ping_interval=None,
                    open_timeout=timeout,
                    compression=None,
                ),
                timeout,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise CodexError(
                f"the Codex control socket {path} did not accept a connection "
                f"({exc.__class__.__name__}: {exc})"
            ) from exc
        return cls(ws, path)

    async def send(self, text: str) -> None:
        """Send one message as one text frame."""
        try:
            await self.ws.send(text)
        except ConnectionClosed as exc:
            raise ConnectionResetError(f"the Codex control socket {self.path} closed") from exc

    async def recv(self) -> str | None:
        """The next message, or None once the connection is closed."""
        try:
            msg = await self.ws.recv()
        except ConnectionClosed:
            return None
        return msg.decode(errors="replace") if isinstance(msg, bytes) else msg

    def describe_exit(self) -> str:
        """Why the connection stopped."""
        return f"the Codex control socket {self.path} closed the connection"

    async def close(self, grace_s: float = 3.0) -> None:
        """Close the WebSocket (the server keeps running)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), grace_s)


Transport = StdioTransport | SocketTransport
