"""The call surface: armed or not, the public origin, and the one outstanding launch token.

The gateway is the single owner of this state. Arming starts the selected tunnel, waits until the
public origin answers ``/healthz``, and mints a launch token; disarming stops the tunnel and
forgets the token, remembering why. The token is stored only as a hash. While arming waits (for the
tunnel, the public origin, or another arm), it says so at least every
:data:`~bridgehost.gateway_api.ARM_KEEPALIVE_S` seconds, so a client reading the progress stream
never sits in silence for up to ``realtime.startup_timeout_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from bridgehost.basics import iso, utc_now
from bridgehost.config import BridgeConfig
from bridgehost.gateway._arm_progress import ArmProgress, Progress
from bridgehost.gateway.domain_errors import DomainError, PublicUnreachable, TunnelFailed
from bridgehost.gateway_api import ARM_KEEPALIVE_S
from bridgehost.providers import Health, ProviderStartError, Tunnel
from bridgehost.state.gateway_store import GatewayStore

log = structlog.get_logger("bridgehost.gateway.surface")


class TokenStatus(enum.StrEnum):
    """How a presented launch token compares with the outstanding one."""

    VALID = "valid"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class SurfaceState:
    """What is persisted about the surface."""

    armed: bool = False
    armed_at: str | None = None
    armed_by: str | None = None
    public_url: str | None = None
    last_activity_at: str | None = None
    token_hash: str | None = None
    token_expires_at: str | None = None
    token_consumed: bool = False
    last_disarm_reason: str | None = None
    last_disarm_at: str | None = None
    last_probe: dict[str, Any] | None = None
    recent_events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ArmResult:
    """What ``arm`` returns: the shape of ``bridgectl call arm --json``."""

    launch_url: str
    public_url: str
    expires_at: str

    def to_json(self) -> dict[str, Any]:
        """``{"armed": true, "launch_url", "public_url", "expires_at"}``."""
        return {"armed": True, **asdict(self)}


class CallSurface:
    """Arm, disarm, launch tokens and auto-disarm, persisted in the gateway store."""

    def __init__(
        self,
        config: BridgeConfig,
        store: GatewayStore,
        tunnel: Tunnel,
        *,
        probe_interval_s: float = 0.5,
        keepalive_s: float = ARM_KEEPALIVE_S,
    ) -> None:
        self.config = config
        self.store = store
        self.tunnel = tunnel
        self.probe_interval_s = probe_interval_s
        self.keepalive_s = keepalive_s
        saved = store.load_surface() or {}
        known = SurfaceState.__dataclass_fields__
        self.state = SurfaceState(**{k: v for k, v in saved.items() if k in known})
        self._lock = asyncio.Lock()

    # -- persistence -------------------------------------------------------------------

    def _save(self) -> None:
        self.store.save_surface(asdict(self.state))

    def _event(self, action: str, outcome: str, detail: str, source: str) -> None:
        entry = {
            "at": iso(utc_now()),
            "action": action,
            "outcome": outcome,
            "detail": detail,
            "source": source,
        }
        self.state.recent_events = [*self.state.recent_events, entry][-10:]

    # -- arming ------------------------------------------------------------------------

    async def arm(self, source: str, progress: Progress | None = None) -> ArmResult:
        """Start the tunnel, wait for the public origin, mint a fresh launch token.

        :param source: who asked (``bridgectl``, ``telegram``…): ``armed_by`` in the status.
        :param progress: called with each progress line, and with a keep-alive line at least
            every ``keepalive_s`` while arming waits.
        """
        steps = ArmProgress(progress or (lambda _text: None), self.keepalive_s)
        keeping_alive = steps.keeping_alive() if progress else contextlib.nullcontext()
        async with keeping_alive:
            steps.waiting_for("another arm to finish")
            async with self._lock:
                return await self._arm_locked(source, steps)

    async def _arm_locked(self, source: str, steps: ArmProgress) -> ArmResult:
        try:
            public_url = await self._bring_up_tunnel(steps)
            steps.tell(f"waiting for {public_url}/healthz to answer through the public origin")
            steps.waiting_for(f"{public_url}/healthz")
            await self._wait_public(public_url)
        except DomainError as exc:
            self._event("arm", "error", exc.message, source)
            self._save()
            raise
        steps.waiting_for(None)
        token = self._mint(public_url, source)
        self._event("arm", "ok", f"armed at {public_url}", source)
        self._save()
        steps.tell("armed")
        log.info("surface armed", public_url=public_url, source=source)
        return ArmResult(
            launch_url=self.launch_url(token),
            public_url=public_url,
            expires_at=self.state.token_expires_at or "",
        )

    async def _bring_up_tunnel(self, steps: ArmProgress) -> str:
        steps.waiting_for(None)
        if self.tunnel.public_url is None:
            mode = self.config.realtime.effective_tunnel_mode
            steps.tell(f"starting tunnel ({mode})")
            steps.waiting_for(f"the {mode} tunnel to start")
            try:
                await self.tunnel.start()
            except ProviderStartError as exc:
                raise TunnelFailed(
                    f"The tunnel did not start: {exc}" + (f" Fix: {exc.fix}" if exc.fix else ""),
                ) from exc
        public_url = self.tunnel.public_url
        if public_url is None:
            raise TunnelFailed("The tunnel started but has no public URL.")
        return public_url

    async def _wait_public(self, public_url: str) -> None:
        deadline = time.monotonic() + self.config.realtime.startup_timeout_ms / 1000
        health = Health(ok=False, detail="not probed yet")
        while True:
            health = await self.tunnel.health()
            self.state.last_probe = {
                "ok": health.ok,
                "detail": health.detail,
                "at": iso(health.checked_at or utc_now()),
            }
            if health.ok or time.monotonic() >= deadline:
                break
            await asyncio.sleep(self.probe_interval_s)
        if not health.ok:
            raise PublicUnreachable(
                f"The public Mini App origin {public_url} did not answer in time: "
                f"{health.detail}. {health.fix or 'Check the tunnel and try call arm again.'}",
            )

    def _mint(self, public_url: str, source: str) -> str:
        token = secrets.token_urlsafe(24)
        now = utc_now()
        ttl = timedelta(milliseconds=self.config.realtime.launch_token_ttl_ms)
        self.state.armed = True
        self.state.armed_at = self.state.armed_at if self.state.armed_at else iso(now)
        self.state.armed_by = source
        self.state.public_url = public_url
        self.state.last_activity_at = iso(now)
        self.state.token_hash = _hash(token)
        self.state.token_expires_at = iso(now + ttl)
        self.state.token_consumed = False
        self.state.last_disarm_reason = None
        return token

    def launch_url(self, token: str) -> str:
        """The Mini App URL for a token."""
        return f"{self.state.public_url}/miniapp?launch={token}"

    async def disarm(self, reason: str, source: str) -> None:
        """Stop the tunnel, forget the token, remember why."""
        async with self._lock:
            await self._disarm_locked(reason, source)

    async def _disarm_locked(self, reason: str, source: str) -> None:
        try:
            await self.tunnel.stop()
        except Exception as exc:  # stopping must always complete the disarm
            log.warning("tunnel stop failed", error=str(exc))
        was_armed = self.state.armed
        self.state = SurfaceState(
            last_disarm_reason=reason,
            last_disarm_at=iso(utc_now()),
            last_probe=self.state.last_probe,
            recent_events=self.state.recent_events,
        )
        self._event("disarm", "ok", reason, source)
        self._save()
        if was_armed:
            log.info("surface disarmed", reason=reason, source=source)

    async def tunnel_url_changed(self, new_url: str | None, reason: str) -> None:
        """The tunnel restarted (new origin: re-arm with a fresh token) or gave up (disarm)."""
        if not self.state.armed:
            return
        if new_url is None:
            await self.disarm(f"tunnel_lost: {reason}"[:64], "tunnel")
            return
        async with self._lock:
            self._mint(new_url, "tunnel")
            self._event("arm", "ok", f"re-armed at {new_url} after {reason}"[:200], "tunnel")
            self._save()
        log.warning("surface re-armed on a new public origin", public_url=new_url, reason=reason)

    # -- tokens ------------------------------------------------------------------------

    def check_token(self, token: str | None) -> TokenStatus:
        """Compare a presented token with the outstanding one (constant time)."""
        stored = self.state.token_hash
        if not (self.state.armed and stored and token and not self.state.token_consumed):
            return TokenStatus.UNKNOWN
        if not secrets.compare_digest(_hash(token), stored):
            return TokenStatus.UNKNOWN
        expires = datetime.fromisoformat(self.state.token_expires_at or "")
        return TokenStatus.VALID if utc_now() < expires else TokenStatus.EXPIRED

    def consume_token(self) -> None:
        """The call started: the invite cannot start another call."""
        self.state.token_consumed = True
        self.touch()

    def touch(self) -> None:
        """Record activity: pushes back auto-disarm."""
        self.state.last_activity_at = iso(utc_now())
        self._save()

    def token_outstanding(self) -> bool:
        """An unexpired, unconsumed invite exists."""
        if not (self.state.token_hash and not self.state.token_consumed):
            return False
        return utc_now() < datetime.fromisoformat(self.state.token_expires_at or "")

    async def auto_disarm_if_idle(self, *, call_active: bool) -> bool:
        """Disarm when armed, no call, no outstanding invite and idle past the limit."""
        if not self.state.armed or call_active or self.token_outstanding():
            return False
        last = datetime.fromisoformat(self.state.last_activity_at or iso(utc_now()) or "")
        idle = timedelta(milliseconds=self.config.realtime.auto_disarm_idle_ms)
        if utc_now() - last < idle:
            return False
        async with self._lock:
            await self._disarm_locked("idle", "gateway")
        return True

    def snapshot(self) -> dict[str, Any]:
        """The surface for status output (no token material)."""
        state = asdict(self.state)
        state.pop("token_hash")
        state["launch_token_ready"] = self.token_outstanding()
        state["tunnel_mode"] = self.config.realtime.effective_tunnel_mode
        state["status"] = self.label()
        return state

    def label(self) -> str:
        """``disarmed``, ``ready`` (invite outstanding) or ``armed`` (no invite)."""
        if not self.state.armed:
            return "disarmed"
        return "ready" if self.token_outstanding() else "armed"
