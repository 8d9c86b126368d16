"""Probe a public origin's ``/healthz``: shared by the tunnel modes."""

from __future__ import annotations

import aiohttp

from bridgehost.basics import utc_now
from bridgehost.providers import Health

PROBE_TIMEOUT_S = 1.5


async def probe_public_origin(public_url: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> Health:
    """GET ``{public_url}/healthz`` once and say whether the gateway answered through it."""
    url = f"{public_url}/healthz"
    now = utc_now()
    try:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
            body = await resp.json(content_type=None) if resp.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        reason = type(exc).__name__ if isinstance(exc, TimeoutError) else str(exc)
        return Health(
            ok=False,
            detail=f"public origin {public_url} did not answer /healthz ({reason or 'timeout'})",
            fix="check that the public origin forwards to the gateway and the gateway is running",
            checked_at=now,
        )
    if not (isinstance(body, dict) and body.get("ok") is True):
        return Health(
            ok=False,
            detail=f"public origin {public_url} answered /healthz with HTTP {resp.status}, "
            "not the gateway's health answer",
            fix="point realtime.public_url at the origin that forwards to bridgehost gateway",
            checked_at=now,
        )
    return Health(ok=True, detail=f"public origin {public_url} reaches the gateway", checked_at=now)
