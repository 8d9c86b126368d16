"""The plugin-author fixtures of ``bridgehost.testing`` (loaded through its pytest11 entry)."""

from __future__ import annotations

import types

from bridgehost import hookimpl
from bridgehost.plugins import PluginStatus
from bridgehost.providers import HandoffSink


class _Sink:
    def __init__(self, context):
        self.context = context


@hookimpl
def bridgehost_register_handoff_sinks():
    return [HandoffSink(name="kit-sink", description="from the test kit test", factory=_Sink)]


PLUGIN = types.SimpleNamespace(bridgehost_register_handoff_sinks=bridgehost_register_handoff_sinks)


def test_plugin_host_starts_empty(plugin_host):
    assert plugin_host.records() == []


def test_register_plugin_then_select_and_build(register_plugin, plugin_host, bridge_config):
    record = register_plugin(PLUGIN, "kit", version="1.0")
    assert record.status is PluginStatus.ENABLED
    loaded = bridge_config('[handoff]\nsinks = ["kit-sink"]\n', SOME_SECRET="value-123456")
    sink = plugin_host.build(
        plugin_host.select("handoff_sinks", "kit-sink"), loaded.config, loaded.secrets
    )
    assert sink.context.plugin == "kit"
    assert sink.context.secrets.get("SOME_SECRET").get_secret_value() == "value-123456"
