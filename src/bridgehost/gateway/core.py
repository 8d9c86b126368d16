"""The gateway object graph: :class:`Gateway` holds every long-lived part.

Config, store, surface, calls, bridge hub, tunnel, backend and limiters; routes reach it as
``request.app[GATEWAY]`` (:mod:`bridgehost.gateway._keys`), and :mod:`bridgehost.gateway.app`
builds the aiohttp application around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web

from bridgehost.config import BridgeConfig, Secrets
from bridgehost.gateway.bridge_hub import BridgeHub
from bridgehost.gateway.call_notes import ChatNotes
from bridgehost.gateway.calls import CallManager
from bridgehost.gateway.delegations import Delegations
from bridgehost.gateway.ratelimit import (
    AuthFailures,
    MultiLimiter,
    MultiReservation,
    SlidingWindowLimiter,
)
from bridgehost.gateway.security import (
    bearer_token,
    client_address,
    is_loopback,
    is_trusted_proxy,
    secret_matches,
)
from bridgehost.gateway.session import CallSession
from bridgehost.gateway.surface import CallSurface
from bridgehost.providers import Backend, RealtimeBackend, Tunnel
from bridgehost.state import StatePaths, default_paths
from bridgehost.state.gateway_store import GatewayStore

PROXY_HEADERS = ("CF-Connecting-IP", "CF-Ray", "X-Forwarded-For", "X-Forwarded-Host", "Forwarded")


@dataclass
class Gateway:
    """Everything the gateway's routes work with."""

    config: BridgeConfig
    secrets: Secrets
    store: GatewayStore
    tunnel: Tunnel
    backend: Backend
    backend_record: RealtimeBackend
    """What the selected backend declared: its transport and capability flags."""
    paths: StatePaths
    tunnel_is_local_process: bool = False
    """The tunnel is the gateway's own child process (``TunnelMode.managed_process``): it
    connects from loopback, and its forwarded client addresses are trusted."""
    surface: CallSurface = field(init=False)
    hub: BridgeHub = field(init=False)
    calls: CallManager = field(init=False)
    delegations: Delegations = field(init=False)
    bootstrap_limits: MultiLimiter = field(init=False)
    miniapp_limits: MultiLimiter = field(init=False)
    auth_failures: AuthFailures = field(default_factory=AuthFailures)

    @property
    def transport(self) -> str:
        """``webrtc`` or ``relay``: how the selected backend carries audio."""
        return self.backend_record.transport

    def __post_init__(self) -> None:
        rt = self.config.realtime
        self.surface = CallSurface(self.config, self.store, self.tunnel)
        self.hub = BridgeHub(
            self.store,
            self.paths,
            max_message_bytes=rt.max_ws_message_bytes,
            authorize=self.is_control_request,
        )
        self.calls = CallManager(
            self.config, self.store, self.paths, self.surface, self.hub.forward
        )
        self.hub.on_hangup = self.hangup_from_bridge
        self.hub.on_note = ChatNotes(self.calls).take
        self.delegations = Delegations(
            self.calls, self.hub, timeout_s=rt.delegation_timeout_ms / 1000
        )
        self.calls.on_call_ending = self.delegations.call_ended
        self.calls.on_call_started = self._refund_started_call
        self.tunnel.on_url_change = self.surface.tunnel_url_changed
        window = timedelta(milliseconds=rt.bootstrap_rate_limit_window_ms).total_seconds()
        self.bootstrap_limits = MultiLimiter(
            {
                "address": SlidingWindowLimiter(window, rt.bootstrap_rate_limit_per_ip),
                "bridge": SlidingWindowLimiter(window, rt.bootstrap_rate_limit_per_bridge),
                "user": SlidingWindowLimiter(window, rt.bootstrap_rate_limit_per_user),
            }
        )
        self.miniapp_limits = MultiLimiter(
            {
                "address": SlidingWindowLimiter(window, rt.miniapp_rate_limit_per_ip),
                "token": SlidingWindowLimiter(window, rt.miniapp_rate_limit_per_token),
            }
        )

    @classmethod
    def create(
        cls,
        config: BridgeConfig,
        secrets: Secrets,
        *,
        tunnel: Tunnel,
        backend: Backend,
        backend_record: RealtimeBackend,
        tunnel_is_local_process: bool = False,
    ) -> Gateway:
        """Open the store under ``storage.root`` and assemble the gateway."""
        paths = default_paths(config.storage.root)
        store = GatewayStore.open(paths.gateway_db)
        return cls(
            config=config,
            secrets=secrets,
            store=store,
            tunnel=tunnel,
            backend=backend,
            backend_record=backend_record,
            paths=paths,
            tunnel_is_local_process=tunnel_is_local_process,
        )

    # -- request helpers -------------------------------------------------------------------

    def client_address(self, request: web.BaseRequest) -> str:
        """The caller's address; forwarded headers count only from trusted proxies."""
        return client_address(
            request,
            trusted_proxies=self.config.realtime.trusted_networks,
            trust_loopback=self.tunnel_is_local_process,
        )

    def is_trusted_proxy(self, peer: str) -> bool:
        """Whether a TCP peer is a proxy whose forwarded client addresses are believed."""
        return is_trusted_proxy(
            peer,
            trusted_proxies=self.config.realtime.trusted_networks,
            trust_loopback=self.tunnel_is_local_process,
        )

    def is_local_request(self, request: web.BaseRequest) -> bool:
        """From this machine and not relayed by a proxy or the tunnel."""
        if any(name in request.headers for name in PROXY_HEADERS):
            return False
        return is_loopback(request.remote)

    def is_control_request(self, request: web.BaseRequest) -> bool:
        """Local, and carrying the control secret as a Bearer token."""
        return self.is_local_request(request) and secret_matches(
            bearer_token(request), self.secrets.realtime_control_secret
        )

    def call_limits(self, session: CallSession) -> dict[str, Any]:
        """The limits the Mini App shows and enforces for a call."""
        rt = self.config.realtime
        return {
            "call_id": session.call_id,
            "transport": session.record.transport,
            "max_call_ms": session.max_call_ms,
            "idle_warning_ms": rt.idle_warning_ms,
            "idle_timeout_ms": rt.idle_timeout_ms,
            "startup_timeout_ms": rt.startup_timeout_ms,
            "finalize_grace_ms": rt.finalize_grace_ms,
        }

    def _refund_started_call(self, session: CallSession) -> None:
        """A call that really started is not an "attempt": give its rate-limit slots back, so
        several short calls in a row never lock the user out (the budget caps usage)."""
        if isinstance(session.rate_reservation, MultiReservation):
            self.bootstrap_limits.refund(session.rate_reservation)
            session.rate_reservation = None

    async def hangup_from_bridge(self, call_id: str | None, reason: str) -> None:
        """``/hangup`` from Telegram, through the control channel."""
        session = self.calls.current
        if session is not None and call_id in (None, session.call_id):
            await self.calls.request_end(session, reason, "telegram")

    def status_line(self) -> str:
        """The ``STATUS=`` line systemd shows."""
        session = self.calls.current
        if session is not None:
            return f"call {session.call_id} {session.record.status}"
        label = self.surface.label()
        bridges = "bridge connected" if self.hub.peers else "no bridge"
        if label == "disarmed":
            return f"disarmed; {bridges}"
        return f"armed at {self.surface.state.public_url}; {bridges}"


__all__ = ["PROXY_HEADERS", "Gateway"]
