"""The config models: defaults, field documentation and every validation rule."""

from __future__ import annotations

from inspect import isclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from bridgehost.config import (
    BridgeConfig,
    CodexConfig,
    ConfigError,
    PluginsConfig,
    RealtimeConfig,
    StorageConfig,
    TelegramConfig,
    validate_config,
)


def problems_for(data: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, str]:
    """Validate ``data``; return ``{key: message}`` of every problem ({} when valid)."""
    try:
        validate_config(data, env=env or {})
    except ConfigError as exc:
        return {p.key: p.message for p in exc.problems}
    return {}


def leaf_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()):
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isclass(annotation) and issubclass(annotation, BaseModel):
            yield from leaf_fields(annotation, (*prefix, name))
        else:
            yield (*prefix, name), field


def test_defaults_match_the_spec() -> None:
    rt = RealtimeConfig()
    assert rt.enabled is False
    assert rt.bridge_id == "bridge"
    assert rt.public_url == "" and rt.control_url == ""
    assert not hasattr(rt, "surface_mode")
    assert rt.tunnel_mode is None
    assert rt.effective_tunnel_mode == "managed-quick-cloudflared"
    assert (rt.gateway_host, rt.gateway_port) == ("127.0.0.1", 8890)
    assert rt.backend == "openai"
    assert rt.voice == "marin"
    assert (rt.max_call_ms, rt.max_daily_call_ms) == (600_000, 1_800_000)
    assert (rt.init_data_max_age_ms, rt.finalize_grace_ms, rt.launch_window_ms) == (
        300_000,
        4000,
        60_000,
    )
    assert (rt.miniapp_rate_limit_per_ip, rt.miniapp_rate_limit_per_token) == (15, 20)
    assert (rt.max_body_bytes, rt.max_ws_message_bytes) == (65536, 262144)
    assert rt.trusted_proxies == []
    assert rt.idle_warning_ms < rt.idle_timeout_ms < rt.max_call_ms  # idle hangup can trigger
    tg = TelegramConfig()
    assert tg.authorized_chat_id is None
    assert tg.api_base_url == "https://api.telegram.org"
    assert tg.poll_timeout_s == 30
    cfg = BridgeConfig()
    assert cfg.handoff.sinks == ["file", "codex", "telegram"]
    assert cfg.handoff.codex_mode == "turn"
    assert cfg.storage.retention_days == 14
    assert cfg.plugins.disabled == []


def test_default_models_are_current() -> None:
    """gpt-realtime (and its snapshots) has an announced shutdown on 2027-01-20."""
    rt = RealtimeConfig()
    assert rt.model != "gpt-realtime" and not rt.model.startswith("gpt-realtime-2025")
    assert rt.model.startswith("gpt-realtime")
    assert rt.transcription_model and rt.summary_model


def test_every_field_documents_default_and_unit() -> None:
    for path, field in leaf_fields(BridgeConfig):
        assert field.description and "Default:" in field.description, path
        if path[-1].endswith("_ms"):
            assert "Unit: ms" in field.description, path


def test_list_defaults_are_not_shared() -> None:
    a, b = BridgeConfig(), BridgeConfig()
    assert a.handoff.sinks is not b.handoff.sinks


def test_models_are_frozen() -> None:
    with pytest.raises(ValidationError):
        RealtimeConfig().gateway_port = 1  # type: ignore[misc]


def test_derived_defaults_follow_the_environment(tmp_path: Path) -> None:
    env = {"STATE_DIRECTORY": f"{tmp_path}/state:{tmp_path}/other", "CODEX_HOME": str(tmp_path)}
    cfg = validate_config({}, env=env)
    assert cfg.storage.root == tmp_path / "state"
    assert cfg.codex.home == tmp_path
    bare = validate_config({}, env={})
    assert bare.storage.root == Path(".bridge-data")
    assert bare.codex.home == Path("~/.codex").expanduser()
    explicit = validate_config({"storage": {"root": "~/x"}, "codex": {"home": "/opt/c"}}, env=env)
    assert explicit.storage.root == Path("~/x").expanduser()
    assert explicit.codex.home == Path("/opt/c")
    assert StorageConfig().root  # works without a context too
    assert CodexConfig().home


def test_effective_tunnel_mode_and_control_url() -> None:
    static = RealtimeConfig(public_url="https://bridge.example.com/")
    assert static.public_url == "https://bridge.example.com"
    assert static.effective_tunnel_mode == "static-public-url"
    assert RealtimeConfig(gateway_host="0.0.0.0", gateway_port=9000).effective_control_url == (
        "ws://127.0.0.1:9000/ws/bridge"
    )
    assert RealtimeConfig(gateway_host="::1").effective_control_url == "ws://[::1]:8890/ws/bridge"
    custom = RealtimeConfig(control_url="wss://gw.example.com/ws/bridge")
    assert custom.effective_control_url == "wss://gw.example.com/ws/bridge"


@pytest.mark.parametrize(
    ("realtime", "key"),
    [
        ({"idle_warning_ms": 300_000}, "realtime.idle_warning_ms"),
        ({"idle_warning_ms": 400_000}, "realtime.idle_warning_ms"),
        ({"idle_timeout_ms": 700_000}, "realtime.idle_timeout_ms"),
        ({"max_call_ms": 2_000_000}, "realtime.max_call_ms"),
        ({"tunnel_mode": "static-public-url"}, "realtime.public_url"),
        (
            {"tunnel_mode": "static-public-url", "public_url": "http://example.com"},
            "realtime.public_url",
        ),
        ({"public_url": "ftp://example.com"}, "realtime.public_url"),
        ({"public_url": "https://example.com/miniapp"}, "realtime.public_url"),
        ({"public_url": "https://example.com?x=1"}, "realtime.public_url"),
        ({"public_url": "https://user:pw@example.com"}, "realtime.public_url"),
        ({"public_url": "https://example.com:99999"}, "realtime.public_url"),
        (
            {"tunnel_mode": "managed-quick-cloudflared", "public_url": "https://example.com"},
            "realtime.public_url",
        ),
        ({"control_url": "http://127.0.0.1:8890/ws/bridge"}, "realtime.control_url"),
        ({"control_url": "127.0.0.1:8890"}, "realtime.control_url"),
        ({"gateway_port": 0}, "realtime.gateway_port"),
        ({"gateway_port": 70000}, "realtime.gateway_port"),
        ({"max_call_ms": 0}, "realtime.max_call_ms"),
        ({"startup_timeout_ms": -1}, "realtime.startup_timeout_ms"),
        ({"bootstrap_rate_limit_per_ip": 0}, "realtime.bootstrap_rate_limit_per_ip"),
        ({"launch_window_ms": 1000}, "realtime.launch_window_ms"),
        ({"bridge_id": "my bridge"}, "realtime.bridge_id"),
        ({"bridge_id": "x" * 65}, "realtime.bridge_id"),
        ({"bridge_id": ""}, "realtime.bridge_id"),
        ({"model": "  "}, "realtime.model"),
        ({"trusted_proxies": ["10.0.0.0/8", "not-an-ip"]}, "realtime.trusted_proxies[1]"),
        ({"gateway_port": "8890"}, "realtime.gateway_port"),
        ({"enabled": "yes"}, "realtime.enabled"),
        ({"max_call_ms": 1.5}, "realtime.max_call_ms"),
    ],
)
def test_realtime_rules(realtime: dict[str, Any], key: str) -> None:
    problems = problems_for({"realtime": realtime})
    assert key in problems, problems
    assert len(problems) == 1, problems


@pytest.mark.parametrize(
    "realtime",
    [
        {"public_url": "https://bridge.example.com"},
        {"public_url": "https://bridge.example.com:8443/"},
        {"public_url": "http://127.0.0.1:8890"},
        {"public_url": "http://127.5.6.7"},
        {"public_url": "http://localhost:8890"},
        {"public_url": "http://[::1]:8890"},
        {"tunnel_mode": "static-public-url", "public_url": "https://x.example.com"},
        {"tunnel_mode": "ngrok", "public_url": "https://x.ngrok.app"},
        {"tunnel_mode": "ngrok"},
        {"tunnel_mode": ""},
        {"control_url": "ws://127.0.0.1:8890/ws/bridge"},
        {"control_url": "wss://gw.example.com/ws/bridge"},
        {"gateway_port": 1},
        {"gateway_port": 65535},
        {"idle_warning_ms": 1, "idle_timeout_ms": 2, "max_call_ms": 2, "max_daily_call_ms": 2},
        {"bridge_id": "home-bridge_1.a"},
        {"trusted_proxies": ["127.0.0.1", "::1", "10.0.0.0/8", "fd00::/8"]},
    ],
)
def test_realtime_accepts(realtime: dict[str, Any]) -> None:
    assert problems_for({"realtime": realtime}) == {}


def test_cross_field_problems_are_all_reported_together() -> None:
    problems = problems_for(
        {
            "realtime": {
                "idle_warning_ms": 900_000,
                "idle_timeout_ms": 800_000,
                "max_call_ms": 700_000,
                "max_daily_call_ms": 600_000,
                "control_url": "https://x",
                "tunnel_mode": "static-public-url",
            }
        }
    )
    assert set(problems) == {
        "realtime.idle_warning_ms",
        "realtime.idle_timeout_ms",
        "realtime.max_call_ms",
        "realtime.public_url",
        "realtime.control_url",
    }
    assert "realtime.idle_timeout_ms (800000)" in problems["realtime.idle_warning_ms"]


def test_trusted_proxies_are_normalized() -> None:
    rt = RealtimeConfig(trusted_proxies=[" 10.1.2.3/8", "::1"])
    assert rt.trusted_proxies == ["10.0.0.0/8", "::1/128"]
    assert [str(n) for n in rt.trusted_networks] == ["10.0.0.0/8", "::1/128"]


def test_direct_construction_raises_pydantic_errors() -> None:
    with pytest.raises(ValidationError, match="idle_warning_ms"):
        RealtimeConfig(idle_warning_ms=900_000)


def test_telegram_chat_id_and_base_url() -> None:
    assert TelegramConfig(authorized_chat_id="-100123").authorized_chat_id == -100123
    assert TelegramConfig(authorized_chat_id=42).authorized_chat_id == 42
    assert TelegramConfig(api_base_url="http://127.0.0.1:8081/").api_base_url == (
        "http://127.0.0.1:8081"
    )
    assert "telegram.authorized_chat_id" in problems_for({"telegram": {"authorized_chat_id": "me"}})
    assert "telegram.authorized_chat_id" in problems_for({"telegram": {"authorized_chat_id": True}})
    assert "telegram.api_base_url" in problems_for({"telegram": {"api_base_url": "ftp://x"}})
    assert "telegram.api_base_url" in problems_for({"telegram": {"api_base_url": "api.telegram"}})
    assert "telegram.poll_timeout_s" in problems_for({"telegram": {"poll_timeout_s": -1}})


def test_handoff_rules() -> None:
    assert "handoff.codex_mode" in problems_for({"handoff": {"codex_mode": "append"}})
    assert "handoff.sinks" in problems_for({"handoff": {"sinks": ["file", "file"]}})
    assert "handoff.sinks" in problems_for({"handoff": {"sinks": ["file", " "]}})
    assert "handoff.retry_base_s" in problems_for({"handoff": {"retry_base_s": 600}})
    assert "handoff.retry_max_attempts" in problems_for({"handoff": {"retry_max_attempts": 0}})
    prices = "handoff.prices.audio_input_usd_per_million_tokens"
    assert prices in problems_for(
        {"handoff": {"prices": {"audio_input_usd_per_million_tokens": -1}}}
    )
    assert problems_for({"handoff": {"sinks": [], "codex_mode": "inject"}}) == {}


def test_codex_and_storage_rules() -> None:
    assert "codex.binary" in problems_for({"codex": {"binary": ""}})
    assert "codex.app_server_timeout_s" in problems_for({"codex": {"app_server_timeout_s": 0}})
    assert "storage.retention_days" in problems_for({"storage": {"retention_days": -1}})
    assert problems_for({"storage": {"retention_days": 0}}) == {}
    assert CodexConfig(thread_id="  ").thread_id is None


def test_plugin_tables() -> None:
    plugins = PluginsConfig.model_validate({"disabled": ["webhook"], "webhook": {"url": "x"}})
    assert plugins.table("webhook") == {"url": "x"}
    assert plugins.table("absent") == {}
    assert plugins.tables == {"webhook": {"url": "x"}}
    plugins.table("webhook")["url"] = "changed"
    assert plugins.table("webhook") == {"url": "x"}
    assert "plugins.webhook" in problems_for({"plugins": {"webhook": "https://x"}})
    assert "plugins.disabled" in problems_for({"plugins": {"disabled": "webhook"}})


def test_unknown_keys_everywhere_except_plugin_tables() -> None:
    problems = problems_for(
        {
            "realtime": {"max_cal_ms": 1},
            "telegram": {"chat_id": 1},
            "handoff": {"prices": {"audio_in": 1}},
            "plugins": {"webhook": {"anything": 1}},
        }
    )
    assert set(problems) == {"realtime.max_cal_ms", "telegram.chat_id", "handoff.prices.audio_in"}


def test_removed_keys_are_accepted_and_reported_as_ignored() -> None:
    from bridgehost.config._removed import ignored_settings

    raw = {
        "realtime": {"surface_mode": "manual-arm", "enabled": True},
        "handoff": {"prices": {"audio_input_usd_per_minute": 0.02}},
    }
    config = validate_config(raw, env={})
    assert config.realtime.enabled is True
    assert "surface_mode" not in config.realtime.model_dump()
    assert config.handoff.prices.audio_input_usd_per_million_tokens == 32.0
    found = dict(ignored_settings(raw))
    assert set(found) == {"realtime.surface_mode", "handoff.prices.audio_input_usd_per_minute"}
    assert "no effect" in found["realtime.surface_mode"]
    assert (
        "audio_input_usd_per_million_tokens" in found["handoff.prices.audio_input_usd_per_minute"]
    )
    assert ignored_settings({"realtime": {"enabled": True}}) == []


def test_the_money_cap_is_optional_and_positive() -> None:
    assert RealtimeConfig().max_daily_cost_usd is None
    assert RealtimeConfig(max_daily_cost_usd=2).max_daily_cost_usd == 2.0
    assert "realtime.max_daily_cost_usd" in problems_for({"realtime": {"max_daily_cost_usd": 0}})
    assert "realtime.max_daily_cost_usd" in problems_for({"realtime": {"max_daily_cost_usd": "2"}})
