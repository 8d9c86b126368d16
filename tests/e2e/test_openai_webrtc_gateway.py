"""A WebRTC call through the REAL gateway with the ``openai`` backend and the fake OpenAI.

The "browser" is an aiortc peer plus the call socket; the bridge is the gateway harness's
stand-in on ``/ws/bridge``. The gateway proxies the SDP offer to the fake's calls endpoint with
the server key, follows the call on the sideband, forwards the transcripts to the bridge, and
hangs the call up upstream when it ends the call itself. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bridgehost.builtin import openai as openai_realtime
from bridgehost.plugins import PluginHost
from bridgehost.state import CallLog
from fakes.openai_api import FakeOpenAI
from fakes.webrtc_caller import Caller
from gateway.conftest import OPENAI_KEY, RunningGateway, gateway_factory

__all__ = ["gateway_factory"]  # the harness's fixture, used here too

pytestmark = pytest.mark.timeout(40)

SCRIPT = [("Did the deploy finish?", "Yes, the deploy finished five minutes ago.")]


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeOpenAI]:
    """The fake OpenAI with the gateway's key; ``OPENAI_BASE_URL`` points at it."""
    async with FakeOpenAI(api_key=OPENAI_KEY, script=SCRIPT) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


@pytest.fixture
def start_gateway(
    fake: FakeOpenAI, gateway_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """Start gateways with ``backend = "openai"`` (registered here if not installed yet)."""
    original = PluginHost.for_config.__func__  # type: ignore[attr-defined]

    def for_config(cls: type[PluginHost], config: Any, env: Any = None) -> PluginHost:
        host = original(cls, config, env)
        if "openai" not in host.providers("realtime_backends"):
            host.register(openai_realtime, "openai")
        return host

    monkeypatch.setattr(PluginHost, "for_config", classmethod(for_config))

    async def start(**realtime: Any) -> RunningGateway:
        return await gateway_factory(backend="openai", **realtime)

    return start


async def _media(
    gw: RunningGateway, body: dict[str, Any], caller: Caller
) -> aiohttp.ClientWebSocketResponse:
    """Proxy the offer, open and authenticate the call socket, connect the media."""
    offer = await caller.offer()
    async with gw.http.post(
        f"{gw.base}/api/call/webrtc",
        json={"call_id": body["call_id"], "client_token": body["client_token"], "sdp": offer},
    ) as resp:
        answer = await resp.json()
        assert resp.status == 200, answer
    assert "sk-" not in json.dumps(answer) and "ek_" not in json.dumps(answer)
    ws = await gw.http.ws_connect(f"{gw.base}{body['ws_path']}")
    await ws.send_json({"type": "call.auth", "token": body["client_token"]})
    assert (await ws.receive_json(timeout=5))["type"] == "call.auth.ok"
    await caller.connect(answer["sdp"])
    return ws


async def test_openai_call_through_the_gateway(fake: FakeOpenAI, start_gateway: Any) -> None:
    gw = await start_gateway()
    body = await gw.start_call()
    assert body["transport"] == "webrtc"
    assert OPENAI_KEY not in json.dumps(body)
    caller = Caller()
    ws = await _media(gw, body, caller)
    upstream = fake.last_call()
    assert upstream.session["audio"]["input"]["transcription"]["model"] == "gpt-transcribe"
    assert "Refactor X" in upstream.session["instructions"]  # the bridge's context part
    assert not [r for r in fake.requests if r.route == "client_secrets"]

    user = await gw.bridge.wait_for("user.transcript.final", timeout=10)
    assistant = await gw.bridge.wait_for("assistant.transcript.final", timeout=10)
    assert (user["text"], assistant["text"]) == SCRIPT[0]
    assert (await gw.bridge.wait_for("call.started"))["seq"] < user["seq"]

    async with gw.http.post(
        f"{gw.base}/control/hangup", json={}, headers=gw.control_headers()
    ) as resp:
        assert resp.status == 200
    ended = await gw.bridge.wait_for("call.ended")
    assert (ended["reason"], ended["ended_by"]) == ("operator_hangup", "operator")
    await fake.wait_until(lambda: upstream.hung_up and upstream.ended.is_set())
    assert upstream.end_reason == "hangup"

    log = CallLog(gw.gateway.paths.call_log(body["call_id"])).read().events
    types = [e["type"] for e in log]
    assert types[0] == "call.started" and types[-1] == "call.ended"
    assert {"user.transcript.final", "assistant.transcript.final", "usage", "vad"} <= set(types)
    await ws.close()
    await caller.close()


async def test_max_duration_hangs_up_upstream(fake: FakeOpenAI, start_gateway: Any) -> None:
    gw = await start_gateway(max_call_ms=2500, idle_timeout_ms=2500, idle_warning_ms=2000)
    body = await gw.start_call()
    caller = Caller()
    ws = await _media(gw, body, caller)  # the page stays connected and never hangs up
    upstream = fake.last_call()
    ended = await gw.bridge.wait_for("call.ended", timeout=10)
    assert (ended["reason"], ended["ended_by"]) == ("max_call_duration_reached", "gateway")
    await fake.wait_until(lambda: upstream.hung_up)
    await ws.close()
    await caller.close()


async def test_upstream_problems_reach_the_page_and_the_bridge(
    fake: FakeOpenAI, start_gateway: Any
) -> None:
    gw = await start_gateway()
    body = await gw.start_call()
    caller = Caller()
    fake.fail("calls", 429, retry_after=0.2, times=2)  # the SDK retries once
    async with gw.http.post(
        f"{gw.base}/api/call/webrtc",
        json={
            "call_id": body["call_id"],
            "client_token": body["client_token"],
            "sdp": await caller.offer(),
        },
    ) as resp:
        error = (await resp.json())["error"]
    assert resp.status == 502 and error["code"] == "backend_failed"
    assert "OpenAI is rate-limiting this key: wait 0.2 s and retry" in error["message"]
    await caller.close()

    caller = Caller()
    ws = await _media(gw, body, caller)  # a retry of the offer works
    await fake.hangup(fake.last_call().call_id, "server")
    ended = await gw.bridge.wait_for("call.ended", timeout=10)
    assert (ended["reason"], ended["ended_by"]) == ("backend_ended", "backend")
    await ws.close()
    await caller.close()
