"""Test helpers for bridgehost and its plugins, loaded by pytest as a plugin (``pytest11``).

Installing bridgehost makes these fixtures available in any test suite; no import needed::

    def test_my_sink_logs_the_call(captured_logs):
        ...
        assert {"event": "handoff.delivered", "call_id": "c1", ...} in captured_logs

    def test_service_reports_ready(notify_socket):
        run_my_service()
        assert notify_socket.wait_for("READY", "1")

    def test_my_sink_is_selectable(register_plugin, plugin_host, bridge_config):
        record = register_plugin(my_plugin_module, "my-plugin")
        assert record.status == "enabled", record.error
        loaded = bridge_config('[handoff]\nsinks = ["my-sink"]')
        sink = plugin_host.build(plugin_host.select("handoff_sinks", "my-sink"),
                                 loaded.config, loaded.secrets)
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import pytest
import structlog
from structlog.typing import EventDict

from bridgehost.config import LoadedConfig, load_config
from bridgehost.plugins import PluginHost, PluginRecord

# --- systemd and logging fixtures ---------------------------------------------------------------

_MAX_UNIX_PATH = 107  # sun_path is 108 bytes including the terminating NUL


class NotifyRecorder:
    """A stand-in for systemd's notification socket: records every ``sd_notify`` datagram.

    ``address`` is the value to put in ``NOTIFY_SOCKET``: a filesystem path, or ``@name`` for an
    abstract socket. :meth:`messages` parses each datagram (``READY=1\\nSTATUS=…``) into a dict.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        bind_to = "\0" + address[1:] if address.startswith("@") else address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.bind(bind_to)
        self._sock.setblocking(False)
        self._messages: list[dict[str, str]] = []

    @classmethod
    def at_path(cls, path: str | os.PathLike[str]) -> Self:
        """Bind to a socket file at ``path`` (an abstract socket if the path is too long)."""
        text = os.fspath(path)
        if len(os.fsencode(text)) > _MAX_UNIX_PATH:
            return cls.abstract()
        return cls(text)

    @classmethod
    def abstract(cls) -> Self:
        """Bind to a fresh abstract socket (``@bridgehost-test-…``), which leaves no file."""
        return cls(f"@bridgehost-test-{os.getpid()}-{uuid.uuid4().hex[:12]}")

    @staticmethod
    def parse(datagram: bytes) -> dict[str, str]:
        """``b"READY=1\\nSTATUS=x"`` → ``{"READY": "1", "STATUS": "x"}``."""
        fields = {}
        for line in datagram.decode().split("\n"):
            if line:
                key, _, value = line.partition("=")
                fields[key] = value
        return fields

    def _receive(self, timeout: float = 0.0) -> None:
        """Record the datagrams that arrive within ``timeout`` (at least those already queued)."""
        ready, _, _ = select.select([self._sock], [], [], max(timeout, 0.0))
        while ready:
            try:
                datagram = self._sock.recv(65536)
            except BlockingIOError:
                return
            self._messages.append(self.parse(datagram))

    def messages(self) -> list[dict[str, str]]:
        """Every message received so far, oldest first."""
        self._receive()
        return list(self._messages)

    def _matches(self, key: str, value: str | None) -> list[dict[str, str]]:
        return [m for m in self._messages if key in m and (value is None or m[key] == value)]

    def _result(self, key: str, value: str | None, count: int) -> dict[str, str] | None:
        found = self._matches(key, value)
        return found[count - 1] if len(found) >= count else None

    def _timeout_error(self, key: str, value: str | None, count: int, timeout: float) -> str:
        wanted = key if value is None else f"{key}={value}"
        return f"no {count}× {wanted} within {timeout}s; received {self._messages!r}"

    def wait_for(
        self, key: str, value: str | None = None, timeout: float = 5.0, *, count: int = 1
    ) -> dict[str, str]:
        """Block until the ``count``-th message with ``key`` (equal to ``value``) has arrived.

        Returns that message; raises ``AssertionError`` listing what did arrive after ``timeout``.
        Blocks: from async tests use :meth:`wait_for_async`.
        """
        deadline = time.monotonic() + timeout
        while (found := self._result(key, value, count)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(self._timeout_error(key, value, count, timeout))
            self._receive(remaining)
        return found

    async def wait_for_async(
        self, key: str, value: str | None = None, timeout: float = 5.0, *, count: int = 1
    ) -> dict[str, str]:
        """:meth:`wait_for` for coroutines: polls without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while True:
            self._receive()
            if (found := self._result(key, value, count)) is not None:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(self._timeout_error(key, value, count, timeout))
            await asyncio.sleep(0.005)

    def close(self) -> None:
        """Close the socket and remove its file, if it has one."""
        self._sock.close()
        if not self.address.startswith("@"):
            Path(self.address).unlink(missing_ok=True)


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyRecorder]:
    """A :class:`NotifyRecorder` bound under ``tmp_path``, with ``NOTIFY_SOCKET`` pointing at it.

    ``bridgehost.systemd.Notifier()`` created in the test sends to it.
    """
    recorder = NotifyRecorder.at_path(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", recorder.address)
    try:
        yield recorder
    finally:
        recorder.close()


@pytest.fixture
def captured_logs() -> Iterator[list[EventDict]]:
    """Every structlog event logged during the test, as dicts (``event``, ``log_level``, …).

    Variables bound with ``bind_call``/``bind_plugin`` are included (``call_id``, ``plugin``).
    Events logged through the standard library's ``logging`` are not: use ``caplog`` for those.
    """
    merge = structlog.contextvars.merge_contextvars
    wrapper_class = structlog.get_config()["wrapper_class"]
    # Capture every level, whatever level an earlier configure_logging() filtered at.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(0))
    try:
        with structlog.testing.capture_logs(processors=[merge]) as logs:
            yield logs
    finally:
        structlog.configure(wrapper_class=wrapper_class)


# --- plugin fixtures ---


@pytest.fixture
def plugin_host() -> PluginHost:
    """A plugin host with entry-point autoloading off: only what the test registers."""
    return PluginHost.load(env={}, entry_points=[])


@pytest.fixture
def register_plugin(plugin_host: PluginHost) -> Iterator[Callable[..., PluginRecord]]:
    """Register a plugin object for this test only: ``register_plugin(module_or_obj, "name")``.

    Returns the plugin's :class:`~bridgehost.plugins.PluginRecord` (check ``status`` and
    ``error`` to see how the host judged it); every plugin is unregistered after the test.
    """
    names: list[str] = []

    def register(
        plugin: object, name: str | None = None, *, version: str | None = None
    ) -> PluginRecord:
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        names.append(name)
        return plugin_host.register(plugin, name, version=version)

    yield register
    for name in names:
        plugin_host.unregister(name)


@pytest.fixture
def bridge_config(tmp_path: Path) -> Callable[..., LoadedConfig]:
    """Build a :class:`~bridgehost.config.LoadedConfig` from TOML text for this test.

    ``bridge_config('[handoff]\\nsinks = ["my-sink"]', MY_SECRET="x")`` writes the file under
    ``tmp_path`` (storage root defaults there too) and loads it with only the given secrets.
    """

    def make(toml: str = "", **secrets: str) -> LoadedConfig:
        path = tmp_path / "bridge.config.toml"
        storage = "" if "[storage]" in toml else f'\n[storage]\nroot = "{tmp_path / "state"}"\n'
        path.write_text(toml + storage)
        return load_config(path, env=dict(secrets))

    return make
