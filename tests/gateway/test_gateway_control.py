"""The local control API and health routes."""

from __future__ import annotations

import json
import time

import pytest

from bridgehost import gateway_api
from bridgehost.gateway_api import GatewayApi
from bridgehost.providers import Health


async def test_healthz_says_ok_and_nothing_else(gw):
    async with gw.http.get(f"{gw.base}/healthz") as resp:
        assert await resp.json() == {"ok": True}
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Cache-Control"].startswith("no-store")


async def test_arm_streams_progress_then_the_launch_url(gw):
    async with gw.http.post(f"{gw.base}/control/arm", headers=gw.control_headers()) as resp:
        assert resp.headers["Content-Type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in (await resp.text()).splitlines()]
    progress = [line["progress"] for line in lines if "progress" in line]
    assert any("starting tunnel" in p for p in progress)
    assert any("/healthz" in p for p in progress)
    result = lines[-1]["result"]
    assert result["armed"] is True
    assert result["launch_url"].startswith(f"{gw.base}/miniapp?launch=")
    assert result["public_url"] == gw.base and result["expires_at"].endswith("+00:00")


async def test_arm_fails_clearly_when_the_public_origin_does_not_answer(gateway_factory):
    gw = await gateway_factory(public_url="http://127.0.0.1:9", startup_timeout_ms=1000)
    async with gw.http.post(f"{gw.base}/control/arm", headers=gw.control_headers()) as resp:
        final = json.loads((await resp.text()).splitlines()[-1])
    assert final["error"]["code"] == "public_unreachable"
    assert "http://127.0.0.1:9" in final["error"]["message"]
    assert gw.gateway.surface.state.armed is False


async def test_disarm_invalidates_the_invite(gw):
    token = (await gw.arm())["launch_url"].split("launch=")[1]
    async with gw.http.post(
        f"{gw.base}/control/disarm", json={"reason": "lunch"}, headers=gw.control_headers()
    ) as resp:
        assert await resp.json() == {"armed": False, "reason": "lunch"}
    async with gw.http.get(f"{gw.base}/miniapp?launch={token}") as resp:
        assert resp.status == 404
    async with gw.http.get(f"{gw.base}/control/status", headers=gw.control_headers()) as resp:
        surface = (await resp.json())["surface"]
    assert surface["status"] == "disarmed" and surface["last_disarm_reason"] == "lunch"


async def test_hangup_ends_the_live_call(gw):
    body = await gw.start_call()
    async with gw.http.post(
        f"{gw.base}/control/hangup",
        json={"reason": "operator_hangup"},
        headers=gw.control_headers(),
    ) as resp:
        assert (await resp.json())["call_id"] == body["call_id"]
    ended = await gw.bridge.wait_for("call.ended")
    assert (ended["reason"], ended["ended_by"]) == ("operator_hangup", "operator")
    async with gw.http.post(f"{gw.base}/control/hangup", headers=gw.control_headers()) as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "no_call"


async def test_hangup_without_a_reason_is_the_operators_and_through_the_client(gw):
    body = await gw.start_call()
    async with GatewayApi(gw.loaded.config, gw.loaded.secrets) as api:
        answer = await api.hangup()
    assert answer == {"ok": True, "call_id": body["call_id"], "reason": "operator_hangup"}
    ended = await gw.bridge.wait_for("call.ended")
    assert (ended["reason"], ended["ended_by"]) == ("operator_hangup", "operator")


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/control/hangup", {"reason": ["x"]}, "'reason' must be a string, such as"),
        ("/control/hangup", {"call_id": 7}, "'call_id' must be a string."),
        ("/control/disarm", {"reason": 5}, "'reason' must be a string, such as 'bridgectl'."),
    ],
)
async def test_control_bodies_with_bad_fields_are_400_naming_the_field(gw, path, body, message):
    call = await gw.start_call()
    async with gw.http.post(f"{gw.base}{path}", json=body, headers=gw.control_headers()) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["code"] == "invalid_field" and error["message"].startswith(message), error
    current = gw.gateway.calls.current
    assert current is not None and current.call_id == call["call_id"] and not current.is_ending
    assert gw.gateway.surface.state.armed is True


@pytest.mark.parametrize("path", ["/control/status", "/healthz/details"])
async def test_control_routes_need_the_secret(gw, path):
    async with gw.http.get(f"{gw.base}{path}") as resp:
        assert resp.status == 401
    async with gw.http.get(f"{gw.base}{path}", headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 401
        assert "REALTIME_CONTROL_SECRET" in (await resp.json())["error"]["message"]


@pytest.mark.parametrize("header", ["CF-Connecting-IP", "X-Forwarded-For", "CF-Ray"])
async def test_control_routes_are_invisible_through_the_tunnel(gw, header):
    headers = {**gw.control_headers(), header: "203.0.113.9"}
    async with gw.http.get(f"{gw.base}/control/status", headers=headers) as resp:
        assert resp.status == 404
    async with gw.http.post(f"{gw.base}/control/arm", headers=headers) as resp:
        assert resp.status == 404


async def test_details_show_bridges_calls_surface_tunnel_and_budget(gw):
    await gw.start_call()
    async with gw.http.get(f"{gw.base}/healthz/details", headers=gw.control_headers()) as resp:
        details = await resp.json()
    assert details["bridges"][0]["bridge_id"] == "bridge"
    assert details["call"]["status"] == "launching"
    assert details["surface"]["armed"] is True and "token_hash" not in details["surface"]
    assert details["tunnel"]["ok"] is True
    assert details["budget"]["daily_cap_ms"] == 600_000
    assert "secret" not in json.dumps(details).lower()


async def test_bridge_socket_rejects_a_wrong_secret(gw):
    from .conftest import FakeBridge

    intruder = FakeBridge(url=gw.bridge.url)
    try:
        await intruder.connect(secret="wrong")
    except Exception as exc:
        assert "401" in str(exc)
    else:  # pragma: no cover - the handshake must fail
        raise AssertionError("a wrong control secret was accepted")
    finally:
        await intruder.close()


async def test_unknown_route_and_method_are_json(gw):
    async with gw.http.get(f"{gw.base}/nope") as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    async with gw.http.get(f"{gw.base}/api/call/bootstrap") as resp:
        assert resp.status == 405
        assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def _armed_by(gw) -> str | None:
    async with gw.http.get(f"{gw.base}/control/status", headers=gw.control_headers()) as resp:
        return (await resp.json())["surface"]["armed_by"]


async def test_arm_records_who_armed(gw):
    await gw.arm()
    assert await _armed_by(gw) == "bridgectl"  # no body: the default
    async with GatewayApi(gw.loaded.config, gw.loaded.secrets) as api:
        await api.arm(source="telegram")
    assert await _armed_by(gw) == "telegram"
    events = gw.gateway.surface.state.recent_events
    assert events[-1]["source"] == "telegram"


@pytest.mark.parametrize("source", ["", "x" * 33, "two words", 7])
async def test_arm_refuses_a_bad_source(gw, source):
    async with gw.http.post(
        f"{gw.base}/control/arm", json={"source": source}, headers=gw.control_headers()
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_field"
    assert gw.gateway.surface.state.armed is False


async def test_a_slow_healthy_arm_keeps_the_client_reading(gateway_factory, monkeypatch):
    """The public origin answers only after 1.5 s, longer than the client's read timeout: the
    gateway's keep-alive lines carry the client through."""
    gw = await gateway_factory()
    gw.gateway.surface.keepalive_s = 0.2
    monkeypatch.setattr(gateway_api, "ARM_READ_TIMEOUT_S", 0.6)
    tunnel = gw.gateway.tunnel
    healthy = tunnel.health
    warm_at = time.monotonic() + 1.5

    async def warming() -> Health:
        if time.monotonic() < warm_at:
            return Health(ok=False, detail="the origin is warming up")
        return await healthy()

    monkeypatch.setattr(tunnel, "health", warming)
    lines: list[str] = []
    async with GatewayApi(gw.loaded.config, gw.loaded.secrets, timeout_s=0.6) as api:
        result = await api.arm(lines.append)
    assert result["armed"] is True
    still = [line for line in lines if line.startswith(f"still waiting for {gw.base}/healthz (")]
    assert len(still) >= 3, lines
    assert lines[-1] == "armed"


def test_the_arm_read_timeout_outlasts_the_keepalive():
    assert gateway_api.ARM_READ_TIMEOUT_S >= 2 * gateway_api.ARM_KEEPALIVE_S
    assert gateway_api.DEFAULT_TIMEOUT_S >= 2 * gateway_api.ARM_KEEPALIVE_S
