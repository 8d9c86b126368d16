"""bridgehost.logging: the three outputs, journald's native protocol, redaction, stdlib routing."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import select
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest
import structlog

from bridgehost.logging import (
    LogMode,
    bind_call,
    bind_plugin,
    configure_logging,
    forget_secrets,
    get_logger,
    journal_field_name,
    register_secret,
)

ANSI = re.compile(r"\x1b\[[0-9;]*m")
FIELD_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo configure_logging's global changes (root handlers, levels, structlog, secrets)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "hpack")}
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    for name, old in noisy.items():
        logging.getLogger(name).setLevel(old)
    logging.captureWarnings(False)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    forget_secrets()


def parse_journal(datagram: bytes) -> dict[str, str]:
    """Parse one journald native-protocol datagram (both the short and the binary form)."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(datagram):
        end = datagram.index(b"\n", pos)
        line = datagram[pos:end]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            pos = end + 1
        else:  # KEY\n <u64 little-endian length> <value> \n
            key = line
            (size,) = struct.unpack("<Q", datagram[end + 1 : end + 9])
            value = datagram[end + 9 : end + 9 + size]
            assert datagram[end + 9 + size : end + 10 + size] == b"\n"
            pos = end + 10 + size
        fields[key.decode()] = value.decode()
    return fields


class FakeJournal:
    """A datagram socket standing in for /run/systemd/journal/socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def receive(self, timeout: float = 2.0) -> bytes:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        assert ready, "no datagram reached the fake journal"
        return self.sock.recv(1 << 20)

    def entry(self) -> dict[str, str]:
        return parse_journal(self.receive())

    def pending(self) -> bool:
        return bool(select.select([self.sock], [], [], 0.05)[0])


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[FakeJournal]:
    fake = FakeJournal(tmp_path / "journal.sock")
    yield fake
    fake.sock.close()


@pytest.fixture
def journal_stream(tmp_path: Path) -> Iterator[tuple[TextIO, dict[str, str]]]:
    """A file standing in for the journal stream, and an env whose JOURNAL_STREAM names it."""
    with open(tmp_path / "stdout", "w") as stream:
        st = os.fstat(stream.fileno())
        yield stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}


def configure_journald(
    journal: FakeJournal, journal_stream: tuple[TextIO, dict[str, str]], level: str = "INFO"
) -> LogMode:
    stream, env = journal_stream
    env = {**env, "BRIDGEHOST_JOURNAL_SOCKET": str(journal.path)}
    return configure_logging("bridge-gateway", level=level, stream=stream, env=env)


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# --- journald ------------------------------------------------------------------------------------


def test_journald_mode_sends_native_fields(journal, journal_stream):
    assert configure_journald(journal, journal_stream) is LogMode.JOURNALD

    with bind_call("c_7f3a"), bind_plugin("echo"):
        get_logger("bridgehost.gateway").info("call.started", user_id=42, mode="voice")

    entry = journal.entry()
    assert entry["CALL_ID"] == "c_7f3a"
    assert entry["PLUGIN"] == "echo"
    assert entry["EVENT"] == "call.started"
    assert entry["LOGGER"] == "bridgehost.gateway"
    assert entry["PRIORITY"] == "6"
    assert entry["SYSLOG_IDENTIFIER"] == "bridge-gateway"
    assert entry["USER_ID"] == "42"
    assert entry["MESSAGE"].startswith("call.started")
    assert "call_id=c_7f3a" in entry["MESSAGE"]
    assert all(FIELD_NAME.fullmatch(name) for name in entry)
    assert journal_stream[0].tell() == 0, "nothing goes to the stream while journald answers"


@pytest.mark.parametrize(
    ("method", "priority"),
    [("debug", "7"), ("info", "6"), ("warning", "4"), ("error", "3"), ("critical", "2")],
)
def test_journald_priority_follows_level(journal, journal_stream, method, priority):
    configure_journald(journal, journal_stream, level="DEBUG")
    getattr(get_logger("t"), method)("levels")
    assert journal.entry()["PRIORITY"] == priority


def test_journald_multiline_message_uses_binary_form(journal, journal_stream):
    configure_journald(journal, journal_stream)
    try:
        raise RuntimeError("tunnel died")
    except RuntimeError:
        get_logger("t").exception("tunnel.failed")

    datagram = journal.receive()
    assert b"\nMESSAGE\n" in datagram or datagram.startswith(b"MESSAGE\n")
    entry = parse_journal(datagram)
    assert entry["PRIORITY"] == "3"
    assert entry["MESSAGE"].startswith("tunnel.failed\nTraceback (most recent call last):")
    assert "RuntimeError: tunnel died" in entry["MESSAGE"]


def test_journald_routes_stdlib_records(journal, journal_stream):
    configure_journald(journal, journal_stream)
    with bind_call("c1"):
        logging.getLogger("aiohttp.access").warning("GET %s %d", "/miniapp", 200)

    entry = journal.entry()
    assert entry["MESSAGE"].startswith("GET /miniapp 200")
    assert entry["LOGGER"] == "aiohttp.access"
    assert entry["CALL_ID"] == "c1"
    assert entry["PRIORITY"] == "4"


def test_journald_unreachable_falls_back_to_the_stream(tmp_path, journal_stream):
    stream, env = journal_stream
    env = {**env, "BRIDGEHOST_JOURNAL_SOCKET": str(tmp_path / "missing.sock")}
    assert configure_logging("bridge-gateway", stream=stream, env=env) is LogMode.JOURNALD

    get_logger("t").info("still.visible", n=1)

    stream.flush()
    assert (tmp_path / "stdout").read_text() == "still.visible n=1\n"


def test_journal_socket_parameter_beats_environment(journal, journal_stream, tmp_path):
    stream, env = journal_stream
    env = {**env, "BRIDGEHOST_JOURNAL_SOCKET": str(tmp_path / "elsewhere.sock")}
    configure_logging("bridge-telegram", stream=stream, env=env, journal_socket=journal.path)
    get_logger("t").info("hello")
    assert journal.entry()["SYSLOG_IDENTIFIER"] == "bridge-telegram"


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("call_id", "CALL_ID"),
        ("call-id", "CALL_ID"),
        ("_private", "PRIVATE"),
        ("2fa", "F_2FA"),
        ("message", "F_MESSAGE"),
        ("priority", "F_PRIORITY"),
        ("Größe", "GR_SSE"),
        ("x" * 100, "X" * 64),
    ],
)
def test_journal_field_name(key, name):
    assert journal_field_name(key) == name
    assert FIELD_NAME.fullmatch(name)


def test_journald_user_field_cannot_override_message(journal, journal_stream):
    configure_journald(journal, journal_stream)
    get_logger("t").info("real.event", message="spoofed", priority=0)
    entry = journal.entry()
    assert entry["MESSAGE"].startswith("real.event")
    assert entry["PRIORITY"] == "6"
    assert entry["F_MESSAGE"] == "spoofed"


def test_journal_stream_of_another_file_is_not_journald(journal, tmp_path):
    with open(tmp_path / "other", "w") as other, open(tmp_path / "stdout", "w") as stream:
        st = os.fstat(other.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert configure_logging("svc", stream=stream, env=env) is LogMode.JSON
    assert not journal.pending()


# --- json and console ----------------------------------------------------------------------------


def test_json_mode_writes_one_object_per_line():
    stream = io.StringIO()
    assert configure_logging("svc", stream=stream, env={}) is LogMode.JSON

    with bind_call("c2"):
        get_logger("bridgehost.budget").warning("budget.low", remaining_seconds=30)
    get_logger("t").info("second")

    first, second = json_lines(stream)
    assert first["event"] == "budget.low"
    assert first["level"] == "warning"
    assert first["logger"] == "bridgehost.budget"
    assert first["call_id"] == "c2"
    assert first["remaining_seconds"] == 30
    assert str(first["timestamp"]).endswith("Z")
    assert second["event"] == "second"
    assert "call_id" not in second, "the binding ends with the block"


def test_level_filters_structlog_and_stdlib():
    stream = io.StringIO()
    configure_logging("svc", level="warning", stream=stream, env={})
    get_logger("t").info("dropped")
    logging.getLogger("telegram.ext").info("dropped too")
    get_logger("t").error("kept")
    assert [line["event"] for line in json_lines(stream)] == ["kept"]


def test_unknown_level_is_rejected():
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("svc", level="LOUD", stream=io.StringIO(), env={})


def test_configure_twice_keeps_one_handler():
    first, second = io.StringIO(), io.StringIO()
    configure_logging("svc", stream=first, env={})
    configure_logging("svc", stream=second, env={})
    get_logger("t").info("once")
    assert first.getvalue() == ""
    assert [line["event"] for line in json_lines(second)] == ["once"]


def test_console_mode_on_a_terminal():
    master, replica = os.openpty()
    try:
        with os.fdopen(replica, "w") as tty:
            assert configure_logging("svc", stream=tty, env={}) is LogMode.CONSOLE
            with bind_call("c3"):
                get_logger("bridgehost.tunnel").info("tunnel.ready", url="https://x.example")
            ready, _, _ = select.select([master], [], [], 2.0)
            assert ready
            output = ANSI.sub("", os.read(master, 65536).decode())
    finally:
        os.close(master)
    assert "tunnel.ready" in output
    assert "call_id=c3" in output
    assert "url=https://x.example" in output
    assert "[info" in output
    assert not output.lstrip().startswith("{")


# --- stdlib routing ------------------------------------------------------------------------------


def test_stdlib_records_come_out_as_json_with_context():
    stream = io.StringIO()
    configure_logging("svc", stream=stream, env={})
    with bind_plugin("cloudflared-quick"):
        logging.getLogger("websockets.client").info("connection %s", "open")
        try:
            {}["missing"]
        except KeyError:
            logging.getLogger("aiohttp.server").exception("handler failed")

    info, error = json_lines(stream)
    assert info == {
        "event": "connection open",
        "plugin": "cloudflared-quick",
        "level": "info",
        "logger": "websockets.client",
        "timestamp": info["timestamp"],
    }
    assert error["level"] == "error"
    assert "KeyError: 'missing'" in str(error["exception"])


def test_httpx_info_is_quieted_but_warnings_pass():
    stream = io.StringIO()
    configure_logging("svc", stream=stream, env={})
    logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot1:x/getMe")
    logging.getLogger("httpx").warning("retrying")
    assert [line["event"] for line in json_lines(stream)] == ["retrying"]


def test_python_warnings_are_logged():
    import warnings

    stream = io.StringIO()
    configure_logging("svc", stream=stream, env={})
    warnings.warn("old option", DeprecationWarning, stacklevel=1)
    [line] = json_lines(stream)
    assert line["logger"] == "py.warnings"
    assert "old option" in str(line["event"])


# --- redaction -----------------------------------------------------------------------------------


def test_secret_looking_keys_are_redacted():
    stream = io.StringIO()
    configure_logging("svc", stream=stream, env={})
    get_logger("t").info(
        "request",
        launch_token="lt-abc",
        OPENAI_API_KEY="sk-live",
        Authorization="Bearer x",
        init_data="query_id=1&hash=2",
        password="hunter2",
        headers={"X-Control-Secret": "s3", "accept": "json"},
        input_tokens=812,
        has_token=True,
        user="ann",
    )
    [line] = json_lines(stream)
    for key in ("launch_token", "OPENAI_API_KEY", "Authorization", "init_data", "password"):
        assert line[key] == "[redacted]", key
    assert line["headers"] == {"X-Control-Secret": "[redacted]", "accept": "json"}
    assert line["input_tokens"] == 812
    assert line["has_token"] is True
    assert line["user"] == "ann"


def test_registered_secret_is_redacted_everywhere():
    secret = "s3cr3t-control-value"
    register_secret(secret)
    register_secret("short")  # under 8 characters: ignored
    stream = io.StringIO()
    configure_logging("svc", stream=stream, env={})
    log = get_logger("t")

    log.info(f"connecting with {secret}", detail=["a", f"x{secret}y"], note="short and sweet")
    try:
        raise PermissionError(f"rejected {secret}")
    except PermissionError:
        log.exception("auth.failed")
    logging.getLogger("aiohttp.client").warning("sent %s", secret)

    output = stream.getvalue()
    assert secret not in output
    first, second, third = json_lines(stream)
    assert first["event"] == "connecting with [redacted]"
    assert first["detail"] == ["a", "x[redacted]y"]
    assert first["note"] == "short and sweet"
    assert "PermissionError: rejected [redacted]" in str(second["exception"])
    assert third["event"] == "sent [redacted]"


def test_bot_token_urls_are_redacted():
    stream = io.StringIO()
    configure_logging("svc", stream=stream, env={})
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    url = f"https://api.telegram.org/bot{token}/getUpdates"
    get_logger("t").warning(f"POST {url} failed", url=f"https://api.telegram.org/file/bot{token}/a")
    logging.getLogger("telegram.ext.Updater").error("Error fetching %s", url)

    assert token.split(":")[1] not in stream.getvalue()
    first, second = json_lines(stream)
    redacted = "https://api.telegram.org/bot123456789:[redacted]/getUpdates"
    assert first["event"] == f"POST {redacted} failed"
    assert first["url"] == "https://api.telegram.org/file/bot123456789:[redacted]/a"
    assert second["event"] == f"Error fetching {redacted}"


def test_redaction_reaches_journald(journal, journal_stream):
    register_secret("journal-secret-1")
    configure_journald(journal, journal_stream)
    get_logger("t").info("using journal-secret-1", api_key="k" * 20)
    entry = journal.entry()
    assert "journal-secret-1" not in entry["MESSAGE"]
    assert entry["EVENT"] == "using [redacted]"
    assert entry["API_KEY"] == "[redacted]"
