"""The effective configuration as plain data and text, with every secret masked."""

from __future__ import annotations

import json
import re
from typing import Any

from bridgehost.config._models import BridgeConfig
from bridgehost.config._secrets import Secrets

MASK = "***"
_SENSITIVE = re.compile(r"secret|token|passw|api_?key|credential|private_?key", re.IGNORECASE)
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _mask_tables(node: Any) -> Any:
    """Mask values of secret-looking keys in free-form plugin tables."""
    if isinstance(node, dict):
        return {
            key: MASK
            if _SENSITIVE.search(str(key)) and value not in (None, "")
            else _mask_tables(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_mask_tables(item) for item in node]
    return node


def mask_config(config: BridgeConfig, secrets: Secrets) -> dict[str, Any]:
    """The effective configuration as JSON-ready data, secrets masked.

    Derived values are filled in: ``realtime.tunnel_mode`` (effective mode),
    ``realtime.control_url`` (effective URL), ``codex.home`` and ``storage.root`` (resolved).
    Plugin tables keep their keys but secret-looking values (``*token*``, ``*secret*``,
    ``*password*``, ``*api_key*``…) become ``"***"``. ``secrets`` maps each known secret to
    ``"present (<source>)"`` or ``"missing"``.
    """
    data = config.model_dump(mode="json")
    data["realtime"]["tunnel_mode"] = config.realtime.effective_tunnel_mode
    data["realtime"]["control_url"] = config.realtime.effective_control_url
    data["plugins"] = _mask_tables(data["plugins"])
    data["secrets"] = secrets.masked()
    return data


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    return json.dumps(str(value), ensure_ascii=False)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def render_toml(data: dict[str, Any], header: str | None = None) -> str:
    """TOML-style text for nested plain data; ``None`` values become ``# key = (unset)``."""
    lines: list[str] = [f"# {line}" for line in (header or "").splitlines()]

    def table(node: dict[str, Any], prefix: list[str]) -> None:
        if prefix:
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_key(p) for p in prefix) + "]")
        for key, value in node.items():
            if value is None:
                lines.append(f"# {_key(key)} = (unset)")
            elif not isinstance(value, dict):
                lines.append(f"{_key(key)} = {_value(value)}")
        for key, value in node.items():
            if isinstance(value, dict):
                table(value, [*prefix, key])

    table(data, [])
    return "\n".join(lines) + "\n"
