"""Secrets: systemd credentials, then the environment, then a ``.env`` file.

Values are held as :class:`pydantic.SecretStr` and never printed; :meth:`Secrets.describe` says
only whether each is present and where it came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import SecretStr

TELEGRAM_BOT_TOKEN = "TELEGRAM_BOT_TOKEN"
OPENAI_API_KEY = "OPENAI_API_KEY"
REALTIME_CONTROL_SECRET = "REALTIME_CONTROL_SECRET"
KNOWN_SECRETS: tuple[str, ...] = (TELEGRAM_BOT_TOKEN, OPENAI_API_KEY, REALTIME_CONTROL_SECRET)
"""The secrets bridgehost itself uses; plugins may ask for others with :meth:`Secrets.get`."""

SOURCE_CREDENTIAL = "credential"
SOURCE_ENVIRONMENT = "environment"
SOURCE_DOTENV = ".env file"
CREDSTORE_DIR = "/etc/credstore"
"""Where the shipped units' ``LoadCredential=NAME`` (no path) finds secret ``NAME``."""

_NAME_RE = re.compile(r"^[\w.-]+$")


def validate_secret_name(name: str) -> str:
    """Return ``name`` if it is a safe credential/variable name, else raise ``ValueError``.

    Names match ``^[\\w.-]+$`` and are not ``.`` or ``..`` (they become file names under
    ``$CREDENTIALS_DIRECTORY``).
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name in (".", ".."):
        raise ValueError(
            f"invalid secret name {name!r}: use letters, digits, '_', '.', '-' "
            "(e.g. OPENAI_API_KEY)"
        )
    return name


def credstore_hint(name: str) -> str:
    """How to give secret ``name`` to the shipped systemd units (the fix in messages)."""
    return (
        f"put it in {CREDSTORE_DIR}/{name} (root-only, mode 0600), which the units load with "
        f"LoadCredential={name}"
    )


class Secrets:
    """Secrets looked up, in order, in ``$CREDENTIALS_DIRECTORY/<NAME>`` (systemd
    ``LoadCredential=``), the process environment, and a ``.env`` file.

    An empty value counts as missing and the next source is tried. Reading ``.env`` never
    modifies ``os.environ``.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        credentials_dir: Path | None = None,
        dotenv: Mapping[str, str | None] | None = None,
        dotenv_path: Path | None = None,
    ) -> None:
        """Usually built by :meth:`load`; tests may pass the three sources directly."""
        self._env: Mapping[str, str] = dict(os.environ if env is None else env)
        self._credentials_dir = credentials_dir
        self._dotenv: dict[str, str | None] = dict(dotenv or {})
        self.dotenv_path = dotenv_path
        """The ``.env`` file consulted (it may not exist), or ``None``."""

    @classmethod
    def load(
        cls,
        *,
        env: Mapping[str, str] | None = None,
        config_path: Path | None = None,
        cwd: Path | None = None,
    ) -> Secrets:
        """Secrets for a process: credentials from ``$CREDENTIALS_DIRECTORY`` in ``env``, the
        ``env`` itself, and ``.env`` next to ``config_path`` (or in ``cwd`` without one)."""
        env = os.environ if env is None else env
        cred = env.get("CREDENTIALS_DIRECTORY", "").strip()
        base = config_path.parent if config_path is not None else (cwd or Path.cwd())
        dotenv_path = base / ".env"
        values: dict[str, str | None] = {}
        if dotenv_path.is_file():
            from dotenv import dotenv_values  # only when there is a .env to read

            values = dict(dotenv_values(dotenv_path, interpolate=False))
        return cls(
            env=env,
            credentials_dir=Path(cred) if cred else None,
            dotenv=values,
            dotenv_path=dotenv_path,
        )

    def _lookup(self, name: str) -> tuple[str, str] | None:
        validate_secret_name(name)
        if self._credentials_dir is not None:
            path = self._credentials_dir / name
            try:
                value = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):  # absent, a directory, unreadable: next
                value = ""
            if value.endswith("\r\n"):
                value = value[:-2]
            elif value.endswith("\n"):
                value = value[:-1]
            if value:
                return value, SOURCE_CREDENTIAL
        value = self._env.get(name) or ""
        if value:
            return value, SOURCE_ENVIRONMENT
        value = self._dotenv.get(name) or ""
        if value:
            return value, SOURCE_DOTENV
        return None

    def get(self, name: str) -> SecretStr | None:
        """The secret called ``name`` (also its credential file name), or ``None``.

        :raises ValueError: when ``name`` is not a valid secret name.
        """
        found = self._lookup(name)
        return SecretStr(found[0]) if found else None

    def source(self, name: str) -> str | None:
        """Where ``name`` comes from: ``"credential"``, ``"environment"``, ``".env file"``."""
        found = self._lookup(name)
        return found[1] if found else None

    @property
    def telegram_bot_token(self) -> SecretStr | None:
        """``TELEGRAM_BOT_TOKEN``."""
        return self.get(TELEGRAM_BOT_TOKEN)

    @property
    def openai_api_key(self) -> SecretStr | None:
        """``OPENAI_API_KEY``."""
        return self.get(OPENAI_API_KEY)

    @property
    def realtime_control_secret(self) -> SecretStr | None:
        """``REALTIME_CONTROL_SECRET``."""
        return self.get(REALTIME_CONTROL_SECRET)

    @property
    def credentials_dir(self) -> Path | None:
        """``$CREDENTIALS_DIRECTORY`` when set."""
        return self._credentials_dir

    def describe(self, names: Iterable[str] | None = None) -> dict[str, dict[str, object]]:
        """Per name: ``{"present": bool, "source": str | None}`` — never the value."""
        result: dict[str, dict[str, object]] = {}
        for name in names if names is not None else KNOWN_SECRETS:
            source = self.source(name)
            result[name] = {"present": source is not None, "source": source}
        return result

    def masked(self, names: Iterable[str] | None = None) -> dict[str, str]:
        """Per name: ``"present (<source>)"`` or ``"missing"``."""
        return {
            name: f"present ({info['source']})" if info["present"] else "missing"
            for name, info in self.describe(names).items()
        }

    def __repr__(self) -> str:
        present = ", ".join(f"{k}={v}" for k, v in self.masked().items())
        return f"Secrets({present})"
