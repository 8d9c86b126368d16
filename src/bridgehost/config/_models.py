"""The sections of ``bridge.config.toml`` besides ``[realtime]`` and ``[handoff]``, and the whole
file."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bridgehost.config._fields import setting, split_url
from bridgehost.config._gateway import GatewayConfig
from bridgehost.config._handoff import HandoffConfig
from bridgehost.config._invites import InvitesConfig
from bridgehost.config._problems import CrossFieldError, FieldProblem, Issue
from bridgehost.config._realtime import RealtimeConfig

DEFAULT_STORAGE_ROOT = Path("./.bridge-data")
"""Storage root when neither ``storage.root`` nor ``$STATE_DIRECTORY`` is set."""

_STRICT = ConfigDict(extra="forbid", frozen=True)


def context_env(info: ValidationInfo) -> Mapping[str, str]:
    """The environment passed as validation context by ``load_config``, else ``os.environ``."""
    context = info.context if isinstance(info.context, Mapping) else {}
    env = context.get("env")
    return env if env is not None else os.environ


def default_storage_root(env: Mapping[str, str]) -> Path:
    """``$STATE_DIRECTORY`` (first entry; systemd ``StateDirectory=``), else ``./.bridge-data``."""
    state = env.get("STATE_DIRECTORY", "").split(":")[0].strip()
    return Path(state) if state else DEFAULT_STORAGE_ROOT


def default_codex_home(env: Mapping[str, str]) -> Path:
    """``$CODEX_HOME``, else ``~/.codex``."""
    home = env.get("CODEX_HOME", "").strip()
    return Path(home).expanduser() if home else Path("~/.codex").expanduser()


def _fill_default(data: Any, key: str, value: Path) -> Any:
    """Return ``data`` with ``key`` set to ``value`` when it is missing or null."""
    if isinstance(data, Mapping) and data.get(key) is None:
        return {**data, key: value}
    return data


class TelegramConfig(BaseModel):
    """``[telegram]``: the one chat the bot serves and the Bot API server it talks to."""

    model_config = _STRICT

    authorized_chat_id: int | None = setting(
        None,
        "The only chat the bot serves; also the Telegram user a launch token is bound to. A "
        "number (a numeric string is accepted). Send your bot a message, then "
        "`bridgectl telegram discover` shows it",
        strict=True,
        default_text="unset (the telegram service requires it)",
        examples=[123456789],
    )
    api_base_url: str = setting(
        "https://api.telegram.org",
        "Bot API server root; methods go to "
        "{api_base_url}/bot{token}/{method}; http or https; trailing slash stripped",
        unit="URL",
    )
    poll_timeout_s: int = setting(
        30,
        "Long-polling timeout of getUpdates (0 = short polling)",
        unit="s",
        strict=True,
        ge=0,
    )
    approval_timeout_s: float = setting(
        300.0,
        "How long an Approve/Deny question from Codex waits in the chat; no answer in time "
        "means deny",
        unit="s",
        strict=True,
        gt=0,
    )
    max_document_bytes: int = setting(
        20_000_000,
        "Largest document accepted from the chat (the Bot API downloads at most 20 MB)",
        unit="bytes",
        strict=True,
        gt=0,
    )
    inbox_dir: str = setting(
        "telegram-inbox",
        "Where documents sent in the chat are saved: a directory relative to the bound "
        "thread's working directory (or an absolute path)",
        unit="path",
    )

    @field_validator("authorized_chat_id", mode="before")
    @classmethod
    def _chat_id(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if not re.fullmatch(r"-?\d+", text):
                raise FieldProblem(
                    f"{value!r} is not a numeric chat id",
                    "use the number, e.g. 123456789 (private chat) or -1001234567890 (group); "
                    "`bridgectl telegram discover` shows it",
                )
            return int(text)
        return value

    @field_validator("api_base_url", mode="after")
    @classmethod
    def _api_base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts, reason = split_url(value)
        if parts is None:
            raise FieldProblem(f"{value!r} {reason}", 'use e.g. "https://api.telegram.org"')
        if parts.scheme.lower() not in ("http", "https"):
            raise FieldProblem(
                f"{value!r} must be an http:// or https:// URL",
                'use e.g. "https://api.telegram.org"',
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise FieldProblem(
                f"{value!r} must not carry credentials, a query or a fragment",
                'give only the server root, e.g. "https://api.telegram.org"',
            )
        return value


class CodexConfig(BaseModel):
    """``[codex]``: where Codex lives and which thread calls hand off to."""

    model_config = _STRICT

    binary: str = setting(
        "codex", "The codex executable (name on PATH or absolute path)", unit="path"
    )
    home: Path = setting(
        None,
        "Codex home directory (sessions, config)",
        unit="path",
        default_text="$CODEX_HOME if set, else ~/.codex",
        examples=["~/.codex"],
    )
    thread_id: str | None = setting(
        None,
        "Codex thread that calls hand off to",
        default_text="unset (the thread bound at runtime)",
        examples=["0199a0b1-..."],
    )
    app_server_timeout_s: float = setting(
        30.0,
        "Timeout of one `codex app-server` request",
        unit="s",
        strict=True,
        gt=0,
    )
    call_sandbox: str = setting(
        "read-only",
        "Sandbox of the Codex turns that answer questions asked during a call: read-only, so "
        "nothing changes by voice; workspace-write lets them edit (approvals still go to the chat)",
        examples=["read-only", "workspace-write"],
        pattern=r"^(read-only|workspace-write)$",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_home(cls, data: Any, info: ValidationInfo) -> Any:
        return _fill_default(data, "home", default_codex_home(context_env(info)))

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("binary", mode="after")
    @classmethod
    def _binary(cls, value: str) -> str:
        if not value.strip():
            raise FieldProblem("must not be empty", 'remove the line to use "codex" from PATH')
        return value.strip()

    @field_validator("thread_id", mode="after")
    @classmethod
    def _thread_id(cls, value: str | None) -> str | None:
        return (value.strip() or None) if value is not None else None


class StorageConfig(BaseModel):
    """``[storage]``: where state, call logs and handoff files live."""

    model_config = _STRICT

    root: Path = setting(
        None,
        "State directory: SQLite databases, call logs, handoff files",
        unit="path",
        default_text="$STATE_DIRECTORY (systemd StateDirectory=) if set, else ./.bridge-data",
        examples=["./.bridge-data"],
    )
    retention_days: int = setting(
        14,
        "Call files older than this are removed at start-up; 0 keeps everything",
        unit="days",
        strict=True,
        ge=0,
    )

    @model_validator(mode="before")
    @classmethod
    def _default_root(cls, data: Any, info: ValidationInfo) -> Any:
        return _fill_default(data, "root", default_storage_root(context_env(info)))

    @field_validator("root", mode="after")
    @classmethod
    def _expand_root(cls, value: Path) -> Path:
        return value.expanduser()


class PluginsConfig(BaseModel):
    """``[plugins]``: ``disabled`` plus one free-form ``[plugins.<provider-name>]`` table each.

    The plugin host validates each table against the provider's own settings model.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    disabled: list[str] = setting(
        [],
        "Plugins (entry-point names, as `bridgectl plugins` lists them) not to load, "
        "builtins included",
        default_text="[] (none)",
    )

    @field_validator("disabled", mode="after")
    @classmethod
    def _disabled(cls, value: list[str]) -> list[str]:
        names = [name.strip() for name in value]
        if any(not name for name in names):
            raise FieldProblem("plugin names must not be empty", "remove the empty entry")
        return names

    @model_validator(mode="after")
    def _tables(self) -> PluginsConfig:
        issues = [
            Issue(
                (name,),
                f"plugins.{name} must be a table ([plugins.{name}]), got {value!r}",
                f"move the settings under a [plugins.{name}] header",
            )
            for name, value in (self.model_extra or {}).items()
            if not isinstance(value, Mapping)
        ]
        if issues:
            raise CrossFieldError(issues)
        return self

    def table(self, name: str) -> dict[str, Any]:
        """The raw ``[plugins.<name>]`` table (a copy), or ``{}`` when absent."""
        value = (self.model_extra or {}).get(name)
        return dict(value) if isinstance(value, Mapping) else {}

    @property
    def tables(self) -> dict[str, dict[str, Any]]:
        """Every ``[plugins.<name>]`` table, by name."""
        return {name: self.table(name) for name in self.model_extra or {}}


SECTIONS: dict[str, type[BaseModel]] = {
    "realtime": RealtimeConfig,
    "gateway": GatewayConfig,
    "telegram": TelegramConfig,
    "codex": CodexConfig,
    "handoff": HandoffConfig,
    "storage": StorageConfig,
    "invites": InvitesConfig,
    "plugins": PluginsConfig,
}


class BridgeConfig(BaseModel):
    """The whole ``bridge.config.toml``; every section is optional."""

    model_config = _STRICT

    realtime: RealtimeConfig = Field(
        default_factory=RealtimeConfig,
        description="Live calls, the gateway and the backend.",
    )
    gateway: GatewayConfig = Field(
        default_factory=GatewayConfig,
        description="Request deadlines and connection caps of the gateway.",
    )
    telegram: TelegramConfig = Field(
        default_factory=TelegramConfig,
        description="The bot's chat and Bot API server.",
    )
    codex: CodexConfig = Field(default_factory=CodexConfig, description="Where Codex lives.")
    handoff: HandoffConfig = Field(
        default_factory=HandoffConfig,
        description="Where finished calls are delivered.",
    )
    storage: StorageConfig = Field(
        default_factory=StorageConfig,
        description="State directory and retention.",
    )
    invites: InvitesConfig = Field(
        default_factory=InvitesConfig,
        description="When the agent may invite the person to a call.",
    )
    plugins: PluginsConfig = Field(
        default_factory=PluginsConfig,
        description="Disabled plugins and provider settings.",
    )

    @model_validator(mode="before")
    @classmethod
    def _all_sections(cls, data: Any) -> Any:
        """Validate absent sections from ``{}`` so env-derived defaults see the context."""
        if isinstance(data, Mapping):
            return {**{name: {} for name in SECTIONS}, **data}
        return data
