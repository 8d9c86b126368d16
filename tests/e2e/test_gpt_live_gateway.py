"""A GPT-Live call through the REAL gateway with the ``gpt-live`` backend and the stand-in.

The "browser" is an aiortc peer plus the call socket; the bridge is the gateway harness's
stand-in on ``/ws/bridge``, taught here to answer ``call.delegate`` the way bridge-telegram
does (progress, then the result). The gateway creates the Live session with the server key and
the browser's offer, attaches the sideband, turns transcript deltas into turns, charges usage,
passes the delegation to the bridge and its answer back as commentary, and ends the session
with ``session.close``. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from bridgehost.state import CallLog
from fakes.openai_live import FakeLive
from fakes.webrtc_caller import Caller
from gateway.conftest import OPENAI_KEY, FakeBridge, RunningGateway, gateway_factory

__all__ = ["gateway_factory"]  # the harness's fixture, used here too

pytestmark = pytest.mark.timeout(40)

QUESTION = "Is the nightly build green?"
ANSWER = "Yes, the nightly build passed at three."


@dataclass
class DelegatingBridge(FakeBridge):
    """The harness bridge, plus answers to ``call.delegate`` after ``answer_after_s``."""

    answer_after_s: float = 0.1
    delegations: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[dict[str, Any]] = field(default_factory=list)

    async def _run(self) -> None:
        assert self._ws is not None
        ws = self._ws
        original = ws.receive

        async def receive(*args: Any, **kwargs: Any) -> aiohttp.WSMessage:
            while True:
                message = await original(*args, **kwargs)
                if message.type != aiohttp.WSMsgType.TEXT:
                    return message
                data = json.loads(message.data)
                if data["type"] == "call.delegate":
                    self.delegations.append(data)
                    asyncio.get_running_loop().create_task(self._answer(data))
                elif data["type"] == "call.delegate.cancel":
                    self.cancels.append(data)
                else:
                    return message

        ws.receive = receive  # type: ignore[method-assign]
        await super()._run()

    async def _answer(self, frame: dict[str, Any]) -> None:
        assert self._ws is not None
        ids = {k: frame[k] for k in ("call_id", "delegation_id", "revision")}
        await self._ws.send_json({"type": "call.delegate.progress", **ids, "text": "Checking CI"})
        await asyncio.sleep(self.answer_after_s)
        if self._ws.closed:
            return
        await self._ws.send_json(
            {"type": "call.delegate.result", **ids, "ok": True, "answer": ANSWER, "turn_id": "t-9"}
        )


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeLive]:
    """The stand-in with the gateway's key; ``OPENAI_BASE_URL`` points at it."""
    script = [("user", QUESTION), ("delegate", None), ("assistant", "Anything else?")]
    async with FakeLive(api_key=OPENAI_KEY, script=script) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


@pytest.fixture
def start_gateway(gateway_factory: Callable[..., Any]) -> Callable[..., Any]:
    """Start a gateway with ``backend = "gpt-live"`` and the delegating bridge."""

    async def start(answer_after_s: float = 0.1, **realtime: Any) -> RunningGateway:
        gw: RunningGateway = await gateway_factory(
            connect_bridge=False, backend="gpt-live", **realtime
        )
        gw.bridge = DelegatingBridge(url=gw.bridge.url, answer_after_s=answer_after_s)
        await gw.bridge.connect()
        async with asyncio.timeout(5):
            while not gw.gateway.hub.connected("bridge"):
                await asyncio.sleep(0.01)
        return gw

    return start


async def _media(
    gw: RunningGateway, body: dict[str, Any], caller: Caller
) -> aiohttp.ClientWebSocketResponse:
    """Proxy the offer, open and authenticate the call socket, connect the media."""
    async with gw.http.post(
        f"{gw.base}/api/call/webrtc",
        json={
            "call_id": body["call_id"],
            "client_token": body["client_token"],
            "sdp": await caller.offer(),
        },
    ) as resp:
        answer = await resp.json()
        assert resp.status == 200, answer
    assert "sk-" not in json.dumps(answer)
    ws = await gw.http.ws_connect(f"{gw.base}{body['ws_path']}")
    await ws.send_json({"type": "call.auth", "token": body["client_token"]})
    assert (await ws.receive_json(timeout=5))["type"] == "call.auth.ok"
    await caller.connect(answer["sdp"])
    return ws


async def test_a_gpt_live_call_delegates_to_the_bridge_and_closes(
    fake: FakeLive, start_gateway: Any
) -> None:
    gw = await start_gateway()
    body = await gw.start_call()
    assert OPENAI_KEY not in json.dumps(body)
    caller = Caller()
    ws = await _media(gw, body, caller)
    live = fake.last()
    assert live.config["delegation"] == {"type": "client"}
    assert "Refactor X" in live.config["input"][0]["content"][0]["text"]  # the bridge's context

    await fake.wait_until(lambda: bool(live.commentary), timeout=10)
    [sent] = gw.bridge.delegations
    assert sent["question"] == QUESTION and sent["revision"] == 1
    assert live.commentary[sent["delegation_id"]] == [ANSWER]
    assert live.thinking[sent["delegation_id"]] == ["Checking CI"]
    user = await gw.bridge.wait_for("user.transcript.final", timeout=10)
    assert user["text"] == QUESTION
    finished = await gw.bridge.wait_for("delegation.finished", timeout=5)
    assert (finished["ok"], finished["answer"], finished["turn_id"]) == (True, ANSWER, "t-9")
    await gw.bridge.wait_for("usage", timeout=5)

    async with gw.http.post(
        f"{gw.base}/control/hangup", json={}, headers=gw.control_headers()
    ) as resp:
        assert resp.status == 200
    ended = await gw.bridge.wait_for("call.ended", timeout=10)
    assert (ended["reason"], ended["ended_by"]) == ("operator_hangup", "operator")
    assert live.close_reason == "close_requested"  # session.close, then session.closed

    log = CallLog(gw.gateway.paths.call_log(body["call_id"])).read().events
    types = [e["type"] for e in log]
    assert types[0] == "call.started" and types[-1] == "call.ended"
    assert {"delegation.started", "delegation.progress", "delegation.finished"} <= set(types)
    charged = sum(e.get("live_session_s", 0) for e in log if e["type"] == "usage")
    final = next(e for e in live.events if e["type"] == "session.closed")["usage"]["seconds"]
    assert charged == pytest.approx(final, abs=0.01)
    await ws.close()
    await caller.close()


async def test_hanging_up_during_a_delegation_cancels_it(
    fake: FakeLive, start_gateway: Any
) -> None:
    gw = await start_gateway(answer_after_s=5.0)
    body = await gw.start_call()
    caller = Caller()
    ws = await _media(gw, body, caller)
    await gw.bridge.wait_for("delegation.started", timeout=10)
    async with gw.http.post(
        f"{gw.base}/control/hangup", json={}, headers=gw.control_headers()
    ) as resp:
        assert resp.status == 200
    await gw.bridge.wait_for("call.ended", timeout=10)
    [cancel] = gw.bridge.cancels
    assert cancel["delegation_id"] == gw.bridge.delegations[0]["delegation_id"]
    assert not fake.last().commentary
    await ws.close()
    await caller.close()


async def test_the_session_ending_upstream_ends_the_call(
    fake: FakeLive, start_gateway: Any
) -> None:
    gw = await start_gateway()
    body = await gw.start_call()
    caller = Caller()
    ws = await _media(gw, body, caller)
    await fake.last().close("expired")
    ended = await gw.bridge.wait_for("call.ended", timeout=10)
    assert (ended["reason"], ended["ended_by"]) == ("session_expired", "backend")
    await ws.close()
    await caller.close()
