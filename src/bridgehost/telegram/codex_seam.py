"""The Codex reader the bridge can be given in place of the builtin one.

The bridge reaches Codex before a call only through the plugin host: the builtin ``codex``
plugin's ``bridgehost_call_context`` reads the bound thread
(:mod:`bridgehost.builtin.codex_sink`). :func:`bridgehost.telegram.daemon.build_bridge`'s
``codex=`` takes a :class:`CodexContext` reader and puts it in that hook's place (tests,
set-ups without Codex: :class:`NoCodexContext`).
"""

from __future__ import annotations

from bridgehost.builtin.codex_sink import CodexContext, NoCodexContext

__all__ = ["CodexContext", "NoCodexContext"]
