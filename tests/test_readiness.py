"""Readiness lines for the tunnel cooldown and the spend, and the capabilities JSON shape."""

from __future__ import annotations

from typing import Any

from bridgehost.config import Secrets, validate_config
from bridgehost.readiness import cooldown_text, evaluate, spend_text, tunnel_cooldown

NO_COOLDOWN = {"cooldown_until": None, "cooldown_s": None, "cooldown_reason": None}


def status(tunnel: dict[str, Any] | None = None, **budget: Any) -> dict[str, Any]:
    """A gateway status: armed, healthy, bridge connected, with this tunnel and budget."""
    return {
        "surface": {"armed": True, "public_url": "https://a.trycloudflare.com"},
        "tunnel": {"ok": True, "detail": "up", **NO_COOLDOWN, **(tunnel or {})},
        "bridges": [{"bridge_id": "bridge", "status": {"owner": "telegram", "thread_id": "t"}}],
        "call": None,
        "budget": {"used_ms": 0, "next_call_cap_ms": 60_000, "spent_usd": 0.0, **budget},
    }


def evaluate_with(gateway: dict[str, Any] | None):
    config = validate_config({"realtime": {"enabled": True}}, env={})
    return evaluate(config, Secrets.load(env={}, config_path=None), gateway=gateway)


def test_a_cooldown_is_a_structured_field_and_a_sentence() -> None:
    cooling = status(
        {
            "cooldown_until": "2026-05-01T14:05:00+00:00",
            "cooldown_s": 412,
            "cooldown_reason": "Cloudflare rate-limited new quick tunnels (HTTP 429, error 1015)",
            "rate_limited": True,
        }
    )
    readiness = evaluate_with(cooling)
    data = readiness.to_json()
    assert data["tunnel"]["cooldown_until"] == "2026-05-01T14:05:00+00:00"
    assert data["tunnel"]["cooldown_s"] == 412
    (info,) = [c for c in data["checks"] if c["name"] == "Tunnel cooldown"]
    assert info["detail"].startswith(
        "Tunnel cooling down after a Cloudflare rate limit until 14:05 UTC (412 s)"
    )
    assert cooldown_text(tunnel_cooldown(cooling) or {}) == (
        "Tunnel cooling down after a Cloudflare rate limit until 14:05 UTC (412 s)"
    )


def test_no_cooldown_means_null_fields_and_no_line() -> None:
    data = evaluate_with(status()).to_json()
    assert data["tunnel"]["cooldown_until"] is None and data["tunnel"]["cooldown_s"] is None
    assert all(c["name"] != "Tunnel cooldown" for c in data["checks"])
    assert evaluate_with(None).to_json()["tunnel"] is None  # the gateway did not answer


def test_the_money_cap_gates_call_when_reached() -> None:
    reached = status(
        spent_usd=2.5, daily_cost_cap_usd=2.0, cost_left_usd=0.0, cost_cap_reached=True
    )
    (check,) = [c for c in evaluate_with(reached).checks if c.name == "Call budget"]
    assert not check.ok
    assert "$2.50 spent today of a $2.00 cap — reached until midnight" in check.detail
    assert "realtime.max_daily_cost_usd" in (check.fix or "")
    ok = status(spent_usd=0.5, daily_cost_cap_usd=2.0, cost_left_usd=1.5, cost_cap_reached=False)
    (check,) = [c for c in evaluate_with(ok).checks if c.name == "Call budget"]
    assert check.ok and "$0.50 spent today of a $2.00 cap ($1.50 left)" in check.detail


def test_spend_without_a_cap() -> None:
    assert spend_text({"spent_usd": 0.0042, "daily_cost_cap_usd": None}) == (
        "$0.0042 spent today (no money cap)"
    )
