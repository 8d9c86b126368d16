"""bridgehost: talk live, from Telegram, with the Codex agent on your own machine.

Write a plugin in ten lines::

    # my_plugin.py
    import bridgehost
    from bridgehost.providers import HandoffSink

    @bridgehost.hookimpl
    def bridgehost_register_handoff_sinks():
        return [HandoffSink(name="my-sink", description="...", factory=MySink)]

    # pyproject.toml
    # [project.entry-points.bridgehost]
    # my-plugin = "my_plugin"

See ``bridgehost.hookspecs`` for every hook and ``docs/plugins.md`` for the guide.
"""

from importlib.metadata import PackageNotFoundError, version

import pluggy

PROJECT_NAME = "bridgehost"
"""The pluggy project name and the entry-point group plugins register under."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for plugin hook implementations: decorate ``bridgehost_*`` functions with it."""

try:
    __version__ = version("bridgehost")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["PROJECT_NAME", "__version__", "hookimpl"]
