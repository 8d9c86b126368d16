"""Is ``/call`` ready? One function, the same answer for ``/call``, ``/capabilities``,
``/call status`` and ``bridgectl capabilities``.

:func:`evaluate` turns what is known (config, secrets, the gateway's status, the bridge's own
view) into the prerequisites of a call, each as a :class:`~bridgehost.providers.CheckResult` with a
fix. :func:`gather` collects those inputs (asking the gateway's control API) and adds the
plugins' own readiness checks: the bridge's views and ``bridgectl`` both call it, with their own
timeouts and wording.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bridgehost.config import BridgeConfig, Secrets, credstore_hint
from bridgehost.cost import usd
from bridgehost.providers import CheckResult, ReadinessCheck

if TYPE_CHECKING:
    from bridgehost.gateway_api import GatewayApiError
    from bridgehost.plugins import PluginHost


@dataclass(frozen=True)
class Readiness:
    """Every check, and whether all that gate ``/call`` passed."""

    checks: list[CheckResult]
    informational: list[CheckResult] = field(default_factory=list)
    tunnel: dict[str, Any] | None = None
    """The tunnel's cooldown fields from the gateway (:data:`COOLDOWN_KEYS`), when it answered."""

    @property
    def ready(self) -> bool:
        """All gating checks passed."""
        return all(check.ok for check in self.checks)

    @property
    def first_failure(self) -> CheckResult | None:
        """The first gating check that failed, if any."""
        return next((check for check in self.checks if not check.ok), None)

    def to_json(self) -> dict[str, Any]:
        """``{"ready": bool, "checks": [{"name", "ok", "detail", "fix"}], "tunnel": {...}}``;
        ``tunnel`` holds the cooldown fields (``cooldown_until`` ISO 8601, ``cooldown_s``…, all
        null without a cooldown), or is null when the gateway did not answer."""
        return {
            "ready": self.ready,
            "checks": [_check_json(c) for c in [*self.checks, *self.informational]],
            "tunnel": self.tunnel,
        }


COOLDOWN_KEYS = ("cooldown_until", "cooldown_s", "cooldown_reason", "rate_limited")
"""The cooldown fields of the gateway's ``tunnel`` status (null when there is no cooldown)."""


def tunnel_cooldown(gateway: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The running tunnel cooldown from the gateway's status, or None."""
    tunnel = (gateway or {}).get("tunnel") or {}
    if not tunnel.get("cooldown_until"):
        return None
    return {key: tunnel.get(key) for key in COOLDOWN_KEYS}


def _clock_time(moment: Any) -> str:
    try:
        parsed = datetime.fromisoformat(str(moment))
    except ValueError:
        return str(moment)
    return parsed.astimezone(UTC).strftime("%H:%M UTC")


def cooldown_text(cooldown: Mapping[str, Any]) -> str:
    """``Tunnel cooling down after a Cloudflare rate limit until 14:05 UTC (412 s)``."""
    cause = (
        "a Cloudflare rate limit"
        if cooldown.get("rate_limited")
        else f"a failed start ({cooldown.get('cooldown_reason') or 'unknown'})"
    )
    return (
        f"Tunnel cooling down after {cause} until {_clock_time(cooldown.get('cooldown_until'))} "
        f"({int(cooldown.get('cooldown_s') or 0)} s)"
    )


def spend_text(budget: Mapping[str, Any]) -> str:
    """``$0.42 spent today of a $2.00 cap ($1.58 left)``, or ``$0.42 spent today (no cap)``."""
    spent = usd(float(budget.get("spent_usd") or 0))
    cap = budget.get("daily_cost_cap_usd")
    if cap is None:
        return f"{spent} spent today (no money cap)"
    text = f"{spent} spent today of a {usd(float(cap))} cap"
    if budget.get("cost_cap_reached"):
        return text + " — reached until midnight (realtime.max_daily_cost_usd)"
    return text + f" ({usd(float(budget.get('cost_left_usd') or 0))} left)"


def _check_json(check: CheckResult) -> dict[str, Any]:
    return {"name": check.name, "ok": check.ok, "detail": check.detail, "fix": check.fix}


def _secret(secrets: Secrets, name: str, why: str) -> CheckResult:
    if secrets.get(name) is not None:
        return CheckResult(name, True, f"present ({secrets.source(name)})")
    return CheckResult(
        name,
        False,
        f"missing: {why}",
        f"put {name}=… in .env beside bridge.config.toml, export it, or under systemd "
        + credstore_hint(name),
    )


def evaluate(
    config: BridgeConfig,
    secrets: Secrets,
    *,
    gateway: Mapping[str, Any] | None,
    gateway_error: str | None = None,
    bridge: Mapping[str, Any] | None = None,
    extra: Sequence[CheckResult] = (),
    provider_secrets: Sequence[tuple[str, str]] | None = None,
) -> Readiness:
    """The prerequisites of a call, in the order a person fixes them.

    :param gateway: the gateway's ``/control/status`` answer, or None when unreachable.
    :param gateway_error: why the gateway could not be asked.
    :param bridge: the bridge's own view ``{"connected", "owner", "thread_id"}``; when None it
        is taken from the gateway's list of connected bridges.
    :param extra: plugin checks; they gate ``/call`` too.
    :param provider_secrets: ``(name, why)`` of the secrets the selected providers declare for
        the gateway; by default read from the installed plugins.
    """
    rt = config.realtime
    checks = [
        CheckResult(
            "Realtime calls",
            rt.enabled,
            "enabled" if rt.enabled else "realtime.enabled is false",
            None
            if rt.enabled
            else "set enabled = true under [realtime] in "
            "bridge.config.toml and restart both services",
        ),
        _secret(secrets, "TELEGRAM_BOT_TOKEN", "the bot and the Mini App sign-in need it"),
        _secret(secrets, "REALTIME_CONTROL_SECRET", "the bridge's control channel needs it"),
    ]
    if provider_secrets is None:
        provider_secrets = selected_secrets(config)
    checks += [_secret(secrets, name, why) for name, why in provider_secrets]
    chat = config.telegram.authorized_chat_id
    checks.append(
        CheckResult(
            "Authorized chat",
            chat is not None,
            str(chat) if chat else "not set",
            None
            if chat
            else "send /start to the bot, run 'bridgectl telegram discover', and set "
            "authorized_chat_id under [telegram]",
        )
    )
    checks += _gateway_checks(config, gateway, gateway_error, bridge)
    cooldown = tunnel_cooldown(gateway)
    informational = (
        [
            CheckResult(
                "Tunnel cooldown",
                False,
                cooldown_text(cooldown) + "; arming waits until then",
                'wait, or set realtime.tunnel_mode = "static-public-url" with realtime.public_url',
            )
        ]
        if cooldown is not None
        else []
    )
    tunnel = None if gateway is None else {key: None for key in COOLDOWN_KEYS} | (cooldown or {})
    return Readiness(checks=[*checks, *extra], informational=informational, tunnel=tunnel)


def _gateway_checks(
    config: BridgeConfig,
    gateway: Mapping[str, Any] | None,
    gateway_error: str | None,
    bridge: Mapping[str, Any] | None,
) -> list[CheckResult]:
    if gateway is None:
        secret_problem = gateway_error is not None and "secret" in gateway_error.lower()
        connected = bool(bridge and bridge.get("connected"))
        return [
            CheckResult(
                "Gateway",
                False,
                gateway_error or "not answering",
                "use the same REALTIME_CONTROL_SECRET for bridge-gateway and this command"
                if secret_problem
                else "start it: systemctl start bridge-gateway (or bridgehost gateway)",
            ),
            CheckResult(
                "Control channel",
                connected,
                "bridge connected" if connected else "unknown: the gateway did not answer",
                None if connected else "fix the gateway first",
            ),
        ]
    bridge_id = config.realtime.bridge_id
    peer = next((b for b in gateway.get("bridges", []) if b.get("bridge_id") == bridge_id), None)
    view = dict(bridge) if bridge is not None else dict((peer or {}).get("status") or {})
    connected = bool(bridge.get("connected")) if bridge is not None else peer is not None
    surface = gateway.get("surface") or {}
    tunnel = gateway.get("tunnel") or {}
    budget = gateway.get("budget") or {}
    owner, thread = view.get("owner"), view.get("thread_id")
    armed = bool(surface.get("armed"))
    cap_s = int(budget.get("next_call_cap_ms", 0)) // 1000
    return [
        CheckResult("Gateway", True, "healthy"),
        CheckResult(
            "Control channel",
            connected,
            "bridge connected" if connected else "bridge not connected",
            None
            if connected
            else "start bridge-telegram (systemctl start "
            "bridge-telegram) with the same REALTIME_CONTROL_SECRET as the gateway",
        ),
        CheckResult(
            "Call surface",
            armed,
            f"armed at {surface.get('public_url')}"
            if armed
            else f"disarmed ({surface.get('last_disarm_reason') or 'never armed'})",
            None if armed else "run 'bridgectl call arm' (or send /call to arm it)",
        ),
        _origin_check(armed, tunnel),
        CheckResult(
            "Session owner",
            owner == "telegram",
            f"owned by {owner or 'unknown'}",
            None
            if owner == "telegram"
            else "run 'bridgectl claim' to hand the session to Telegram",
        ),
        CheckResult(
            "Bound Codex thread",
            bool(thread),
            str(thread) if thread else "none bound",
            None
            if thread
            else "run 'bridgectl threads', then 'bridgectl bind "
            "THREAD_ID' or 'bridgectl bind --latest'",
        ),
        _budget_check(budget, cap_s),
        CheckResult(
            "Live call",
            gateway.get("call") is None,
            "none running" if gateway.get("call") is None else "a call is running",
            None if gateway.get("call") is None else "hang it up first: /hangup",
        ),
    ]


def _budget_check(budget: Mapping[str, Any], cap_s: int) -> CheckResult:
    """Time left today, and the spend against the money cap when one is set."""
    detail = (
        f"{int(budget.get('used_ms', 0)) // 1000}s used today, next call capped at {cap_s}s; "
        + spend_text(budget)
    )
    if cap_s <= 0:
        fix = "the daily budget is used up; it resets at midnight (realtime.max_daily_call_ms)"
    elif budget.get("cost_cap_reached"):
        fix = (
            "today's spending cap is reached; it resets at midnight, or raise "
            "realtime.max_daily_cost_usd"
        )
    else:
        return CheckResult("Call budget", True, detail)
    return CheckResult("Call budget", False, detail, fix)


def _origin_check(armed: bool, tunnel: Mapping[str, Any]) -> CheckResult:
    if not armed:
        return CheckResult(
            "Public Mini App origin",
            False,
            "not up: the call surface is disarmed",
            "arm it: 'bridgectl call arm' (or send /call)",
        )
    ok = bool(tunnel.get("ok"))
    return CheckResult(
        "Public Mini App origin",
        ok,
        str(tunnel.get("detail") or "unknown"),
        None if ok else tunnel.get("fix") or "check the tunnel with 'bridgectl call status'",
    )


def selected_secrets(config: BridgeConfig) -> list[tuple[str, str]]:
    """``(name, why)`` of each secret the providers ``config`` selects need in the gateway."""
    from bridgehost.plugins import PluginHost

    return PluginHost.for_config(config).secret_needs(config, "gateway")


PLUGINS_UNLOADABLE_FIX = "run 'bridgectl plugins' to see which plugin fails"


async def plugin_checks(
    config: BridgeConfig,
    *,
    host: PluginHost | None = None,
    timeout_s: float | None = None,
    failed_wording: str = "check raised",
) -> list[CheckResult]:
    """Run every plugin's readiness checks at once, each within ``timeout_s`` (None: no bound).

    A check that raises or hangs becomes a failed check (``"{failed_wording} {exc!r}"``); a
    plugin host that cannot load (``host`` None: loaded from ``config``) becomes one failed
    ``Plugins`` check.
    """
    if host is None:
        from bridgehost.plugins import PluginHost

        try:
            host = PluginHost.for_config(config)
        except Exception as exc:  # a broken plugin must not hide the built-in checks
            return [
                CheckResult(
                    "Plugins", False, f"loading plugins failed: {exc}", PLUGINS_UNLOADABLE_FIX
                )
            ]

    async def run(plugin: str, check: ReadinessCheck) -> CheckResult:
        try:
            async with asyncio.timeout(timeout_s):
                return await check.run()
        except Exception as exc:  # a plugin's bug or hang must not hide the other checks
            return CheckResult(
                check.name,
                False,
                f"{failed_wording} {exc!r}",
                f"report this to the author of plugin {plugin}",
            )

    return list(await asyncio.gather(*(run(p, c) for p, c in host.readiness_checks(config))))


@dataclass(frozen=True)
class Gathered:
    """What :func:`gather` found: the readiness, and the gateway's status or why it is missing."""

    readiness: Readiness
    gateway: dict[str, Any] | None
    gateway_error: GatewayApiError | None


BridgeView = Mapping[str, Any] | Callable[[Mapping[str, Any] | None], Mapping[str, Any]]
"""The bridge's own view, or a function of the gateway's status (None if it did not answer)
that gives it."""


async def gather(
    config: BridgeConfig,
    secrets: Secrets,
    *,
    bridge: BridgeView | None = None,
    host: PluginHost | None = None,
    ask_gateway: bool = True,
    status_timeout_s: float | None = None,
    check_timeout_s: float | None = None,
    check_failed_wording: str = "check raised",
) -> Gathered:
    """Ask the gateway (unless not ``ask_gateway``) and the plugins, then :func:`evaluate`.

    :param bridge: the bridge's view, or a function of the gateway's status giving it.
    :param host: the plugin host whose readiness checks run (default: loaded from ``config``).
    :param status_timeout_s: the control API client's timeout; the whole status request gets
        twice that (None: the client's default, unbounded overall).
    :param check_timeout_s: each plugin check's bound (None: unbounded).
    :param check_failed_wording: the detail's start for a check that raised.
    """
    from bridgehost.gateway_api import DEFAULT_TIMEOUT_S, GatewayApi, GatewayApiError

    status: dict[str, Any] | None = None
    error: GatewayApiError | None = None
    if ask_gateway:
        client_timeout = DEFAULT_TIMEOUT_S if status_timeout_s is None else status_timeout_s
        overall = None if status_timeout_s is None else status_timeout_s * 2
        try:
            async with GatewayApi(config, secrets, timeout_s=client_timeout) as api:
                async with asyncio.timeout(overall):
                    status = await api.status()
        except GatewayApiError as exc:
            error = exc
        except TimeoutError:
            error = GatewayApiError("The gateway did not answer in time.")
    view = bridge(status) if callable(bridge) else bridge
    readiness = evaluate(
        config,
        secrets,
        gateway=status,
        gateway_error=str(error) if error else None,
        bridge=view,
        extra=await plugin_checks(
            config, host=host, timeout_s=check_timeout_s, failed_wording=check_failed_wording
        ),
    )
    return Gathered(readiness, status, error)
