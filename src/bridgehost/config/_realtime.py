"""``[realtime]``: the live-call surface, the gateway and the realtime backend."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator, model_validator

from bridgehost.config._fields import origin_problem, setting, split_url
from bridgehost.config._problems import CrossFieldError, FieldProblem, Issue
from bridgehost.config._removed import drop_removed

MANAGED_TUNNEL = "managed-quick-cloudflared"
"""Tunnel mode that starts a short-lived cloudflared quick tunnel (default without public_url)."""
STATIC_TUNNEL = "static-public-url"
"""Tunnel mode that serves a fixed, operator-managed public origin (default with public_url)."""

BRIDGE_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

_NON_BLANK = (
    "bridge_id",
    "tunnel_bin",
    "gateway_host",
    "model",
    "transcription_model",
    "voice",
    "summary_model",
    "backend",
)


def _network(value: str) -> str:
    """Validate one ``trusted_proxies`` entry (an IP address or CIDR network); normalize it."""
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise FieldProblem(
            f"{value!r} is not an IP address or CIDR network",
            'use entries like "127.0.0.1", "::1" or "10.0.0.0/8"',
        ) from None


ProxyEntry = Annotated[str, AfterValidator(_network)]


class RealtimeConfig(BaseModel):
    """``[realtime]``: the live-call surface: tunnel, gateway, model, timers, limits.

    Cross-field rules (all reported at once): ``idle_warning_ms < idle_timeout_ms <= max_call_ms
    <= max_daily_call_ms``; ``static-public-url`` needs an https origin in ``public_url`` (plain
    http only on loopback); ``managed-quick-cloudflared`` needs ``public_url`` empty;
    ``control_url`` must be ``ws://`` or ``wss://``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = setting(
        False,
        "Master switch for live calls; when false every call path refuses and the bridge "
        "never connects to the gateway",
        strict=True,
    )
    bridge_id: str = setting(
        "bridge",
        "Identity of this bridge on the control channel, in launch URLs, token binding "
        "and rate-limit keys; 1-64 characters of A-Z a-z 0-9 _ . -",
    )
    public_url: str = setting(
        "",
        'Public Mini App origin for tunnel_mode "static-public-url": https://host[:port], no '
        "path or query (plain http only on 127.0.0.1, ::1 or localhost); trailing slash "
        "stripped. Leave it empty for the managed cloudflared tunnel",
        unit="URL",
        default_text='"" (empty)',
    )
    control_url: str = setting(
        "",
        "Override for the bridge's control-channel URL (ws:// or wss://); empty means "
        "ws://<gateway_host>:<gateway_port>/ws/bridge",
        unit="URL",
        default_text='"" (empty)',
    )
    tunnel_mode: str | None = setting(
        None,
        'Tunnel provider that gives the gateway its public origin: "managed-quick-cloudflared", '
        '"static-public-url", or a plugin\'s mode (`bridgectl plugins` lists them)',
        default_text='derived: "static-public-url" if public_url is set, else '
        '"managed-quick-cloudflared"',
        examples=["managed-quick-cloudflared"],
    )
    tunnel_bin: str = setting(
        "cloudflared",
        "Executable for managed quick tunnels (name on PATH or absolute path)",
        unit="path",
    )
    gateway_host: str = setting(
        "127.0.0.1",
        "Gateway bind host; also the tunnel's target and the local health URL host",
    )
    gateway_port: int = setting(
        8890,
        "Gateway bind port",
        unit="TCP port 1-65535",
        strict=True,
        ge=1,
        le=65535,
    )
    backend: str = setting(
        "openai",
        'Realtime backend provider: "openai", "echo" (offline test backend), or a plugin\'s '
        "(`bridgectl plugins` lists them)",
    )
    model: str = setting(
        "gpt-realtime-2.1",
        "Realtime voice model for the backend session (gpt-realtime and its "
        "dated snapshots have an announced shutdown on 2027-01-20)",
    )
    transcription_model: str = setting(
        "gpt-transcribe",
        "Input-audio transcription model (the user's side of the transcript)",
    )
    voice: str = setting(
        "marin", "Output voice of the realtime model (OpenAI recommends marin or cedar)"
    )
    summary_model: str = setting(
        "gpt-5.4-mini",
        "Responses-API model that writes the post-call summary",
    )
    startup_timeout_ms: int = setting(
        45000,
        "Time allowed from browser auth to call.started; basis for the prepare and "
        "context-build waits",
        unit="ms",
        strict=True,
        gt=0,
    )
    idle_warning_ms: int = setting(
        120000,
        "Silence before the page warns that the call will end (less than idle_timeout_ms)",
        unit="ms",
        strict=True,
        gt=0,
    )
    idle_timeout_ms: int = setting(
        300000,
        "Silence before the call is hung up, measured from the same activity as the "
        "warning (at most max_call_ms)",
        unit="ms",
        strict=True,
        gt=0,
    )
    delegation_timeout_ms: int = setting(
        120000,
        "How long the voice model waits for Codex to answer a question delegated during a "
        "call; after that it says the question could not be answered",
        unit="ms",
        strict=True,
        gt=0,
    )
    auto_disarm_idle_ms: int = setting(
        300000,
        "The armed call surface disarms after this long without activity",
        unit="ms",
        strict=True,
        gt=0,
    )
    launch_token_ttl_ms: int = setting(
        600000,
        "Lifetime of a launch token from when it is minted",
        unit="ms",
        strict=True,
        gt=0,
    )
    launch_window_ms: int = setting(
        60000,
        "Time from bootstrap to the browser's media connection before the prepared call "
        "is dropped (at least 5000)",
        unit="ms",
        strict=True,
        ge=5000,
    )
    init_data_max_age_ms: int = setting(
        300000,
        "Maximum age of Telegram Mini App init data (auth_date); future dates are refused",
        unit="ms",
        strict=True,
        gt=0,
    )
    finalize_grace_ms: int = setting(
        4000,
        "Wait for final transcript events after a call is ended before writing call.ended",
        unit="ms",
        strict=True,
        gt=0,
    )
    reconnect_grace_ms: int = setting(
        8000,
        "How long a call survives a dropped Mini App call socket (then it ends with "
        "browser_disconnect) or dropped WebRTC audio (then network_lost), waiting for the "
        "page to reconnect",
        unit="ms",
        strict=True,
        gt=0,
    )
    bootstrap_rate_limit_window_ms: int = setting(
        600000,
        "Rolling window of the bootstrap and Mini App rate limits",
        unit="ms",
        strict=True,
        gt=0,
    )
    bootstrap_rate_limit_per_ip: int = setting(
        5,
        "Call bootstraps allowed per client address per window (the address comes from "
        "forwarded headers only behind a trusted proxy)",
        unit="count",
        strict=True,
        gt=0,
    )
    bootstrap_rate_limit_per_bridge: int = setting(
        10,
        "Call bootstraps allowed per bridge_id per window",
        unit="count",
        strict=True,
        gt=0,
    )
    bootstrap_rate_limit_per_user: int = setting(
        3,
        "Call bootstraps allowed per Telegram user per window",
        unit="count",
        strict=True,
        gt=0,
    )
    miniapp_rate_limit_per_ip: int = setting(
        15,
        "Mini App page loads allowed per client address per window",
        unit="count",
        strict=True,
        gt=0,
    )
    miniapp_rate_limit_per_token: int = setting(
        20,
        "Mini App page loads allowed per launch token per window",
        unit="count",
        strict=True,
        gt=0,
    )
    trusted_proxies: list[ProxyEntry] = setting(
        [],
        "Peers (IP addresses or CIDR networks) whose CF-Connecting-IP / X-Forwarded-For "
        'headers are believed, e.g. ["127.0.0.1", "10.0.0.0/8"]; the managed tunnel is '
        "always trusted",
        default_text="[] (none)",
    )
    max_body_bytes: int = setting(
        65536,
        "Largest HTTP request body the gateway accepts (413 beyond)",
        unit="bytes",
        strict=True,
        gt=0,
    )
    max_ws_message_bytes: int = setting(
        262144,
        "Largest WebSocket message the gateway accepts",
        unit="bytes",
        strict=True,
        gt=0,
    )
    max_call_ms: int = setting(
        600000,
        "Hard cap on one call's duration, enforced by the gateway; at most max_daily_call_ms",
        unit="ms",
        default_text="600000 (10 minutes)",
        strict=True,
        gt=0,
    )
    max_daily_call_ms: int = setting(
        1800000,
        "Cap on total call time per local calendar day",
        unit="ms",
        default_text="1800000 (30 minutes)",
        strict=True,
        gt=0,
    )
    max_daily_cost_usd: float | None = setting(
        None,
        "Cap on the estimated spend per local calendar day, priced at [handoff.prices]; "
        "a new call is refused once it is reached, and a running call ends (reason "
        "daily_cost_cap) when it is",
        unit="USD",
        default_text="unset (no money cap)",
        examples=[2.0],
        strict=True,
        gt=0,
        allow_inf_nan=False,
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_removed(cls, data: Any) -> Any:
        """Accept and drop keys that no longer do anything (``config._removed``)."""
        return drop_removed("realtime", data)

    @field_validator(*_NON_BLANK, mode="after")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise FieldProblem("must not be empty", "remove the line to use the default")
        return value

    @field_validator("bridge_id", mode="after")
    @classmethod
    def _bridge_id(cls, value: str) -> str:
        if not BRIDGE_ID_RE.fullmatch(value):
            raise FieldProblem(
                f"{value!r} is not a valid bridge id",
                "use 1-64 characters from A-Z, a-z, 0-9, '_', '.', '-'",
            )
        return value

    @field_validator("public_url", "control_url", mode="after")
    @classmethod
    def _strip_url(cls, value: str) -> str:
        return value.strip().rstrip("/")

    @field_validator("tunnel_mode", mode="after")
    @classmethod
    def _tunnel_mode(cls, value: str | None) -> str | None:
        return (value.strip() or None) if value is not None else None

    @property
    def effective_tunnel_mode(self) -> str:
        """``tunnel_mode`` if set, else derived from ``public_url``."""
        if self.tunnel_mode:
            return self.tunnel_mode
        return STATIC_TUNNEL if self.public_url else MANAGED_TUNNEL

    @property
    def effective_control_url(self) -> str:
        """``control_url`` if set, else the gateway's local ``/ws/bridge`` URL."""
        if self.control_url:
            return self.control_url
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
            self.gateway_host, self.gateway_host
        )
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"ws://{host}:{self.gateway_port}/ws/bridge"

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """``trusted_proxies`` parsed into networks (single addresses become /32 or /128)."""
        return tuple(ipaddress.ip_network(entry) for entry in self.trusted_proxies)

    @model_validator(mode="after")
    def _cross_field(self) -> RealtimeConfig:
        issues = [*self._duration_issues(), *self._url_issues()]
        if issues:
            raise CrossFieldError(issues)
        return self

    def _duration_issues(self) -> list[Issue]:
        issues: list[Issue] = []
        chain: list[tuple[str, str, str, Callable[[int, int], bool]]] = [
            ("idle_warning_ms", "idle_timeout_ms", "less than", lambda a, b: a < b),
            ("idle_timeout_ms", "max_call_ms", "at most", lambda a, b: a <= b),
            ("max_call_ms", "max_daily_call_ms", "at most", lambda a, b: a <= b),
        ]
        for low, high, relation, ok in chain:
            a, b = getattr(self, low), getattr(self, high)
            if not ok(a, b):
                issues.append(
                    Issue(
                        (low, high),
                        f"realtime.{low} ({a}) must be {relation} realtime.{high} ({b})",
                        f"lower realtime.{low} or raise realtime.{high}",
                    )
                )
        return issues

    def _url_issues(self) -> list[Issue]:
        issues: list[Issue] = []
        mode, url = self.effective_tunnel_mode, self.public_url
        example = '"https://bridge.example.com"'
        if mode == STATIC_TUNNEL and not url:
            issues.append(
                Issue(
                    ("public_url", "tunnel_mode"),
                    'realtime.tunnel_mode = "static-public-url" needs realtime.public_url',
                    f"set realtime.public_url to your public https origin, e.g. {example}, "
                    "or remove realtime.tunnel_mode to use the managed cloudflared tunnel",
                )
            )
        elif mode == MANAGED_TUNNEL and url:
            issues.append(
                Issue(
                    ("public_url", "tunnel_mode"),
                    f'realtime.tunnel_mode = "{MANAGED_TUNNEL}" picks its own public origin, so '
                    f"realtime.public_url must be empty (got {url!r})",
                    'remove realtime.public_url, or set realtime.tunnel_mode = "static-public-url"',
                )
            )
        elif url and (reason := origin_problem(url)):
            issues.append(
                Issue(
                    ("public_url",),
                    f"realtime.public_url {url!r} {reason}",
                    f"use an origin such as {example} (http only for 127.0.0.1/::1/localhost)",
                )
            )
        if self.control_url:
            parts, reason = split_url(self.control_url)
            if parts is None or parts.scheme.lower() not in ("ws", "wss"):
                issues.append(
                    Issue(
                        ("control_url",),
                        f"realtime.control_url must be a ws:// or wss:// URL "
                        f"(got {self.control_url!r}{'; it ' + reason if reason else ''})",
                        "remove it to use ws://<gateway_host>:<gateway_port>/ws/bridge",
                    )
                )
        return issues


__all__ = [
    "MANAGED_TUNNEL",
    "STATIC_TUNNEL",
    "RealtimeConfig",
]
