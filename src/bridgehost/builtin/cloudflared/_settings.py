"""Names, fix sentences and the ``[plugins.managed-quick-cloudflared]`` settings of the tunnel."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bridgehost.providers import ProviderStartError

NAME = "managed-quick-cloudflared"
"""The tunnel mode's name, as ``realtime.tunnel_mode`` selects it."""
INSTALL_URL = (
    "https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/"
)
STATIC_FIX = 'set realtime.tunnel_mode = "static-public-url" with realtime.public_url'
CONNECT_FIX = (
    f'UDP 7844 may be blocked: set protocol = "http2" under [plugins.{NAME}], or {STATIC_FIX}'
)

ProgressCallback = Callable[[str], None]
"""Hears one sentence per step of a start or restart ("waiting for … to answer")."""


class CloudflaredSettings(BaseModel):
    """``[plugins.managed-quick-cloudflared]``: optional tuning of the managed quick tunnel."""

    # Built when the config selects this tunnel mode and validates its table, not at
    # registration.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    protocol: Literal["auto", "quic", "http2"] = Field(
        "auto",
        description="The protocol cloudflared uses (its --protocol); http2 helps where UDP 7844 "
        "is blocked",
    )
    max_restarts: int = Field(
        3,
        ge=0,
        description="Automatic restarts allowed per restart_window_s",
        json_schema_extra={"unit": "count"},
    )
    restart_window_s: float = Field(
        600, gt=0, description="The window of the restart budget", json_schema_extra={"unit": "s"}
    )
    cooldown_s: float = Field(
        60, ge=0, description="Pause after a failed start", json_schema_extra={"unit": "s"}
    )
    rate_limit_cooldown_s: float = Field(
        600,
        ge=0,
        description="Pause after Cloudflare rate-limited quick tunnels (429/1015)",
        json_schema_extra={"unit": "s"},
    )
    probe_interval_s: float = Field(
        30,
        gt=0,
        description="The tunnel's health check re-probes the public origin at most this often",
        json_schema_extra={"unit": "s"},
    )
    stop_timeout_s: float = Field(
        5,
        gt=0,
        description="Grace after SIGTERM before SIGKILL when the tunnel stops",
        json_schema_extra={"unit": "s"},
    )


def resolve_binary(tunnel_bin: str) -> str:
    """The path of ``realtime.tunnel_bin`` (a name on PATH or a path), or a start error."""
    found = shutil.which(tunnel_bin)
    if found:
        return found
    problem = "is not executable" if os.path.isfile(tunnel_bin) else "not found"
    raise ProviderStartError(
        f"cloudflared {problem} at {tunnel_bin!r} (realtime.tunnel_bin); install it "
        f'({INSTALL_URL}) or set realtime.tunnel_mode = "static-public-url"',
        fix=f"install cloudflared on PATH (or point realtime.tunnel_bin at it), or {STATIC_FIX}",
    )
