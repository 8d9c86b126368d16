"""The ``static-public-url`` tunnel mode: an origin you already operate forwards to the gateway.

Nothing is spawned. The origin comes from ``realtime.public_url`` (validated by the config: https
with no path, or plain http on a loopback address for local use), and health is a probe of its
``/healthz`` through that origin.
"""

from __future__ import annotations

from bridgehost import hookimpl
from bridgehost.builtin._probe import probe_public_origin
from bridgehost.providers import (
    Health,
    ProviderContext,
    ProviderStartError,
    TunnelMode,
    UrlChangeCallback,
)


class StaticPublicUrl:
    """A tunnel whose public origin is fixed by configuration."""

    def __init__(self, context: ProviderContext) -> None:
        self._configured = context.config.realtime.public_url.rstrip("/")
        self._started = False
        self.on_url_change: UrlChangeCallback | None = None  # a fixed origin never changes

    @property
    def public_url(self) -> str | None:
        """The configured origin once started."""
        return self._configured if self._started else None

    async def start(self) -> None:
        """Check that an origin is configured; there is nothing to spawn."""
        if not self._configured:
            raise ProviderStartError(
                "realtime.public_url is empty, so static-public-url has no origin to use",
                fix='set realtime.public_url = "https://your.host" or choose '
                'realtime.tunnel_mode = "managed-quick-cloudflared"',
            )
        self._started = True

    async def stop(self) -> None:
        """Forget the origin; nothing to stop."""
        self._started = False

    async def health(self) -> Health:
        """Probe ``{public_url}/healthz`` through the public origin."""
        if not self._configured:
            return Health(
                ok=False,
                detail="realtime.public_url is not set",
                fix='set realtime.public_url = "https://your.host"',
            )
        return await probe_public_origin(self._configured)


@hookimpl
def bridgehost_register_tunnel_modes() -> list[TunnelMode]:
    """Register ``static-public-url``."""
    return [
        TunnelMode(
            name="static-public-url",
            description="an origin you operate (realtime.public_url) forwards to the gateway",
            factory=StaticPublicUrl,
        )
    ]
