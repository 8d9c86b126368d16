"""``[gateway]``: how long the gateway waits for a request, and how many connections one address
may hold open."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from bridgehost.config._fields import setting


class GatewayConfig(BaseModel):
    """``[gateway]``: deadlines for incoming requests and per-address connection caps.

    A connection whose request headers are not complete within ``header_timeout_s``, or whose
    body sends nothing for ``body_timeout_s``, is closed (with a 408 when one can still be sent).
    One address may hold ``max_connections_per_ip`` connections at once; a trusted proxy (the
    managed tunnel, ``realtime.trusted_proxies``) may hold ``max_connections_per_proxy``, and the
    requests it forwards count per forwarded client address against ``max_connections_per_ip``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    header_timeout_s: float = setting(
        15.0,
        "Time a client has to send a request's headers, counted from its first byte (or from "
        "the moment it connects); later, the connection is closed with a 408",
        unit="s",
        strict=True,
        gt=0,
    )
    body_timeout_s: float = setting(
        15.0,
        "Longest pause within a request body; a body that sends nothing for this long is "
        "answered with a 408 and its connection closed",
        unit="s",
        strict=True,
        gt=0,
    )
    max_connections_per_ip: int = setting(
        32,
        "Connections one client address may hold open at once; more are refused (a 429, then "
        "closed). Behind a trusted proxy, the limit on concurrent requests per forwarded "
        "client address",
        unit="count",
        strict=True,
        ge=1,
    )
    max_connections_per_proxy: int = setting(
        256,
        "Connections one trusted proxy (the managed tunnel, realtime.trusted_proxies) may hold "
        "open at once; never more than half of the process's open-file limit (LimitNOFILE= "
        "in bridge-gateway.service)",
        unit="count",
        strict=True,
        ge=1,
    )


__all__ = ["GatewayConfig"]
