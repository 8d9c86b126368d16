"""The ``managed-quick-cloudflared`` tunnel mode: the gateway runs a cloudflared quick tunnel.

``start()`` runs ``{tunnel_bin} tunnel --no-autoupdate --metrics 127.0.0.1:<port> --url
http://{gateway_host}:{gateway_port}`` as a child of the gateway, reads the
``https://<words>.trycloudflare.com`` origin from its log, waits until its metrics ``/ready``
says an edge connection is up, and then probes ``{origin}/healthz`` through the tunnel with
backoff (a new hostname often fails DNS for a while) — all within
``realtime.startup_timeout_ms``. A failure raises :class:`ProviderStartError` naming the fix and
starts a cooldown (longer when Cloudflare rate-limits quick tunnels); ``start()`` during a
cooldown says when to retry, and :meth:`ManagedQuickCloudflared.cooldown_status` says when it
ends. The cooldown is kept in ``{storage.root}/tunnel-cooldown.json``, so it survives a gateway
restart.

While running, a child that dies is restarted (a bounded number of times), and the gateway
hears the new origin — or ``None`` and the reason when it gives up — through
:attr:`ManagedQuickCloudflared.on_url_change`. The child gets the gateway's environment without
systemd's variables and dies with the gateway even on SIGKILL (see ``_cloudflared_process``).

Optional settings go in ``[plugins.managed-quick-cloudflared]`` (:class:`CloudflaredSettings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridgehost import hookimpl
from bridgehost.basics import lazy_exports
from bridgehost.builtin.cloudflared._settings import NAME, CloudflaredSettings, ProgressCallback
from bridgehost.providers import ProviderContext, TunnelMode, UrlChangeCallback

if TYPE_CHECKING:  # the tunnel loads when the gateway builds it (start-up time)
    from bridgehost.builtin.cloudflared._ready import ProbeFn
    from bridgehost.builtin.cloudflared._tunnel import ManagedQuickCloudflared

__all__ = [
    "NAME",
    "CloudflaredSettings",
    "ManagedQuickCloudflared",
    "ProbeFn",
    "ProgressCallback",
    "UrlChangeCallback",
    "bridgehost_register_tunnel_modes",
]


# The tunnel and its probes load on first use: registering the plugin (which every gateway start
# does, whichever tunnel mode is selected) needs neither.
__getattr__ = lazy_exports(__name__, {"ManagedQuickCloudflared": "._tunnel", "ProbeFn": "._ready"})


def managed_quick_cloudflared(context: ProviderContext) -> ManagedQuickCloudflared:
    """Build the tunnel (the factory of ``managed-quick-cloudflared``)."""
    from bridgehost.builtin.cloudflared._tunnel import ManagedQuickCloudflared

    return ManagedQuickCloudflared(context)


@hookimpl
def bridgehost_register_tunnel_modes() -> list[TunnelMode]:
    """Register ``managed-quick-cloudflared``: a cloudflared quick tunnel run by the gateway."""
    return [
        TunnelMode(
            name=NAME,
            description="the gateway runs a cloudflared quick tunnel (random trycloudflare.com "
            "origin; needs cloudflared on PATH or realtime.tunnel_bin)",
            settings_model=CloudflaredSettings,
            factory=managed_quick_cloudflared,
            managed_process=True,
        )
    ]
