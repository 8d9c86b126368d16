"""Structured logging for bridgehost's services: one structlog set-up, three outputs.

:func:`configure_logging` looks at where the log stream goes and picks a :class:`LogMode`:

``journald``
    Under systemd, when ``JOURNAL_STREAM`` (``DEV:INODE``) names the stream we write to. Events go
    to journald over its *native protocol* (datagrams to ``/run/systemd/journal/socket``), one
    indexed field per key: ``CALL_ID``, ``PLUGIN``, ``EVENT``, ``LOGGER``… plus ``MESSAGE``,
    ``PRIORITY`` and ``SYSLOG_IDENTIFIER``. That is what makes a call's story one query::

        journalctl -u bridge-gateway CALL_ID=c_7f3a…
        journalctl -u bridge-gateway -u bridge-telegram CALL_ID=c_7f3a… -o verbose
        journalctl SYSLOG_IDENTIFIER=bridge-gateway PLUGIN=cloudflared-quick -p warning

    (journald does not index JSON printed to stdout; only the native protocol gives fields.)
``console``
    On a terminal: structlog's readable, coloured lines.
``json``
    Anywhere else (pipes, files, containers): one JSON object per line.

Every event passes the same chain: context variables (:func:`bind_call`, :func:`bind_plugin`), the
level, an ISO UTC timestamp, formatted exceptions, then **redaction**: values under secret-looking
keys, values given to :func:`register_secret` and Telegram bot tokens in URLs become
``"[redacted]"``, in the message and exception text too. Standard-library loggers (aiohttp,
python-telegram-bot, websockets, httpx) go through the same chain and come out the same way.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from bridgehost._journald import (
    JOURNAL_SOCKET,
    JournaldHandler,
    journal_field_name,
    journal_fields,
)

__all__ = [
    "LogMode",
    "bind_call",
    "bind_plugin",
    "configure_logging",
    "forget_secrets",
    "get_logger",
    "journal_field_name",
    "journal_fields",
    "redact",
    "register_secret",
]

REDACTED = "[redacted]"
JOURNAL_SOCKET_ENV = "BRIDGEHOST_JOURNAL_SOCKET"
MIN_SECRET_LENGTH = 8

_SECRET_KEY_PARTS = (
    "token",
    "secret",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "authorization",
    "init_data",
    "initdata",
    "cookie",
)
_BOT_TOKEN = re.compile(r"(?<![A-Za-z0-9])bot(\d+):[A-Za-z0-9_-]+")
# Third-party loggers that are chatty at INFO: httpx logs every request line, including each
# python-telegram-bot getUpdates poll (whose URL carries the bot token, redacted or not).
_NOISY_LOGGERS = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "hpack": logging.WARNING}


class LogMode(enum.Enum):
    """Where :func:`configure_logging` sends events."""

    JOURNALD = "journald"
    CONSOLE = "console"
    JSON = "json"


# --- redaction ---------------------------------------------------------------------------------

_secrets_lock = threading.Lock()
_secrets: set[str] = set()
_secrets_pattern: re.Pattern[str] | None = None


def register_secret(value: str) -> None:
    """Redact every later occurrence of ``value`` in any logged string.

    Values shorter than 8 characters are ignored: replacing short strings would mangle ordinary
    text, and a secret that short is not worth protecting this way anyway.
    """
    global _secrets_pattern
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        _secrets.add(value)
        # Longest first, so a secret that contains another is replaced whole.
        alternatives = sorted(_secrets, key=len, reverse=True)
        _secrets_pattern = re.compile("|".join(re.escape(s) for s in alternatives))


def forget_secrets() -> None:
    """Drop every value given to :func:`register_secret` (for tests)."""
    global _secrets_pattern
    with _secrets_lock:
        _secrets.clear()
        _secrets_pattern = None


def _is_secret_key(key: object) -> bool:
    name = str(key).lower().replace("-", "_")
    return any(part in name for part in _SECRET_KEY_PARTS)


def _scrub_text(text: str) -> str:
    pattern = _secrets_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return _BOT_TOKEN.sub(rf"bot\1:{REDACTED}", text)


def _scrub(value: Any) -> Any:
    """Return ``value`` with secrets removed from every string inside it."""
    if isinstance(value, str):
        return _scrub_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {k: _redact_item(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    text = str(value)
    scrubbed = _scrub_text(text)
    return value if scrubbed == text else scrubbed


def _redact_item(key: object, value: Any) -> Any:
    # A number or flag under a secret-sounding key (input_tokens=812, has_token=True) is no secret.
    if _is_secret_key(key) and not (value is None or isinstance(value, bool | int | float)):
        return REDACTED
    return _scrub(value)


def redact(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: redact secret-looking keys, registered secrets and bot tokens."""
    return {key: _redact_item(key, value) for key, value in event_dict.items()}


# --- set-up ------------------------------------------------------------------------------------


def _stream_is_journal(stream: TextIO, env: Mapping[str, str]) -> bool:
    """True when ``JOURNAL_STREAM`` (``DEV:INODE``) is the file behind ``stream``."""
    dev, _, inode = env.get("JOURNAL_STREAM", "").partition(":")
    try:
        st = os.fstat(stream.fileno())
        return (st.st_dev, st.st_ino) == (int(dev), int(inode))
    except (OSError, ValueError, AttributeError):
        return False


def _stream_is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError, AttributeError):
        return False


def _choose_mode(stream: TextIO, env: Mapping[str, str]) -> LogMode:
    if _stream_is_journal(stream, env):
        return LogMode.JOURNALD
    if _stream_is_tty(stream):
        return LogMode.CONSOLE
    return LogMode.JSON


def _shared_processors() -> list[Processor]:
    """Run on every event: structlog's own (before wrapping) and stdlib records (pre-chain)."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _renderer(mode: LogMode) -> Processor:
    """The last processor: console lines on a terminal, JSON otherwise (journald parses it)."""
    if mode is LogMode.CONSOLE:
        return structlog.dev.ConsoleRenderer(colors=True)
    return structlog.processors.JSONRenderer()


def _handler(mode: LogMode, service: str, stream: TextIO, socket_path: str) -> logging.Handler:
    if mode is LogMode.JOURNALD:
        return JournaldHandler(service, socket_path, fallback=stream)
    return logging.StreamHandler(stream)


def _install_root_handler(handler: logging.Handler, level: int) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_bridgehost", False)]:
        root.removeHandler(old)
        old.close()
    handler._bridgehost = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name, floor in _NOISY_LOGGERS.items():
        logging.getLogger(name).setLevel(max(level, floor))


def _parse_level(level: str) -> int:
    value = logging.getLevelNamesMapping().get(level.upper())
    if value is None:
        choices = "DEBUG, INFO, WARNING, ERROR or CRITICAL"
        raise ValueError(f"unknown log level {level!r}; use {choices}")
    return value


def configure_logging(
    service: str,
    *,
    level: str = "INFO",
    stream: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    journal_socket: str | os.PathLike[str] | None = None,
) -> LogMode:
    """Set up structlog and the standard library's logging for ``service``; return the mode.

    :param service: the ``SYSLOG_IDENTIFIER`` under journald (``bridge-gateway``…).
    :param level: the lowest level logged (``DEBUG``, ``INFO``…).
    :param stream: where console and JSON lines go, and whose file ``JOURNAL_STREAM`` is
        compared with; ``sys.stderr`` by default (under systemd both stdout and stderr are the
        journal, and stderr keeps a command's own output clean).
    :param env: the environment to read (``os.environ`` by default).
    :param journal_socket: the journald socket; default ``$BRIDGEHOST_JOURNAL_SOCKET``, else
        ``/run/systemd/journal/socket``.

    Calling it again replaces the previous set-up.
    """
    env = os.environ if env is None else env
    stream = sys.stderr if stream is None else stream
    socket_path = str(journal_socket or env.get(JOURNAL_SOCKET_ENV) or JOURNAL_SOCKET)
    numeric_level = _parse_level(level)
    mode = _choose_mode(stream, env)

    shared = _shared_processors()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact,
            _renderer(mode),
        ],
    )
    handler = _handler(mode, service, stream, socket_path)
    handler.setFormatter(formatter)
    _install_root_handler(handler, numeric_level)
    logging.captureWarnings(True)

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Not cached: a cached logger keeps the processor list it first saw, so tests that use
        # structlog.testing.capture_logs() after this ran would silently capture nothing.
        # The cost is a logger lookup per event, which is nothing at this service's rates.
        cache_logger_on_first_use=False,
    )
    return mode


# --- helpers -----------------------------------------------------------------------------------


def get_logger(name: str | None = None, **initial_values: Any) -> FilteringBoundLogger:
    """Return a structlog logger; ``name`` becomes the ``logger`` field (``LOGGER`` in journald)."""
    args: Iterable[str] = () if name is None else (name,)
    return structlog.get_logger(*args, **initial_values)  # type: ignore[no-any-return]


def bind_call(call_id: str) -> AbstractContextManager[None]:
    """Within this block, every event (structlog or stdlib) carries ``call_id``.

    ::

        with bind_call(call.id):
            log.info("call.started")   # journald: CALL_ID=…
    """
    return structlog.contextvars.bound_contextvars(call_id=call_id)


def bind_plugin(name: str) -> AbstractContextManager[None]:
    """Within this block, every event carries ``plugin`` (``PLUGIN`` in journald)."""
    return structlog.contextvars.bound_contextvars(plugin=name)
