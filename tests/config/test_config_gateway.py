"""``[gateway]``: request deadlines and connection caps, their defaults and their checks."""

from __future__ import annotations

from typing import Any

import pytest

from bridgehost.config import ConfigError, GatewayConfig, validate_config


def problems_for(gateway: dict[str, Any]) -> dict[str, str]:
    """``{key: message}`` of every problem of a ``[gateway]`` table ({} when valid)."""
    try:
        validate_config({"gateway": gateway}, env={})
    except ConfigError as exc:
        return {p.key: p.message for p in exc.problems}
    return {}


def test_defaults() -> None:
    gateway = validate_config({}, env={}).gateway
    assert gateway == GatewayConfig()
    assert (gateway.header_timeout_s, gateway.body_timeout_s) == (15.0, 15.0)
    assert (gateway.max_connections_per_ip, gateway.max_connections_per_proxy) == (32, 256)


def test_whole_seconds_and_fractions_are_both_accepted() -> None:
    config = validate_config({"gateway": {"header_timeout_s": 5, "body_timeout_s": 0.5}}, env={})
    assert (config.gateway.header_timeout_s, config.gateway.body_timeout_s) == (5.0, 0.5)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("header_timeout_s", 0),
        ("body_timeout_s", -1),
        ("header_timeout_s", True),
        ("max_connections_per_ip", 0),
        ("max_connections_per_proxy", "64"),
    ],
)
def test_bad_values_are_named(key: str, value: Any) -> None:
    assert f"gateway.{key}" in problems_for({key: value})


def test_an_unknown_key_is_a_problem() -> None:
    assert "gateway.header_timeout" in problems_for({"header_timeout": 15})
