"""The plugin host: loads entry points one by one, records a status for each, selects providers.

Core code never calls ``pm.hook.*`` directly; it asks :class:`PluginHost` for typed providers
(:meth:`PluginHost.select`, :meth:`PluginHost.select_sinks`) and collected contributions
(:meth:`PluginHost.call_context`, awaited, and :meth:`PluginHost.readiness_checks`).

Loading rules:

* Every module under the ``bridgehost`` entry-point group is a plugin, builtins included.
* A plugin that fails to import, to register, or to return valid provider records is marked
  ``failed`` with its error, and the host goes on. Only when a service *selects* a provider
  that is missing or broken does it refuse to start, naming plugin, version and error.
* ``BRIDGEHOST_LOAD_PLUGINS=a,b`` loads only those third-party plugins (empty: builtins only);
  ``plugins.disabled = [...]`` in the config disables any plugin, builtins included;
  ``BRIDGEHOST_STRICT_PLUGINS=1`` turns any load failure into an error (for plugin authors).
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import Distribution, EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

import pluggy
import structlog

from bridgehost import PROJECT_NAME, __version__, hookspecs
from bridgehost.providers import (
    SLOTS,
    CallInfo,
    ContextPart,
    Provided,
    ProviderContext,
    ReadinessCheck,
    SlotSpec,
)

if TYPE_CHECKING:
    from bridgehost.config import BridgeConfig, ConfigProblem, LoadedConfig, Secrets

log = structlog.get_logger("bridgehost.plugins")

LOAD_PLUGINS_ENV = "BRIDGEHOST_LOAD_PLUGINS"
STRICT_PLUGINS_ENV = "BRIDGEHOST_STRICT_PLUGINS"
BUILTIN_DISTRIBUTION = "bridgehost"
_SLOTS_BY_KEY = {slot.key: slot for slot in SLOTS}
CALL_CONTEXT_TIMEOUT_S = 10.0
"""How long one ``bridgehost_call_context`` implementation may take by default."""


class PluginStatus(enum.StrEnum):
    """Where a plugin stands after loading."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    FAILED = "failed"


class PluginError(Exception):
    """A plugin problem that stops a service from starting; the message says what to do."""


@dataclass
class PluginRecord:
    """One plugin as ``bridgectl plugins`` shows it."""

    name: str
    version: str | None = None
    distribution: str | None = None
    builtin: bool = False
    status: PluginStatus = PluginStatus.ENABLED
    error: str | None = None
    detail: str | None = None
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=lambda: {s.key: [] for s in SLOTS})

    @property
    def label(self) -> str:
        """``name version`` for messages."""
        return f"{self.name} {self.version}" if self.version else self.name

    def to_json(self) -> dict[str, Any]:
        """The record in the shape of ``bridgectl plugins --json``."""
        return {
            "name": self.name,
            "version": self.version,
            "distribution": self.distribution,
            "builtin": self.builtin,
            "status": str(self.status),
            "error": self.error,
            "detail": self.detail,
            "hooks": sorted(self.hooks),
            "provides": {key: sorted(names) for key, names in self.provides.items()},
        }


def _describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class PluginHost:
    """Loads plugins into a pluggy manager and hands out their providers by name."""

    def __init__(self, *, strict: bool = False) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.strict = strict
        self._records: dict[str, PluginRecord] = {}
        self._provided: dict[str, list[Provided]] = {slot.key: [] for slot in SLOTS}
        self._call_context_replaced: set[str] = set()

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        *,
        disabled: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        entry_points: Iterable[EntryPoint] | None = None,
    ) -> PluginHost:
        """Create a host and load every plugin of the ``bridgehost`` entry-point group.

        :param disabled: plugin names to skip (``plugins.disabled`` from the config).
        :param env: the environment to read the off-switches from (default ``os.environ``).
        :param entry_points: the entry points to load instead of the installed ones (tests).
        """
        env = os.environ if env is None else env
        host = cls(strict=_flag(env, STRICT_PLUGINS_ENV))
        host.load_entry_points(
            _installed_entry_points() if entry_points is None else entry_points,
            disabled=disabled,
            allow=_allow_list(env),
        )
        return host

    @classmethod
    def for_config(cls, config: BridgeConfig, env: Mapping[str, str] | None = None) -> PluginHost:
        """Load plugins honouring the config's ``plugins.disabled``."""
        return cls.load(disabled=config.plugins.disabled, env=env)

    def load_entry_points(
        self,
        eps: Iterable[EntryPoint],
        *,
        disabled: Iterable[str] = (),
        allow: frozenset[str] | None = None,
    ) -> None:
        """Load entry points one at a time, recording a status for each."""
        disabled = set(disabled)
        about: dict[int, tuple[str | None, str | None]] = {}
        for ep in sorted(eps, key=lambda e: e.name):
            distribution, version = _name_and_version(getattr(ep, "dist", None), about)
            record = PluginRecord(
                name=ep.name,
                version=version,
                distribution=distribution,
                builtin=distribution == BUILTIN_DISTRIBUTION,
            )
            if ep.name in self._records:
                first = self._records[ep.name]
                self._fail(
                    record,
                    f"another plugin named {ep.name!r} is already loaded from "
                    f"{first.distribution or 'an unknown distribution'}; uninstall one of them",
                    keep_name=False,
                )
                continue
            self._records[ep.name] = record
            if ep.name in disabled:
                record.status = PluginStatus.DISABLED
                record.detail = "disabled by plugins.disabled in bridge.config.toml"
                continue
            allowed_names = {ep.name, record.distribution}
            if allow is not None and not record.builtin and not (allow & allowed_names):
                record.status = PluginStatus.DISABLED
                record.detail = f"not listed in {LOAD_PLUGINS_ENV}"
                continue
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not take the host down
                self._fail(record, f"failed to import {ep.value}: {_describe_error(exc)}")
                continue
            self._register_into(record, module)
        self._log_summary()

    def register(self, plugin: object, name: str, *, version: str | None = None) -> PluginRecord:
        """Register an in-process plugin object (a module or an instance), e.g. in tests."""
        if name in self._records:
            raise PluginError(f"a plugin named {name!r} is already registered")
        record = PluginRecord(name=name, version=version)
        self._records[name] = record
        self._register_into(record, plugin)
        return record

    def unregister(self, name: str) -> None:
        """Remove a plugin and everything it provides."""
        record = self._records.pop(name, None)
        if record is None:
            return
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        for key in self._provided:
            self._provided[key] = [p for p in self._provided[key] if p.plugin != name]

    def _register_into(self, record: PluginRecord, plugin: object) -> None:
        try:
            self.pm.register(plugin, name=record.name)
        except Exception as exc:
            self._fail(record, f"could not register: {_describe_error(exc)}")
            return
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self._fail(record, self._unknown_hook_message(exc), unregister=True)
            return
        record.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
        try:
            provided = {slot.key: self._collect_slot(slot, plugin, record) for slot in SLOTS}
        except PluginError as exc:
            self._fail(record, str(exc), unregister=True)
            return
        for key, items in provided.items():
            self._provided[key].extend(items)
            record.provides[key] = [p.record.name for p in items]

    def _collect_slot(self, slot: SlotSpec, plugin: object, record: PluginRecord) -> list[Provided]:
        caller = getattr(self.pm.hook, slot.hook)
        items: list[Provided] = []
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                result = impl.function()
            except Exception as exc:
                raise PluginError(f"{slot.hook}() raised {_describe_error(exc)}") from exc
            if result is None:
                continue
            if not isinstance(result, Sequence) or isinstance(result, str | bytes):
                raise PluginError(
                    f"{slot.hook}() returned {type(result).__name__}; "
                    f"expected a list of {slot.record_type.__name__}"
                )
            for item in result:
                if not isinstance(item, slot.record_type):
                    raise PluginError(
                        f"{slot.hook}() returned a {type(item).__name__}; expected "
                        f"{slot.record_type.__name__} records (from bridgehost.providers)"
                    )
                items.append(Provided(record=item, plugin=record.name))
        return items

    def _unknown_hook_message(self, exc: pluggy.PluginValidationError) -> str:
        known = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith("bridgehost_")))
        return (
            f"{exc}. This bridgehost ({__version__}) knows these hooks: {known}. "
            "Check the spelling, or upgrade bridgehost if the plugin needs a newer version"
        )

    def _fail(
        self, record: PluginRecord, error: str, *, unregister: bool = False, keep_name: bool = True
    ) -> None:
        if unregister and self.pm.get_plugin(record.name) is not None:
            self.pm.unregister(name=record.name)
        record.status = PluginStatus.FAILED
        record.error = error
        record.hooks = []
        record.provides = {s.key: [] for s in SLOTS}
        if not keep_name:
            self._records[f"{record.name}#{len(self._records)}"] = record
        log.warning(
            "plugin failed to load", plugin=record.name, version=record.version, error=error
        )
        if self.strict:
            raise PluginError(
                f"plugin {record.label} failed to load ({STRICT_PLUGINS_ENV} is set): {error}"
            )

    def _log_summary(self) -> None:
        for status in PluginStatus:
            names = [r.label for r in self._records.values() if r.status is status]
            if names:
                log.debug("plugins " + str(status), plugins=names)

    # -- listing -------------------------------------------------------------------------

    def records(self) -> list[PluginRecord]:
        """Every plugin seen, builtins first, then by name."""
        return sorted(self._records.values(), key=lambda r: (not r.builtin, r.name))

    def record(self, name: str) -> PluginRecord | None:
        """The record of one plugin, if it was seen."""
        return self._records.get(name)

    def providers(self, slot_key: str) -> dict[str, Provided]:
        """The providers of one slot by name (the first, where a name is duplicated)."""
        result: dict[str, Provided] = {}
        for provided in self._provided[slot_key]:
            result.setdefault(provided.record.name, provided)
        return result

    def conflicts(self) -> list[str]:
        """One message per provider name that more than one plugin registers."""
        messages = []
        for slot in SLOTS:
            owners: dict[str, list[str]] = {}
            for provided in self._provided[slot.key]:
                owners.setdefault(provided.record.name, []).append(provided.plugin)
            messages += [
                self._conflict_message(slot, name, plugins)
                for name, plugins in sorted(owners.items())
                if len(plugins) > 1
            ]
        return messages

    def _conflict_message(self, slot: SlotSpec, name: str, plugins: list[str]) -> str:
        labels = " and ".join(self._records[p].label for p in plugins)
        return (
            f"{slot.label} {name!r} is registered by both {labels}; disable one "
            f'with plugins.disabled = ["{plugins[-1]}"] in bridge.config.toml'
        )

    def to_json(self) -> dict[str, Any]:
        """The whole listing in the shape of ``bridgectl plugins --json``."""
        return {
            "bridgehost_version": __version__,
            "plugins": [r.to_json() for r in self.records()],
            "conflicts": self.conflicts(),
        }

    # -- selection -----------------------------------------------------------------------

    def select(self, slot_key: str, name: str) -> Provided:
        """The provider the config names for a slot, or a :class:`PluginError` saying why not."""
        slot = _SLOTS_BY_KEY[slot_key]
        duplicates = [p for p in self._provided[slot_key] if p.record.name == name]
        if len(duplicates) > 1:
            raise PluginError(self._conflict_message(slot, name, [p.plugin for p in duplicates]))
        if duplicates:
            return duplicates[0]
        raise PluginError(self._missing_message(slot, name))

    def select_sinks(self, names: Iterable[str]) -> list[Provided]:
        """The handoff sinks the config lists, in order; every problem in one error."""
        chosen, problems = [], []
        for name in names:
            try:
                chosen.append(self.select("handoff_sinks", name))
            except PluginError as exc:
                problems.append(str(exc))
        if problems:
            raise PluginError("\n".join(problems))
        return chosen

    def _missing_message(self, slot: SlotSpec, name: str) -> str:
        available = ", ".join(sorted(self.providers(slot.key))) or "(none registered)"
        message = f"{slot.config_key}: no {slot.label} named {name!r}. Choose one of: {available}"
        same_name = self._records.get(name)
        if same_name and same_name.status is PluginStatus.FAILED:
            return (
                f"{slot.config_key}: the {slot.label} {name!r} comes from plugin "
                f"{same_name.label}, which failed to load: {same_name.error}. Reinstall or "
                f"upgrade that plugin, or choose one of: {available}"
            )
        if same_name and same_name.status is PluginStatus.DISABLED:
            return f"{message}. Plugin {name!r} is {same_name.status}: {same_name.detail}"
        failed = [r for r in self._records.values() if r.status is PluginStatus.FAILED]
        if failed:
            listed = "; ".join(f"{r.label} ({r.error})" for r in failed)
            message += f". These plugins failed to load and may provide it: {listed}"
        return message

    def selection_problems(self, config: BridgeConfig) -> list[ConfigProblem]:
        """Every problem with the providers ``config`` selects and their settings tables."""
        from bridgehost.config import ConfigProblem

        problems: list[ConfigProblem] = []
        wanted = [
            ("tunnel_modes", "realtime.tunnel_mode", [config.realtime.effective_tunnel_mode]),
            ("realtime_backends", "realtime.backend", [config.realtime.backend]),
            ("handoff_sinks", "handoff.sinks", list(config.handoff.sinks)),
        ]
        for slot_key, key, names in wanted:
            for name in names:
                try:
                    provided = self.select(slot_key, name)
                except PluginError as exc:
                    message = str(exc).removeprefix(f"{key}: ")
                    problems.append(ConfigProblem(key=key, message=message, fix=None))
                    continue
                problems.extend(self._settings_problems(provided, config))
        return problems

    def _settings_problems(self, provided: Provided, config: BridgeConfig) -> list[ConfigProblem]:
        from pydantic import ValidationError

        from bridgehost.config import ConfigProblem

        try:
            self.settings_for(provided, config)
        except ValidationError as exc:
            prefix = f"plugins.{provided.record.name}"
            return [
                ConfigProblem(
                    key=".".join([prefix, *map(str, err["loc"])]),
                    message=f"{err['msg']} (got {err.get('input')!r})",
                    fix=f"see the documentation of plugin {provided.plugin}",
                )
                for err in exc.errors()
            ]
        return []

    @staticmethod
    def settings_for(provided: Provided, config: BridgeConfig) -> Any:
        """Validate the provider's ``[plugins.<name>]`` table against its settings model."""
        model = provided.record.settings_model
        table = config.plugins.table(provided.record.name)
        return model.model_validate(table) if model is not None else None

    def build(self, provided: Provided, config: BridgeConfig, secrets: Secrets) -> Any:
        """Call a provider's factory with its :class:`ProviderContext`."""
        context = ProviderContext(
            config=config,
            settings=self.settings_for(provided, config),
            secrets=secrets,
            log=structlog.get_logger(f"bridgehost.plugin.{provided.plugin}").bind(
                plugin=provided.plugin
            ),
            plugin=provided.plugin,
        )
        return provided.record.factory(context)

    def selected(self, config: BridgeConfig) -> list[Provided]:
        """The providers ``config`` selects that are available (problems are left out).

        The tunnel mode, the realtime backend (only with ``realtime.enabled``) and the listed
        handoff sinks; :meth:`selection_problems` reports the ones that are missing.
        """
        wanted = [("handoff_sinks", name) for name in config.handoff.sinks]
        if config.realtime.enabled:
            wanted[:0] = [
                ("tunnel_modes", config.realtime.effective_tunnel_mode),
                ("realtime_backends", config.realtime.backend),
            ]
        chosen: list[Provided] = []
        for slot_key, name in wanted:
            try:
                chosen.append(self.select(slot_key, name))
            except PluginError:
                continue
        return chosen

    def secret_needs(self, config: BridgeConfig, service: str) -> list[tuple[str, str]]:
        """``(secret name, why)`` for each secret the selected providers need in ``service``."""
        needs: dict[str, str] = {}
        for provided in self.selected(config):
            for need in provided.record.secrets:
                for need_service, why in need.why.items():
                    if need_service == service:
                        needs.setdefault(need.name, why)
        return list(needs.items())

    def declared_secrets(self, service: str) -> dict[str, str]:
        """Every secret a loaded provider declares for ``service``, selected or not, with why.

        ``install-units`` loads all of them (``LoadCredential=`` skips a missing one), so a
        change of backend or sink needs no new units.
        """
        needs: dict[str, str] = {}
        for slot in SLOTS:
            for provided in self._provided[slot.key]:
                for need in provided.record.secrets:
                    for need_service, why in need.why.items():
                        if need_service == service:
                            needs.setdefault(need.name, why)
        return needs

    def require_ready(self, config: BridgeConfig) -> None:
        """Raise one :class:`PluginError` listing every conflict and selection problem."""
        problems = self.conflicts() + [p.message for p in self.selection_problems(config)]
        if problems:
            raise PluginError("cannot start: " + "\n".join(problems))

    # -- collecting hooks ----------------------------------------------------------------

    def replace_call_context(self, plugin_name: str, replacement: object) -> PluginRecord:
        """Leave ``plugin_name``'s ``bridgehost_call_context`` out and register ``replacement``
        (an object with that hook) as ``{plugin_name}-context``, in place of an earlier
        replacement; the plugin's other hooks stay.

        For tests and embedding, e.g. a fixed Codex reader in place of the builtin ``codex``
        plugin's (see :class:`bridgehost.builtin.codex_sink.CodexThreadContext`).
        """
        self._call_context_replaced.add(plugin_name)
        self.unregister(f"{plugin_name}-context")
        return self.register(replacement, f"{plugin_name}-context")

    async def call_context(
        self,
        call: CallInfo,
        config: BridgeConfig,
        *,
        timeout_s: float = CALL_CONTEXT_TIMEOUT_S,
    ) -> list[ContextPart]:
        """Collect context parts from every plugin at once, highest priority first.

        Each implementation gets ``timeout_s``: ``async def`` ones are awaited on this loop,
        plain ones run in a worker thread. One that raises or is too slow is logged and left
        out.
        """
        impls = [
            impl
            for impl in self.pm.hook.bridgehost_call_context.get_hookimpls()
            if impl.plugin_name not in self._call_context_replaced
        ]
        kwargs = {"call": call, "config": config}
        results = await asyncio.gather(
            *(self._one_call_context(impl, kwargs, timeout_s) for impl in impls)
        )
        parts: list[ContextPart] = []
        for impl, result in zip(impls, results, strict=True):
            parts.extend(p for p in result if isinstance(p, ContextPart))
            if any(not isinstance(p, ContextPart) for p in result):
                log.warning("ignored non-ContextPart items", plugin=impl.plugin_name)
        return sorted(parts, key=lambda p: -p.priority)

    async def _one_call_context(
        self, impl: pluggy.HookImpl, kwargs: Mapping[str, Any], timeout_s: float
    ) -> list[Any]:
        args = [kwargs[arg] for arg in impl.argnames]
        try:
            async with asyncio.timeout(timeout_s):
                if inspect.iscoroutinefunction(impl.function):
                    result = await impl.function(*args)
                else:
                    result = await asyncio.to_thread(impl.function, *args)
                    if inspect.isawaitable(result):
                        result = await result
        except TimeoutError:
            log.warning(
                "call context source too slow; left out",
                plugin=impl.plugin_name,
                call_id=getattr(kwargs["call"], "call_id", None),
                budget_s=timeout_s,
            )
            return []
        except Exception as exc:
            log.warning(
                "call context source failed; left out",
                plugin=impl.plugin_name,
                call_id=getattr(kwargs["call"], "call_id", None),
                error=_describe_error(exc),
            )
            return []
        return list(result) if result else []

    def readiness_checks(self, config: BridgeConfig) -> list[tuple[str, ReadinessCheck]]:
        """Collect ``(plugin name, check)`` pairs: the selected providers' own, then the hook's."""
        checks: list[tuple[str, ReadinessCheck]] = []
        for provided in self.selected(config):
            declared = provided.record.readiness
            if declared is None:
                continue
            try:
                checks.extend((provided.plugin, c) for c in declared(config))
            except Exception as exc:
                log.warning(
                    "provider readiness failed", plugin=provided.plugin, error=_describe_error(exc)
                )
        for plugin_name, result in self._call_each("bridgehost_readiness_checks", config=config):
            checks.extend((plugin_name, c) for c in result if isinstance(c, ReadinessCheck))
        return checks

    def _call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Sequence[Any]]]:
        results: list[tuple[str, Sequence[Any]]] = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                result = impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as exc:
                log.warning(
                    "plugin hook failed",
                    plugin=impl.plugin_name,
                    hook=hook_name,
                    error=_describe_error(exc),
                )
                continue
            if result:
                results.append((impl.plugin_name, list(result)))
        return results


def _name_and_version(
    dist: Distribution | None, seen: dict[int, tuple[str | None, str | None]]
) -> tuple[str | None, str | None]:
    """A distribution's name and version, its metadata parsed once however many entry points
    it has: ``dist.name`` and ``dist.version`` each read and parse the whole ``METADATA`` file
    again (about 1 ms each for bridgehost's, which carries the README), for every plugin."""
    if dist is None:
        return None, None
    if id(dist) not in seen:
        metadata = dist.metadata
        seen[id(dist)] = (metadata["Name"], metadata["Version"])
    return seen[id(dist)]


def _installed_entry_points() -> list[EntryPoint]:
    return list(entry_points(group=PROJECT_NAME))


def _allow_list(env: Mapping[str, str]) -> frozenset[str] | None:
    raw = env.get(LOAD_PLUGINS_ENV)
    if raw is None:
        return None
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def check_config_problems(
    loaded: LoadedConfig, host: PluginHost | None = None
) -> list[ConfigProblem]:
    """Plugin problems for ``bridgectl config check``: conflicts, selection and settings."""
    from bridgehost.config import ConfigProblem

    host = host or PluginHost.for_config(loaded.config)
    problems = [ConfigProblem(key="plugins", message=m, fix=None) for m in host.conflicts()]
    return problems + host.selection_problems(loaded.config)
