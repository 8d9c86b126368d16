"""The Mini App in Debian's Chromium against a real gateway on the echo backend.

Covers: a call with echoed audio and a page hang-up (through the Telegram stub), a dropped call
socket that reconnects and a ``/hangup`` from Telegram (without Telegram's script), a retry
that reuses the microphone and a closed page that ends the call (finalize beacon), a stale
launch, a denied microphone, and a WebRTC call through the ``openai`` backend against the fake
OpenAI (aiortc on 127.0.0.1), whose dropped media moves to a new upstream call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bridgehost.basics import iso, utc_now
from bridgehost.builtin import openai as openai_realtime
from bridgehost.plugins import PluginHost
from fakes.openai_api import FakeOpenAI
from gateway.conftest import OPENAI_KEY

pytestmark = [
    pytest.mark.skipif(
        not Path("/usr/bin/chromium").exists(),
        reason="/usr/bin/chromium is missing: apt-get install chromium",
    ),
    pytest.mark.timeout(60),
]
pytest.importorskip("playwright.async_api", reason="playwright is not installed")

DARK_THEME = {
    "bg_color": "#17212b",
    "text_color": "#f5f5f5",
    "hint_color": "#708499",
    "link_color": "#6ab3f3",
    "button_color": "#5288c1",
    "button_text_color": "#ffffff",
    "secondary_bg_color": "#232e3c",
    "section_bg_color": "#17212b",
    "destructive_text_color": "#ec3942",
}


SCRIPT = [("Did the deploy finish?", "Yes, it finished five minutes ago.")]


@pytest.fixture
async def openai_gateway(
    gateway_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    """``(gateway, fake)``: a gateway on the ``openai`` backend, its ``OPENAI_BASE_URL`` at the
    fake OpenAI."""
    original = PluginHost.for_config.__func__  # type: ignore[attr-defined]

    def for_config(cls: type[PluginHost], config: Any, env: Any = None) -> PluginHost:
        host = original(cls, config, env)
        if "openai" not in host.providers("realtime_backends"):
            host.register(openai_realtime, "openai")
        return host

    monkeypatch.setattr(PluginHost, "for_config", classmethod(for_config))
    async with FakeOpenAI(api_key=OPENAI_KEY, script=SCRIPT) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        gw = await gateway_factory(backend="openai", reconnect_grace_ms=20_000)
        yield gw, fake
        await gw.gateway.calls.shutdown(timeout_s=5)  # end upstream while the fake still runs


async def _start(app) -> None:
    await app.page.click("#start")
    await app.wait("s.state === 'in_call'")


async def _ended(gw, call_id: str, timeout: float = 5.0) -> dict[str, Any]:
    """The ``call.ended`` the bridge got for that call (bounded wait)."""
    async with asyncio.timeout(timeout):
        while True:
            for item in gw.bridge.events:
                if item["call_id"] == call_id and item["event"]["type"] == "call.ended":
                    return item["event"]
            await asyncio.sleep(0.02)


async def test_call_echoes_audio_and_hangs_up_from_the_page(
    gateway_factory, chromium, sign_init_data
) -> None:
    gw = await gateway_factory()
    armed = await gw.arm()
    app = await chromium(armed["launch_url"], sign_init_data(), theme=DARK_THEME)
    assert await app.text("#status") == "Ready when you are."

    await _start(app)
    started = await gw.bridge.wait_for("call.started")
    assert started["seq"] >= 1
    await app.wait("s.framesReceived >= 10 && s.unacknowledged === 0")  # echo came back
    assert (await gw.bridge.wait_for("vad"))["state"] == "speech_started"  # the tone is speech

    # The echo backend reports transcript.unavailable while the call is being set up, before
    # the page's socket exists, and the gateway does not replay it on auth (reported): emit the
    # events the gateway would relay once a browser is connected.
    calls, session = gw.gateway.calls, gw.gateway.calls.current
    await calls.ingest(
        session,
        {"type": "transcript.unavailable", "reason": "the echo backend does not transcribe"},
        "backend",
    )
    await calls.ingest(
        session,
        {"type": "user.transcript.final", "text": "Can you summarise the refactor?"},
        "backend",
    )
    await calls.ingest(
        session,
        {
            "type": "assistant.transcript.final",
            "text": "Sure: the parser moved into its own module.",
        },
        "backend",
    )
    await app.page.wait_for_selector("#transcript li.assistant")
    transcript = await app.text("#transcript")
    assert "Transcript unavailable: the echo backend does not transcribe" in transcript
    assert "Can you summarise the refactor?" in transcript
    assert await app.page.is_visible("#hangup") and not await app.page.is_visible("#start")
    assert "left" in await app.text("#clock")
    await calls.gateway_event(
        session, {"type": "call.warning", "kind": "ending_soon", "remaining_ms": 30_000}
    )
    await app.page.wait_for_selector("#banner:not([hidden])")
    assert "ends in about 30 seconds" in await app.text("#banner")
    await app.screenshot("in-call-dark.png")
    assert (await app.stats())["wakeLock"] is True  # the screen stays on during the call

    tg_calls = await app.telegram_calls()
    for expected in ("ready", "expand", "enableClosingConfirmation", "BackButton.show"):
        assert expected in tg_calls

    await app.page.click("#hangup")
    await app.wait("s.state === 'ended' && !s.wakeLock")
    assert await app.text("#status") == "You hung up."
    ended = await gw.bridge.wait_for("call.ended")
    assert ended["reason"] == "user_hangup" and ended["ended_by"] == "browser"
    assert "send /call" in (await app.text("#end")).lower()
    tg_calls = await app.telegram_calls()
    assert "disableClosingConfirmation" in tg_calls and "MainButton.setText:Close" in tg_calls
    assert app.blocked == [] and await app.csp_violations() == []


async def test_dropped_socket_reconnects_then_telegram_hangs_up(
    gateway_factory, chromium, sign_init_data
) -> None:
    gw = await gateway_factory(finalize_grace_ms=2000)
    armed = await gw.arm()
    app = await chromium(armed["launch_url"], sign_init_data(), telegram=False)
    await _start(app)
    await app.wait("s.framesReceived >= 5")
    session = gw.gateway.calls.current

    await session.browser.close()  # the network drops the call socket
    await app.wait("s.reconnects >= 1")
    received = (await app.stats())["framesReceived"]
    await app.wait(f"s.framesReceived >= {received + 10}")  # audio flows again
    assert gw.gateway.calls.current is session and not session.is_ending
    assert (await app.stats())["state"] == "in_call"

    await gw.bridge.hangup()
    await app.wait("s.state === 'ended'")
    assert await app.text("#status") == "The call was hung up from Telegram (/hangup)."
    ended = await gw.bridge.wait_for("call.ended")
    assert ended["reason"] == "telegram_hangup" and ended["ended_by"] == "telegram"
    assert not await app.page.is_visible("#start")  # the launch link was used up
    await app.screenshot("ended-light.png")
    assert app.blocked == [] and await app.csp_violations() == []


async def test_retry_reuses_the_microphone_and_closing_the_page_ends_the_call(
    gateway_factory, chromium, sign_init_data
) -> None:
    gw = await gateway_factory(connect_bridge=False)
    armed = await gw.arm()
    app = await chromium(armed["launch_url"], sign_init_data(), telegram=False)
    await app.page.click("#start")
    await app.wait("s.state === 'failed'")
    assert "bridge control channel is not connected" in await app.text("#status")
    assert await app.text("#start") == "Try again"

    await gw.bridge.connect()
    async with asyncio.timeout(5):
        while not gw.gateway.hub.connected("bridge"):
            await asyncio.sleep(0.02)
    await _start(app)
    assert (await app.stats())["micRequests"] == 1
    await gw.bridge.wait_for("call.started")

    await app.page.close(run_before_unload=True)  # pagehide: the finalize beacon ends the call
    ended = await gw.bridge.wait_for("call.ended")
    assert ended["reason"] == "page_closed" and ended["ended_by"] == "browser"


async def test_expired_launch_points_back_to_telegram(
    gateway_factory, chromium, sign_init_data
) -> None:
    gw = await gateway_factory()
    armed = await gw.arm()
    app = await chromium(armed["launch_url"], sign_init_data())
    await app.screenshot("idle-light.png")
    gw.gateway.surface.state.token_expires_at = iso(utc_now() - timedelta(seconds=1))
    await app.page.click("#start")
    await app.wait("s.state === 'failed'")
    await app.screenshot("expired-light.png")
    assert "expired" in await app.text("#status")
    assert "send /call in Telegram again" in await app.text("#help")
    assert not await app.page.is_visible("#start")
    assert "MainButton.setText:Close" in await app.telegram_calls()
    assert gw.bridge.prepares == []


async def test_expired_sign_in_offers_tap_to_reconnect(
    gateway_factory, chromium, sign_init_data
) -> None:
    gw = await gateway_factory()
    armed = await gw.arm()
    # Opened an hour ago: older than realtime.init_data_max_age_ms (5 minutes by default).
    app = await chromium(armed["launch_url"], sign_init_data(auth_date=int(time.time()) - 3600))
    await app.page.click("#start")
    await app.wait("s.state === 'failed' && s.reconnectOffered")
    await app.screenshot("reconnect-light.png")
    assert "sign-in expired" in await app.text("#status")
    assert "Tap to reconnect" in await app.text("#help")
    assert "Call button in the chat" in await app.text("#help")
    assert await app.page.is_visible("#start")
    assert (await app.text("#start")) == "Tap to reconnect"
    assert "MainButton.setText:Tap to reconnect" in await app.telegram_calls()
    assert gw.bridge.prepares == []  # refused before the bridge was asked

    await app.page.click("#start")  # Telegram re-opens the Mini App with fresh init data
    assert (await app.telegram_calls())[-1] == "close"


async def test_denied_microphone_explains_how_to_recover(
    gateway_factory, chromium, sign_init_data
) -> None:
    gw = await gateway_factory()
    armed = await gw.arm()
    app = await chromium(armed["launch_url"], sign_init_data(), microphone="deny", platform="ios")
    await app.page.click("#start")
    await app.wait("s.state === 'failed'")
    help_text = await app.text("#help")
    assert "not allowed to use the microphone" in help_text
    assert "Settings → Telegram" in help_text and "send /call" in help_text
    assert (await app.stats())["micRequests"] == 1
    assert gw.bridge.prepares == []  # no call was opened
    await app.screenshot("microphone-denied.png")

    reasons = [
        "user_hangup",
        "idle_timeout",
        "max_call_duration_reached",
        "daily_budget_exhausted",
        "telegram_hangup",
        "operator_hangup",
        "gateway_stop",
        "call_start_timeout",
        "browser_disconnect",
        "page_closed",
        "something_new",
    ]
    texts = await app.page.evaluate("(codes) => codes.map((c) => endReasonText(c))", reasons)
    assert all(text.endswith(".") and "_" not in text for text in texts), texts
    assert len(set(texts)) == len(texts)


async def test_webrtc_call_through_the_openai_backend(
    openai_gateway, chromium, sign_init_data
) -> None:
    gw, fake = openai_gateway
    armed = await gw.arm()
    app = await chromium(armed["launch_url"], sign_init_data())

    fake.fail("calls", 429, retry_after=0.2, times=2)  # the offer fails, even after a retry
    await app.page.click("#start")
    await app.wait("s.state === 'failed'")
    assert (await app.text("#status")).startswith(
        "The voice service refused the call: OpenAI is rate-limiting this key"
    )
    assert await app.text("#start") == "Try again"

    await _start(app)  # in_call once the peer connection is connected
    call_id = gw.gateway.calls.current.call_id
    assert (await app.stats())["transport"] == "webrtc"
    await gw.bridge.wait_for("call.started")

    # The gateway's sideband hears the transcript and relays it over the call socket.
    await app.page.wait_for_selector("#transcript li.assistant", timeout=15_000)
    transcript = await app.text("#transcript")
    assert SCRIPT[0][0] in transcript and SCRIPT[0][1] in transcript
    assert await app.page.evaluate("() => document.getElementById('remote').srcObject !== null")
    assert (await app.stats())["micRequests"] == 1

    await app.page.click("#hangup")
    await app.wait("s.state === 'ended'")
    assert await app.text("#status") == "You hung up."
    assert (await _ended(gw, call_id))["reason"] == "user_hangup"
    assert app.blocked == [] and await app.csp_violations() == []


async def test_dropped_webrtc_media_moves_the_call_to_a_new_openai_call(
    openai_gateway, chromium, sign_init_data
) -> None:
    gw, fake = openai_gateway
    armed = await gw.arm()
    app = await chromium(armed["launch_url"], sign_init_data())
    await _start(app)
    await app.wait("s.connectionState === 'connected'")
    await app.page.wait_for_selector("#transcript li.assistant", timeout=15_000)
    session = gw.gateway.calls.current
    first = fake.last_call()

    def started() -> int:
        return sum(
            1
            for e in gw.bridge.events
            if e["call_id"] == session.call_id and e["event"]["type"] == "call.started"
        )

    before = started()

    # The page's network goes away while OpenAI still holds the call: the far peer goes silent
    # (it would end the call on its own only later), the sideband stays up.
    first.pc.remove_all_listeners("connectionstatechange")
    await first.pc.close()
    await app.page.wait_for_function(
        "() => document.getElementById('status').textContent === 'Reconnecting…'",
        timeout=20_000,
    )
    await app.wait("s.mediaRecoveries === 1 && s.state === 'in_call'", timeout_ms=25_000)
    assert await app.text("#status") == "Connected again. Speak any time."
    assert gw.gateway.calls.current is session  # the same gateway call goes on
    stats = await app.stats()  # each offer reaches a new OpenAI call: no ICE restart
    assert stats["iceRestarts"] == 0 and stats["peerRestarts"] >= 1

    latest = fake.last_call()
    assert latest is not first and session.backend.openai_call_id == latest.call_id
    await fake.wait_until(lambda: all(c.hung_up for c in fake.calls.values() if c is not latest))
    assert not latest.hung_up
    await fake.wait_until(lambda: latest.frames_received > 0)  # the caller's audio reaches it
    recap = [
        part["text"]
        for item in latest.model.conversation_items
        if item.get("role") == "user"
        for part in item["content"]
    ]
    assert any(SCRIPT[0][1] in text and "quoted as data" in text for text in recap)
    assert started() == before  # the call did not start again

    await app.page.click("#hangup")
    await app.wait("s.state === 'ended'")
    assert (await _ended(gw, session.call_id))["reason"] == "user_hangup"
    await fake.wait_until(lambda: latest.hung_up)
