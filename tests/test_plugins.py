"""The plugin host: loading, statuses, selection, off-switches, isolation."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import types
from importlib.metadata import EntryPoint

import pytest

from bridgehost import hookimpl
from bridgehost.plugins import PluginError, PluginHost, PluginStatus
from bridgehost.providers import (
    CallInfo,
    ContextPart,
    HandoffSink,
    ProviderContext,
    TunnelMode,
)


def _sink_plugin(name: str) -> types.SimpleNamespace:
    @hookimpl
    def bridgehost_register_handoff_sinks():
        return [HandoffSink(name=name, description=f"{name} sink", factory=lambda ctx: ctx)]

    return types.SimpleNamespace(
        bridgehost_register_handoff_sinks=bridgehost_register_handoff_sinks
    )


def test_builtins_load_through_entry_points():
    host = PluginHost.load(env={})
    records = {r.name: r for r in host.records()}
    assert records["static-public-url"].status is PluginStatus.ENABLED
    assert records["static-public-url"].builtin
    assert records["static-public-url"].provides["tunnel_modes"] == ["static-public-url"]
    assert "file" in host.providers("handoff_sinks")
    assert host.conflicts() == []


def test_plugin_that_fails_to_import_is_reported_and_host_goes_on(site_packages, monkeypatch):
    site_packages.install(
        "broken-plugin",
        "1.2",
        {"broken_mod": "raise ImportError('no numpy')"},
        {"broken": "broken_mod"},
    )
    monkeypatch.syspath_prepend(str(site_packages.path))
    eps = [EntryPoint("broken", "broken_mod", "bridgehost")]
    host = PluginHost.load(env={}, entry_points=eps)
    record = host.record("broken")
    assert record is not None and record.status is PluginStatus.FAILED
    assert "ImportError: no numpy" in record.error


def test_selected_provider_from_failed_plugin_names_plugin_version_and_error(
    site_packages, monkeypatch
):
    monkeypatch.syspath_prepend(str(site_packages.path))
    site_packages.install(
        "bridgehost-broken",
        "1.2",
        {"broken_sink": "import no_such_module"},
        {"broken-sink": "broken_sink"},
    )
    import importlib.metadata as md

    dist = md.PathDistribution(next(site_packages.path.glob("*.dist-info")))
    host = PluginHost.load(env={}, entry_points=list(dist.entry_points))
    with pytest.raises(PluginError) as err:
        host.select("handoff_sinks", "broken-sink")
    message = str(err.value)
    assert "broken-sink 1.2" in message
    assert "failed to load" in message and "no_such_module" in message


def test_unknown_provider_lists_choices():
    host = PluginHost.load(env={})
    with pytest.raises(PluginError, match=r"Choose one of: .*static-public-url"):
        host.select("tunnel_modes", "ngrok")


def test_duplicate_provider_names_are_a_conflict():
    host = PluginHost.load(env={}, entry_points=[])
    host.register(_sink_plugin("shared"), "one", version="1.0")
    host.register(_sink_plugin("shared"), "two", version="2.0")
    assert len(host.conflicts()) == 1
    assert "one 1.0 and two 2.0" in host.conflicts()[0]
    with pytest.raises(PluginError, match=r'plugins\.disabled = \["two"\]'):
        host.select("handoff_sinks", "shared")


def test_misspelled_hook_fails_with_known_hooks():
    @hookimpl
    def bridgehost_register_tunnel_mode():  # missing "s"
        return []

    plugin = types.SimpleNamespace(bridgehost_register_tunnel_mode=bridgehost_register_tunnel_mode)
    host = PluginHost.load(env={}, entry_points=[])
    record = host.register(plugin, "typo")
    assert record.status is PluginStatus.FAILED
    assert "bridgehost_register_tunnel_modes" in record.error
    assert host.pm.get_plugin("typo") is None


def test_register_hook_that_raises_or_returns_garbage_fails_only_that_plugin():
    @hookimpl
    def bridgehost_register_tunnel_modes():
        raise RuntimeError("boom")

    @hookimpl
    def bridgehost_register_handoff_sinks():
        return ["not a record"]

    host = PluginHost.load(env={}, entry_points=[])
    raising = host.register(
        types.SimpleNamespace(bridgehost_register_tunnel_modes=bridgehost_register_tunnel_modes),
        "raising",
    )
    garbage = host.register(
        types.SimpleNamespace(bridgehost_register_handoff_sinks=bridgehost_register_handoff_sinks),
        "garbage",
    )
    good = host.register(_sink_plugin("fine"), "good")
    assert raising.status is PluginStatus.FAILED and "RuntimeError: boom" in raising.error
    assert garbage.status is PluginStatus.FAILED and "expected HandoffSink" in garbage.error
    assert good.status is PluginStatus.ENABLED
    assert list(host.providers("handoff_sinks")) == ["fine"]


def test_strict_mode_raises_on_first_failure(site_packages, monkeypatch):
    site_packages.install("bad", "0.1", {"bad_mod": "1/0"}, {"bad": "bad_mod"})
    monkeypatch.syspath_prepend(str(site_packages.path))
    eps = [EntryPoint("bad", "bad_mod", "bridgehost")]
    with pytest.raises(PluginError, match="ZeroDivisionError"):
        PluginHost.load(env={"BRIDGEHOST_STRICT_PLUGINS": "1"}, entry_points=eps)


def test_load_plugins_env_limits_third_party_plugins_only(site_packages):
    site_packages.install("bridgehost-extra", "3.0", {"extra_mod": ""}, {"extra": "extra_mod"})
    import importlib.metadata as md

    extra = list(md.PathDistribution(next(site_packages.path.glob("*.dist-info"))).entry_points)
    builtin = [ep for ep in md.entry_points(group="bridgehost") if ep.dist.name == "bridgehost"]
    host = PluginHost.load(env={"BRIDGEHOST_LOAD_PLUGINS": ""}, entry_points=builtin + extra)
    assert host.record("extra").status is PluginStatus.DISABLED
    assert "BRIDGEHOST_LOAD_PLUGINS" in host.record("extra").detail
    assert host.record("file").status is PluginStatus.ENABLED


def test_loading_the_builtins_does_not_import_the_openai_sdk():
    """Every ``bridgectl`` command loads the plugins; the SDK alone costs ~0.7 s of CPU."""
    script = (
        "import sys; from bridgehost.plugins import PluginHost; PluginHost.load(env={}); "
        "print(sorted(m for m in sys.modules if m == 'openai' or m.startswith('openai.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.splitlines()[-1] == "[]"


def test_config_disabled_applies_to_builtins_too():
    host = PluginHost.load(env={}, disabled=["file"])
    assert host.record("file").status is PluginStatus.DISABLED
    with pytest.raises(PluginError, match=r"disabled by plugins\.disabled"):
        host.select("handoff_sinks", "file")


async def test_call_context_isolates_a_raising_plugin():
    @hookimpl
    def good_context(call, config):
        return [ContextPart(title="Rota", text=f"call {call.call_id}", priority=10)]

    @hookimpl
    def bad_context(call, config):
        raise ValueError("nope")

    host = PluginHost.load(env={}, entry_points=[])
    host.register(types.SimpleNamespace(bridgehost_call_context=good_context), "good")
    host.register(types.SimpleNamespace(bridgehost_call_context=bad_context), "bad")
    parts = await host.call_context(CallInfo(call_id="c1", bridge_id="b"), config=None)
    assert parts == [ContextPart(title="Rota", text="call c1", priority=10)]


async def test_call_context_awaits_async_plugins_each_within_the_timeout():
    @hookimpl
    async def async_context(call, config):
        await asyncio.sleep(0)
        return [ContextPart(title="Async", text=call.call_id, priority=80)]

    @hookimpl
    async def slow_context(call, config):
        await asyncio.sleep(30)
        return [ContextPart(title="Never", text="too late")]

    @hookimpl
    def sync_context(call, config):
        return [ContextPart(title="Sync", text="from a thread", priority=20)]

    host = PluginHost.load(env={}, entry_points=[])
    for name, impl in [("a", async_context), ("slow", slow_context), ("s", sync_context)]:
        host.register(types.SimpleNamespace(bridgehost_call_context=impl), name)
    started = asyncio.get_running_loop().time()
    parts = await host.call_context(CallInfo(call_id="c2", bridge_id="b"), None, timeout_s=0.3)
    assert asyncio.get_running_loop().time() - started < 2
    assert [p.title for p in parts] == ["Async", "Sync"]

    @hookimpl
    async def fixed_context(call, config):
        return [ContextPart(title="Fixed", text="in place of a", priority=90)]

    host.replace_call_context("a", types.SimpleNamespace(bridgehost_call_context=fixed_context))
    parts = await host.call_context(CallInfo(call_id="c3", bridge_id="b"), None, timeout_s=0.3)
    assert [p.title for p in parts] == ["Fixed", "Sync"]
    assert host.record("a-context").status is PluginStatus.ENABLED


def test_build_passes_context_with_validated_settings():
    from pydantic import BaseModel

    from bridgehost.config import load_config

    class Settings(BaseModel):
        depth: int = 1

    seen: list[ProviderContext] = []

    @hookimpl
    def bridgehost_register_tunnel_modes():
        return [
            TunnelMode(
                name="probe-mode",
                description="x",
                settings_model=Settings,
                factory=lambda ctx: seen.append(ctx) or ctx,
            )
        ]

    host = PluginHost.load(env={}, entry_points=[])
    host.register(
        types.SimpleNamespace(bridgehost_register_tunnel_modes=bridgehost_register_tunnel_modes),
        "probe",
    )
    loaded = load_config(None, env={})
    host.build(host.select("tunnel_modes", "probe-mode"), loaded.config, loaded.secrets)
    assert seen[0].settings == Settings(depth=1)
    assert seen[0].plugin == "probe"


def test_to_json_shape():
    data = PluginHost.load(env={}).to_json()
    entry = next(p for p in data["plugins"] if p["name"] == "file")
    assert set(entry) >= {"name", "version", "status", "error", "hooks", "provides"}
    assert set(entry["provides"]) == {"tunnel_modes", "realtime_backends", "handoff_sinks"}
    json.dumps(data)


def test_provider_names_are_validated():
    with pytest.raises(ValueError, match="not valid"):
        HandoffSink(name="Bad Name", description="x", factory=lambda ctx: ctx)
