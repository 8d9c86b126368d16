"""The Mini App in Debian's Chromium on the ``gpt-live`` backend against the GPT-Live stand-in.

The page sends its WebRTC offer to the gateway, which creates the Live session with the server
key; the stand-in's aiortc peer answers on 127.0.0.1. The caller's question is delegated, the
bridge stand-in answers it, the page shows "Asking Codex: …" then "Codex answered", Mute goes to
GPT-Live on the locked-down data channel, and the page's hang-up ends the session with
``session.close``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from test_gpt_live_gateway import ANSWER, QUESTION, DelegatingBridge

from fakes.openai_live import FakeLive
from gateway.conftest import OPENAI_KEY

pytestmark = [
    pytest.mark.skipif(
        not Path("/usr/bin/chromium").exists(),
        reason="/usr/bin/chromium is missing: apt-get install chromium",
    ),
    pytest.mark.timeout(60),
]
pytest.importorskip("playwright.async_api", reason="playwright is not installed")


@pytest.fixture
async def live_gateway(
    gateway_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    """``(gateway, fake)``: a gateway on ``gpt-live``, with the delegating bridge."""
    script = [("user", QUESTION), ("delegate", None), ("assistant", "Anything else?")]
    async with FakeLive(api_key=OPENAI_KEY, script=script, pause_s=0.3) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        gw = await gateway_factory(connect_bridge=False, backend="gpt-live")
        gw.bridge = DelegatingBridge(url=gw.bridge.url, answer_after_s=1.5)
        await gw.bridge.connect()
        async with asyncio.timeout(5):
            while not gw.gateway.hub.connected("bridge"):
                await asyncio.sleep(0.01)
        yield gw, fake
        await gw.gateway.calls.shutdown(timeout_s=5)


async def test_a_gpt_live_call_from_the_mini_app(live_gateway, chromium, sign_init_data) -> None:
    gw, fake = live_gateway
    armed = await gw.arm()
    app = await chromium(armed["launch_url"], sign_init_data())
    await app.page.click("#start")
    await app.wait("s.state === 'in_call'")
    assert (await app.stats())["transport"] == "webrtc"
    live = fake.last()

    await app.page.wait_for_selector("#activity:not([hidden])", timeout=15_000)
    assert (await app.text("#activity-text")).startswith("Asking Codex: ")
    await app.wait("document.getElementById('activity-text').textContent === 'Codex answered'")
    [delegation_id] = live.delegations
    assert live.commentary[delegation_id] == [ANSWER]
    await app.page.wait_for_selector("#transcript li.assistant", timeout=15_000)
    assert QUESTION in await app.text("#transcript")

    await app.page.click("#mute")
    await fake.wait_until(
        lambda: any(
            via == "data_channel" and e.get("type") == "session.input_audio.mute"
            for via, e in live.client_events
        )
    )
    assert not [kind for via, kind in live.refused if via == "data_channel"]

    await app.page.click("#hangup")
    await app.wait("s.state === 'ended'")
    await fake.wait_until(lambda: live.close_reason is not None)
    assert live.close_reason == "close_requested"
    assert app.blocked == [] and await app.csp_violations() == []
