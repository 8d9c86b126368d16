"""Keys that older ``bridge.config.toml`` files may still set but that no longer do anything.

They are accepted (so an old file keeps loading) and dropped before validation;
``bridgectl config check`` lists them as ignored (:func:`ignored_settings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REMOVED_SETTINGS: dict[str, dict[str, str]] = {
    "realtime": {
        "surface_mode": "the call surface is always armed by hand (bridgectl call arm or "
        "/call), so the setting had no effect",
    },
    "handoff.prices": {
        "audio_input_usd_per_minute": "audio is priced per token now: set "
        "handoff.prices.audio_input_usd_per_million_tokens",
        "audio_output_usd_per_minute": "audio is priced per token now: set "
        "handoff.prices.audio_output_usd_per_million_tokens",
    },
}
"""Per table (dotted), the removed keys and why each has no effect."""


def drop_removed(table: str, data: Any) -> Any:
    """``data`` (one table of the document) without the keys removed from ``table``."""
    removed = REMOVED_SETTINGS.get(table, {})
    if isinstance(data, Mapping) and any(key in data for key in removed):
        return {key: value for key, value in data.items() if key not in removed}
    return data


def ignored_settings(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(dotted key, why)`` for each removed key the TOML document ``raw`` still sets."""
    found = []
    for table, removed in REMOVED_SETTINGS.items():
        node: Any = raw
        for part in table.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping):
            found += [(f"{table}.{key}", why) for key, why in removed.items() if key in node]
    return found


__all__ = ["REMOVED_SETTINGS", "drop_removed", "ignored_settings"]
