"""What the bridge daemon's parts share: config, store, plugins, the control channel.

:class:`BridgeRuntime` is assembled by :func:`bridgehost.telegram.daemon.build_bridge` and
handed to the command handlers and the control channel. It answers the questions every part
asks: who owns the session and which thread is bound (read fresh, since ``bridgectl bind`` and
``claim`` write them from another process), and which call is live as far as the bridge knows.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bridgehost import __version__
from bridgehost.basics import utc_now
from bridgehost.config import BridgeConfig, LoadedConfig, Secrets
from bridgehost.plugins import PluginHost
from bridgehost.state.bridge_store import BridgeStore
from bridgehost.telegram.access import Access
from bridgehost.telegram.control_channel import ControlChannel
from bridgehost.telegram.handover import CallTracker, HandoffPipeline

LIVE_SLACK = timedelta(minutes=2)


@dataclass
class BridgeRuntime:
    """The daemon's shared parts. ``channel`` is None while ``realtime.enabled`` is false."""

    loaded: LoadedConfig
    store: BridgeStore
    host: PluginHost
    access: Access
    handoff: HandoffPipeline
    tracker: CallTracker
    channel: ControlChannel | None = None
    started_at: float = field(default_factory=time.monotonic)
    call_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    invites: Any = None
    """The invite desk (:class:`bridgehost.telegram.invites.InviteDesk`) once the daemon runs."""

    @property
    def config(self) -> BridgeConfig:
        """The validated configuration."""
        return self.loaded.config

    @property
    def secrets(self) -> Secrets:
        """The secrets."""
        return self.loaded.secrets

    @property
    def chat_id(self) -> int:
        """The one chat served (``build_bridge`` refuses to start without it)."""
        chat = self.config.telegram.authorized_chat_id
        assert chat is not None
        return chat

    @property
    def connected(self) -> bool:
        """The control channel is up."""
        return self.channel is not None and self.channel.connected

    def binding_view(self) -> dict[str, Any]:
        """``{"owner", "thread_id"}`` now: the runtime binding, else ``[codex] thread_id``."""
        binding = self.store.binding()
        return {
            "owner": binding.owner,
            "thread_id": binding.thread_id or self.config.codex.thread_id,
        }

    def bridge_view(self) -> dict[str, Any]:
        """The bridge's own view for :func:`bridgehost.readiness.evaluate`."""
        return {"connected": self.connected, **self.binding_view()}

    def current_call(self) -> dict[str, Any] | None:
        """The call the bridge believes is live (not ended, and young enough to be real)."""
        row = self.store.live_call()
        if row is None:
            return None
        rt = self.config.realtime
        longest = (
            timedelta(milliseconds=rt.launch_window_ms + rt.max_call_ms + rt.finalize_grace_ms)
            + LIVE_SLACK
        )
        try:
            created = datetime.fromisoformat(row["created_at"])
        except (TypeError, ValueError):
            return None
        return row if utc_now() - created <= longest else None

    def status(self) -> dict[str, Any]:
        """The ``status`` of ``bridge.hello`` / ``bridge.status``."""
        call = self.current_call()
        return {
            **self.binding_view(),
            "version": __version__,
            "call_id": call["call_id"] if call else None,
        }

    def status_line(self) -> str:
        """The ``STATUS=`` line systemd shows."""
        if not self.config.realtime.enabled:
            return "serving the bot; live calls disabled (realtime.enabled = false)"
        if self.channel is None or not self.channel.connected:
            why = self.channel.last_error if self.channel else None
            return f"waiting for gateway ({why})" if why else "waiting for gateway"
        call = self.current_call()
        if call is not None:
            return f"connected to gateway; call {call['call_id']} live"
        view = self.binding_view()
        if view["thread_id"]:
            line = f"connected to gateway; thread {view['thread_id']} bound"
        else:
            line = "connected to gateway; no thread bound (bridgectl bind --latest)"
        return line if view["owner"] == "telegram" else f"{line}; desktop owns the session"
