"""The configuration reference, read from the declarations: every table, key and provider.

:func:`collect_reference` walks the core config models (``SECTIONS``) and every provider the
plugin host loaded, and returns plain records; ``_reference_render`` turns them into
``bridge.config.toml.example`` and ``docs/configuration.md``. Nothing here is written by hand
twice: a key's meaning, unit and default come from its field, a provider's needs from its record.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from bridgehost.config import BridgeConfig, Service, core_secrets
from bridgehost.config._models import SECTIONS
from bridgehost.config._removed import REMOVED_SETTINGS
from bridgehost.plugins import LOAD_PLUGINS_ENV, PluginHost
from bridgehost.providers import SLOTS, Provided

PLACEHOLDER = '"…"'
"""Shown for an unset or required key that declares no example value."""

_RECORD_BASICS = frozenset(
    {"name", "description", "settings_model", "secrets", "readiness", "factory"}
)
"""Fields every provider record has; the others are its capability flags."""


@dataclass(frozen=True)
class KeyDoc:
    """One key of a table.

    :param meaning: what the key does, as a sentence (no unit, no default).
    :param default: the default as a person reads it (``8890``, ``derived: …``).
    :param value: the default as a TOML value, or ``None`` when the default is unset or derived
        (the example then shows ``example`` commented out).
    :param example: a TOML value to show for an unset key.
    """

    name: str
    meaning: str
    unit: str | None
    default: str
    value: str | None
    example: str

    @property
    def description(self) -> str:
        """The full comment: meaning, then ``Unit: …`` and ``Default: …``."""
        unit = f" Unit: {self.unit}." if self.unit else ""
        return f"{self.meaning}{unit} Default: {self.default}."


@dataclass(frozen=True)
class TableDoc:
    """One TOML table: ``realtime``, ``handoff.prices``, ``plugins.openai``.

    :param removed: ``(key, why)`` for keys an older file may set that no longer do anything.
    """

    path: str
    intro: str
    keys: list[KeyDoc]
    removed: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class SecretDoc:
    """One secret and, per service that needs it, why."""

    name: str
    why: dict[str, str]


@dataclass(frozen=True)
class ProviderDoc:
    """One provider: its slot, what it declares, and its ``[plugins.<name>]`` table."""

    name: str
    plugin: str
    builtin: bool
    slot: str
    config_key: str
    description: str
    flags: dict[str, str]
    secrets: list[SecretDoc]
    own_readiness: bool
    settings: TableDoc | None


@dataclass(frozen=True)
class Reference:
    """Everything the reference documents.

    :param core_secrets: the secrets bridgehost itself needs, with the services that read them.
    """

    tables: list[TableDoc]
    providers: list[ProviderDoc]
    core_secrets: list[SecretDoc]

    @property
    def secret_names(self) -> list[str]:
        """Every secret name, core first, then the providers' in order, each once."""
        names = [s.name for s in self.core_secrets]
        names += [s.name for p in self.providers for s in p.secrets]
        return list(dict.fromkeys(names))

    def to_json(self) -> dict[str, Any]:
        """The reference as plain data (``bridgectl config reference --json``)."""
        return dataclasses.asdict(self)


def toml_value(value: Any) -> str:
    """``value`` written as a TOML value (strings quoted, lists and tables inline)."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, PurePath):
        value = str(value)
    return json.dumps(str(value), ensure_ascii=False)


def _sentence(text: str) -> str:
    """``text`` on one line, ending with a full stop."""
    text = " ".join(text.split())
    return text if not text or text.endswith((".", "!", "?")) else text + "."


def key_doc(name: str, info: FieldInfo) -> KeyDoc:
    """Document one field: from a ``setting(...)`` description (which already ends with
    ``Unit: …`` and ``Default: …``) or from any pydantic field, adding what it lacks."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    unit = extra.get("unit")
    unit = str(unit) if unit else None
    required = info.is_required()
    default = None if required else info.get_default(call_default_factory=True)
    value = None if default is None else toml_value(default)
    text = " ".join((info.description or "").split())
    meaning, marker, default_text = text.rpartition(" Default: ")
    if not marker:
        meaning, default_text = text, ("none (required)" if required else value or "unset")
    if unit:
        meaning = meaning.removesuffix(f" Unit: {unit}.")
    examples = info.examples or []
    example = toml_value(examples[0]) if examples else (value or PLACEHOLDER)
    return KeyDoc(
        name=name,
        meaning=_sentence(meaning) or "(undocumented)",
        unit=unit,
        default=default_text.strip().removesuffix("."),
        value=value,
        example=example,
    )


def _submodel(info: FieldInfo) -> type[BaseModel] | None:
    annotation = info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def model_tables(path: str, model: type[BaseModel], intro: str) -> list[TableDoc]:
    """The table at ``path`` documenting ``model``'s keys, then one per nested model."""
    keys, nested = [], []
    for name, info in model.model_fields.items():
        submodel = _submodel(info)
        if submodel is None:
            keys.append(key_doc(name, info))
        else:
            sub_intro = (info.description or "").partition(" Default: ")[0]
            nested += model_tables(f"{path}.{name}", submodel, sub_intro)
    removed = sorted(REMOVED_SETTINGS.get(path, {}).items())
    return [TableDoc(path, _sentence(intro), keys, removed), *nested]


def core_tables() -> list[TableDoc]:
    """Every table of ``bridge.config.toml`` itself, in the order of ``SECTIONS``."""
    tables: list[TableDoc] = []
    for name, model in SECTIONS.items():
        section = BridgeConfig.model_fields.get(name)
        intro = (section.description or "") if section else ""
        tables += model_tables(name, model, intro)
    return tables


def core_secret_docs() -> list[SecretDoc]:
    """The secrets bridgehost needs whatever the providers, with the services that need them."""
    services: dict[Service, str] = {
        "gateway": "gateway",
        "telegram": "telegram",
        "ctl": "bridgectl",
    }
    found: dict[str, dict[str, str]] = {}
    for service, label in services.items():
        for name in core_secrets(True, service):
            found.setdefault(name, {})[label] = "needed with realtime.enabled"
        for name in core_secrets(False, service):
            found.setdefault(name, {})[label] = "always needed"
    return [SecretDoc(name, why) for name, why in found.items()]


def _flag_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def provider_doc(provided: Provided, host: PluginHost, slot_label: str, key: str) -> ProviderDoc:
    """Document one provider from its record."""
    record = provided.record
    plugin = host.record(provided.plugin)
    flags = {
        f.name: _flag_text(getattr(record, f.name))
        for f in dataclasses.fields(record)
        if f.name not in _RECORD_BASICS
    }
    settings = None
    if record.settings_model is not None:
        intro = f"Settings of the {slot_label} {record.name}."
        settings = model_tables(f"plugins.{record.name}", record.settings_model, intro)[0]
    return ProviderDoc(
        name=record.name,
        plugin=provided.plugin,
        builtin=bool(plugin and plugin.builtin),
        slot=slot_label,
        config_key=key,
        description=_sentence(record.description),
        flags=flags,
        secrets=[
            SecretDoc(need.name, {str(service): why for service, why in need.why.items()})
            for need in record.secrets
        ],
        own_readiness=record.readiness is not None,
        settings=settings,
    )


def collect_reference(host: PluginHost) -> Reference:
    """The whole reference: core tables, then every provider ``host`` loaded, slot by slot."""
    providers = [
        provider_doc(provided, host, slot.label, slot.config_key)
        for slot in SLOTS
        for _, provided in sorted(host.providers(slot.key).items())
    ]
    return Reference(core_tables(), providers, core_secret_docs())


def load_host(*, builtins_only: bool = False) -> PluginHost:
    """Every installed plugin (honouring ``BRIDGEHOST_LOAD_PLUGINS``), or only the builtins."""
    return PluginHost.load(env={LOAD_PLUGINS_ENV: ""}) if builtins_only else PluginHost.load()


__all__ = [
    "KeyDoc",
    "ProviderDoc",
    "Reference",
    "SecretDoc",
    "TableDoc",
    "collect_reference",
    "key_doc",
    "load_host",
    "toml_value",
]
