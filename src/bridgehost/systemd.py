"""Talking to systemd from the event loop: readiness, status, watchdog, inherited sockets.

bridgehost's services run as ``Type=notify`` units with ``WatchdogSec=``::

    notifier = Notifier()                       # no-op outside systemd (no NOTIFY_SOCKET)
    notifier.status("Starting plugins")
    ...                                         # bind, start plugins, start serving
    notifier.ready("Serving on 127.0.0.1:8787") # READY=1 only once we really serve
    if (interval := watchdog_interval()) is not None:
        tg.create_task(run_watchdog(notifier, interval, service.is_healthy))
    ...
    notifier.stopping("Draining calls")

The watchdog pings come from a task on the event loop, and only while the service says it is
healthy, so a stuck loop or a broken service stops them and systemd restarts the unit.
:func:`child_environment` is the environment for children (``cloudflared``) without systemd's
per-service variables, and :func:`inherited_sockets` takes over the listening socket passed by
``bridge-gateway.socket``.

Operators see the ``STATUS=`` text in ``systemctl status bridge-gateway``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from structlog.typing import FilteringBoundLogger

from bridgehost.logging import get_logger

__all__ = [
    "Notifier",
    "child_environment",
    "inherited_sockets",
    "run_watchdog",
    "watchdog_interval",
]

SD_LISTEN_FDS_START = 3
_SYSTEMD_CHILD_VARIABLES = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
)

_log = get_logger(__name__)


def _socket_address(notify_socket: str) -> str:
    """``NOTIFY_SOCKET`` → an ``AF_UNIX`` address: ``@name`` is the abstract ``\\0name``."""
    if notify_socket.startswith("@"):
        return "\0" + notify_socket[1:]
    return notify_socket


class Notifier:
    """Sends ``sd_notify`` messages to ``$NOTIFY_SOCKET``; a silent no-op when it is not set.

    Sending never blocks and never raises: a failure is logged as a warning (once, until a send
    succeeds again), because losing a status line must not take the service down.

    We do not use the ``sdnotify`` package for this: it reads only ``os.environ`` (we take an
    ``env`` mapping, for tests and for callers that scrub the environment), it sends on a
    *blocking* socket (we send from the event loop), and it swallows every error silently (we
    want a warning in the journal when systemd cannot be told we are alive). The protocol is one
    datagram, so the dozen lines here are simpler than working around it.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        value = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = _socket_address(value) if value else None
        self._sock: socket.socket | None = None
        self._failing = False

    @property
    def enabled(self) -> bool:
        """True when systemd gave us a notification socket."""
        return self.address is not None

    def notify(self, **fields: Any) -> bool:
        """Send ``KEY=value`` lines in one datagram (``notify(READY=1, STATUS="…")``).

        Returns True when the datagram was sent; False outside systemd or on failure.
        """
        if self.address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items() if value is not None)
        try:
            self._socket().sendto(message.encode(), self.address)
        except OSError as exc:
            self._report_failure(exc)
            return False
        self._failing = False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd the service is up (``READY=1`` with ``MAINPID``); call it once serving."""
        return self.notify(READY=1, MAINPID=os.getpid(), STATUS=status)

    def status(self, text: str) -> bool:
        """Set the one-line status ``systemctl status`` shows."""
        return self.notify(STATUS=text)

    def watchdog(self) -> bool:
        """Ping the watchdog (``WATCHDOG=1``); prefer :func:`run_watchdog`."""
        return self.notify(WATCHDOG=1)

    def stopping(self, status: str | None = None) -> bool:
        """Tell systemd the service is shutting down (``STOPPING=1``)."""
        return self.notify(STOPPING=1, STATUS=status)

    def reloading(self) -> bool:
        """Tell systemd a reload started (``RELOADING=1``); send :meth:`ready` when done.

        ``MONOTONIC_USEC`` comes along, as ``Type=notify-reload`` (systemd ≥ 253) requires.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify(RELOADING=1, MONOTONIC_USEC=usec)

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before the start/stop timeout (``EXTEND_TIMEOUT_USEC``)."""
        return self.notify(EXTEND_TIMEOUT_USEC=int(seconds * 1_000_000))

    def close(self) -> None:
        """Close the socket; a later message opens a new one."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sock.setblocking(False)
            self._sock = sock
        return self._sock

    def _report_failure(self, exc: OSError) -> None:
        if not self._failing:
            reason = errno.errorcode.get(exc.errno or 0, str(exc))
            _log.warning("systemd.notify_failed", socket=self.address, error=reason)
        self._failing = True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """How often to ping, in seconds: half of ``WATCHDOG_USEC``; None if there is no watchdog.

    None also when ``WATCHDOG_PID`` is set and names another process (the watchdog is not ours).
    """
    env = os.environ if env is None else env
    pid = env.get("WATCHDOG_PID")
    if pid is not None and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2 / 1_000_000


async def _check_health(
    is_healthy: Callable[[], bool | Awaitable[bool]], timeout: float
) -> tuple[bool, str]:
    """Run one health check; return (healthy, why not)."""
    try:
        result = is_healthy()
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, timeout)
    except TimeoutError:
        return False, f"health check did not answer within {timeout:g}s"
    except Exception as exc:
        return False, f"health check raised {type(exc).__name__}: {exc}"
    return (True, "") if result else (False, "health check reported unhealthy")


async def run_watchdog(
    notifier: Notifier,
    interval: float,
    is_healthy: Callable[[], bool | Awaitable[bool]],
    *,
    log: FilteringBoundLogger | None = None,
) -> None:
    """Ping ``WATCHDOG=1`` every ``interval`` seconds while ``is_healthy()`` is true; run forever.

    The pings come from this task, so a blocked event loop stops them too. When the service turns
    unhealthy (false, an exception, or no answer within ``interval``) pinging stops and one warning
    says why; systemd restarts the unit once ``WatchdogSec`` passes without a ping. Should health
    come back first, pinging resumes. Cancel the task to stop it.
    """
    if interval <= 0:
        raise ValueError("interval must be positive")
    log = _log if log is None else log
    pinging = True
    while True:
        healthy, reason = await _check_health(is_healthy, interval)
        if healthy:
            if not pinging:
                log.info("systemd.watchdog_resumed")
            pinging = True
            notifier.watchdog()
        elif pinging:
            pinging = False
            log.warning("systemd.watchdog_stopped", reason=reason, interval=interval)
        await asyncio.sleep(interval)


def child_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment for child processes, without systemd's per-service variables.

    A child that saw ``NOTIFY_SOCKET`` or ``LISTEN_FDS`` could talk to systemd as us or take
    sockets meant for us; ``cloudflared`` notably speaks sd_notify when it finds the socket.
    """
    env = os.environ if env is None else env
    return {k: v for k, v in env.items() if k not in _SYSTEMD_CHILD_VARIABLES}


def inherited_sockets(env: Mapping[str, str] | None = None) -> list[socket.socket]:
    """The sockets systemd passed by socket activation (``LISTEN_FDS``), or [] if there are none.

    Only when ``LISTEN_PID`` is our pid; the fds start at 3 and are made close-on-exec. Fds that
    are not sockets are skipped. Call it once: each returned socket owns its fd.
    """
    env = os.environ if env is None else env
    try:
        pid = int(env.get("LISTEN_PID", ""))
        count = int(env.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    if pid != os.getpid() or count <= 0:
        return []
    sockets = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count):
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            continue  # not a socket (a FIFO or a file), or already closed
        sock.set_inheritable(False)
        sockets.append(sock)
    return sockets


def stop_on_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGTERM (``systemctl stop``) and SIGINT (Ctrl-C), from the event loop."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
