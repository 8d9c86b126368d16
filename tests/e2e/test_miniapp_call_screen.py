"""The call screen in Chromium with a fake microphone: AudioWorklet audio, Mute and push to
talk, the transcript, the timer, the delegation line, the end screen, and WebRTC recovery (a
GPT-Live call moving to a new session keeps its mute).

The page runs against a real gateway. Relay calls use the ``echo`` backend; the GPT-Live call
uses the ``gpt-live`` backend against the loopback GPT-Live stand-in (``fakes.openai_live``),
whose data channel records what the page sends. The recovery test uses a WebRTC backend defined
here that answers every offer with a fresh aiortc peer, so a page that gives up its dropped peer
and offers again gets through.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from bridgehost import hookimpl
from bridgehost.plugins import PluginHost
from bridgehost.providers import Health, ProviderContext, RealtimeBackend, SessionEvents
from fakes.openai_live import FakeLive
from fakes.openai_webrtc import loopback_only_ice
from gateway.conftest import OPENAI_KEY

pytestmark = pytest.mark.timeout(60)

# Counts createScriptProcessor calls (there must be none) before any page script runs.
NO_SCRIPT_PROCESSOR = """
window.__scriptProcessors = 0;
for (const Context of [window.BaseAudioContext, window.AudioContext]) {
  if (!Context || !Context.prototype.createScriptProcessor) continue;
  const original = Context.prototype.createScriptProcessor;
  Context.prototype.createScriptProcessor = function (...args) {
    window.__scriptProcessors += 1;
    return original.apply(this, args);
  };
}
"""


async def _open(chromium: Any, gw: Any, sign_init_data: Callable[..., str]) -> Any:
    armed = await gw.arm()
    app = await chromium(armed["launch_url"], sign_init_data())
    await app.page.add_init_script(NO_SCRIPT_PROCESSOR)
    await app.page.reload()
    return app


async def _frames_sent(app: Any) -> int:
    return int((await app.stats())["framesSent"])


async def _no_more_frames(app: Any, ms: int = 500) -> None:
    """Assert the page sends no audio frame for ``ms``."""
    before = await _frames_sent(app)
    await app.page.wait_for_timeout(ms)
    assert await _frames_sent(app) == before


async def test_relay_call_screen(gateway_factory, chromium, sign_init_data) -> None:
    gw = await gateway_factory()
    app = await _open(chromium, gw, sign_init_data)
    page = app.page
    await page.click("#start")
    await app.wait("s.state === 'in_call' && s.framesSent >= 5 && s.framesReceived >= 5")
    session = gw.gateway.calls.current

    # Audio both ways through the worklet; the jitter buffer reports what it holds.
    playback = (await app.stats())["playback"]
    assert playback is not None and playback["bufferedMs"] < 1000

    # Mute stops the upstream frames; un-mute resumes them.
    mute = page.get_by_role("button", name="Mute")
    assert await mute.get_attribute("aria-pressed") == "false"
    await mute.click()
    unmute = page.get_by_role("button", name="Unmute")
    assert await unmute.get_attribute("aria-pressed") == "true"
    await page.wait_for_timeout(100)  # a frame already posted by the worklet may still land
    await _no_more_frames(app)
    before = await _frames_sent(app)
    await unmute.click()
    await app.wait(f"s.framesSent >= {before + 5} && !s.muted")
    assert await page.get_by_role("button", name="Mute").get_attribute("aria-pressed") == "false"

    # Push to talk: nothing goes out until "Hold to talk" is held.
    await page.get_by_label("Push to talk").check()
    assert await page.is_hidden("#mute")
    await page.wait_for_timeout(100)
    await _no_more_frames(app, 400)
    talk = page.get_by_role("button", name="Hold to talk")
    box = await talk.bounding_box()
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    before = await _frames_sent(app)
    await page.mouse.down()
    await app.wait(f"s.framesSent >= {before + 5}")
    assert await page.get_attribute("#talk", "aria-pressed") == "true"
    await page.mouse.up()
    await page.wait_for_timeout(100)
    await _no_more_frames(app, 400)
    await page.get_by_label("Push to talk").uncheck()
    await app.wait("s.sending")

    # The timer advances in m:ss, with the time left beside it.
    first = await app.text("#elapsed")
    await page.wait_for_function(
        f"() => document.getElementById('elapsed').textContent !== {first!r}", timeout=3000
    )
    assert (await app.text("#elapsed"))[0].isdigit() and ":" in await app.text("#elapsed")
    assert (await app.text("#remaining")).endswith(" left")

    # Both sides' transcript fills the live region, scrolled to the newest line.
    for i in range(8):
        await gw.gateway.calls.ingest(
            session, {"type": "user.transcript.final", "text": f"Question {i}?"}, "backend"
        )
        await gw.gateway.calls.ingest(
            session,
            {"type": "assistant.transcript.final", "text": f"Answer {i}, at some length."},
            "backend",
        )
    await page.wait_for_selector("#transcript li:nth-child(16)")
    assert await page.get_attribute("#transcript", "aria-live") == "polite"
    assert "Answer 7" in await page.inner_text("#transcript li:last-child")
    await page.wait_for_function(  # the box scrolls, and its newest line is in view
        "() => { const b = document.getElementById('transcript-box');"
        " const last = document.querySelector('#transcript li:last-child').getBoundingClientRect();"
        " const box = b.getBoundingClientRect();"
        " return b.scrollHeight > b.clientHeight && last.bottom <= box.bottom + 1"
        " && last.top >= box.top && last.bottom <= window.innerHeight; }",
        timeout=3000,
    )

    # The delegation line, from the gateway's delegation events.
    await gw.gateway.calls.gateway_event(
        session,
        {"type": "delegation.started", "delegation_id": "item_1", "question": "Did CI pass?"},
    )
    await app.wait("s.activity === 'Asking Codex: Did CI pass?'")
    await gw.gateway.calls.gateway_event(
        session, {"type": "delegation.progress", "delegation_id": "item_1", "text": "Reading logs"}
    )
    await page.wait_for_function(
        "() => document.getElementById('activity-detail').textContent === 'Reading logs'",
        timeout=3000,
    )
    await gw.gateway.calls.gateway_event(
        session,
        {"type": "delegation.finished", "delegation_id": "item_1", "ok": True, "answer": "Yes."},
    )
    await app.wait("s.activity === 'Codex answered'")
    assert await page.get_attribute("#activity", "role") == "status"

    # Hang up: the end screen says why and leads back to the chat.
    await page.click("#hangup")
    await app.wait("s.state === 'ended'")
    assert await page.is_visible("#end")
    assert await app.text("#end-reason") == "You hung up."
    link = page.get_by_role("link", name="Back to the chat")
    await link.click()
    assert "close" in await app.telegram_calls()
    assert "MainButton.setText:Back to the chat" in await app.telegram_calls()

    assert await page.evaluate("() => window.__scriptProcessors") == 0
    assert app.blocked == [] and await app.csp_violations() == []
    assert not [e for e in app.console_errors if "ScriptProcessor" in e]


async def test_narrow_screen_keeps_the_controls_on_screen(
    gateway_factory, chromium, sign_init_data
) -> None:
    gw = await gateway_factory()
    app = await _open(chromium, gw, sign_init_data)
    await app.page.set_viewport_size({"width": 320, "height": 568})
    await app.page.click("#start")
    await app.wait("s.state === 'in_call'")
    width = await app.page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 320
    for selector in ("#mute", "#hangup"):
        box = await app.page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 320
        assert box["height"] >= 44  # a finger-sized target
    await app.page.click("#hangup")
    await app.wait("s.state === 'ended'")


# -- GPT-Live: mute on the data channel ---------------------------------------------------------


@pytest.fixture
async def live(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeLive]:
    """The GPT-Live stand-in, with ``OPENAI_BASE_URL`` pointing at it."""
    script = [("user", "Can you check the build?"), ("assistant", "Sure, one moment.")]
    async with FakeLive(api_key=OPENAI_KEY, script=script) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        yield fake


async def test_gpt_live_mute_goes_on_the_data_channel(
    live, gateway_factory, chromium, sign_init_data
) -> None:
    gw = await gateway_factory(backend="gpt-live")
    app = await _open(chromium, gw, sign_init_data)
    await app.page.click("#start")
    await app.wait("s.state === 'in_call' && s.transport === 'webrtc'", timeout_ms=15_000)
    await app.page.wait_for_selector("#transcript li.assistant", timeout=15_000)
    session = live.last()

    await app.page.get_by_role("button", name="Mute").click()
    await live.wait_until(
        lambda: (
            ("data_channel", "session.input_audio.mute")
            in [(via, event.get("type")) for via, event in session.client_events]
        )
    )
    assert await app.page.evaluate(
        "() => window.__bridgehostStats && !document.getElementById('mute').hidden"
    )
    await app.page.get_by_role("button", name="Unmute").click()
    await live.wait_until(
        lambda: (
            ("data_channel", "session.input_audio.unmute")
            in [(via, event.get("type")) for via, event in session.client_events]
        )
    )
    assert session.refused == []
    assert (await app.stats())["muteMessages"] == [
        "session.input_audio.mute",
        "session.input_audio.unmute",
    ]
    await app.page.click("#hangup")
    await app.wait("s.state === 'ended'")
    assert await app.page.evaluate("() => window.__scriptProcessors") == 0
    assert app.blocked == [] and await app.csp_violations() == []


# -- WebRTC recovery ----------------------------------------------------------------------------

REJOIN = "rejoin-webrtc"


class RejoinSession:
    """Answers every offer with a fresh aiortc peer (so a second offer gets through)."""

    def __init__(self, events: SessionEvents) -> None:
        self.events = events
        self.peers: list[RTCPeerConnection] = []

    async def answer_offer(self, sdp: str) -> str:
        """A new peer for this offer."""
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.peers.append(pc)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        if len(self.peers) == 1:
            await self.events.event({"type": "call.started"})
        return pc.localDescription.sdp

    async def send_audio(self, chunk: bytes) -> None:
        """Not used: media is on WebRTC."""

    async def close(self, reason: str) -> None:
        """Close every peer."""
        for pc in self.peers:
            with contextlib.suppress(Exception):
                await pc.close()


class RejoinBackend:
    """A WebRTC backend for the recovery test."""

    transport = "webrtc"
    instances: ClassVar[list[RejoinBackend]] = []

    def __init__(self, context: ProviderContext) -> None:
        self.context = context
        self.sessions: list[RejoinSession] = []
        RejoinBackend.instances.append(self)

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def health(self) -> Health:
        """Always fine."""
        return Health(ok=True, detail="loopback peers")

    async def open_session(self, setup: Any, events: SessionEvents) -> RejoinSession:
        """One session per call."""
        session = RejoinSession(events)
        self.sessions.append(session)
        return session


@hookimpl
def bridgehost_register_realtime_backends() -> list[RealtimeBackend]:
    """Register the recovery test's backend."""
    return [
        RealtimeBackend(
            name=REJOIN,
            description="loopback WebRTC peers that accept a second offer",
            factory=RejoinBackend,  # type: ignore[arg-type]
            transport="webrtc",
        )
    ]


@pytest.fixture
def rejoin_gateway(
    gateway_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """Start gateways on the recovery test's backend."""
    import sys

    original = PluginHost.for_config.__func__  # type: ignore[attr-defined]

    def for_config(cls: type[PluginHost], config: Any, env: Any = None) -> PluginHost:
        host = original(cls, config, env)
        if REJOIN not in host.providers("realtime_backends"):
            host.register(sys.modules[__name__], REJOIN)
        return host

    monkeypatch.setattr(PluginHost, "for_config", classmethod(for_config))
    RejoinBackend.instances.clear()

    async def start(**realtime: Any) -> Any:
        return await gateway_factory(backend=REJOIN, **realtime)

    return start


async def test_forced_ice_failure_reconnects(rejoin_gateway, chromium, sign_init_data) -> None:
    with loopback_only_ice():
        gw = await rejoin_gateway(reconnect_grace_ms=20_000)
        app = await _open(chromium, gw, sign_init_data)
        await app.page.click("#start")
        await app.wait("s.state === 'in_call' && s.connectionState === 'connected'")
        session = RejoinBackend.instances[-1].sessions[-1]
        call_id = gw.gateway.calls.current.call_id

        # The far end goes away: the page's ICE fails, it says so and recovers.
        await session.peers[0].close()
        await app.page.wait_for_function(
            "() => document.getElementById('status').textContent === 'Reconnecting…'",
            timeout=20_000,
        )
        assert "Reconnecting" in await app.text("#banner")
        await app.wait("s.mediaRecoveries === 1 && s.state === 'in_call'", timeout_ms=25_000)
        stats = await app.stats()
        assert stats["iceRestarts"] == 1 and stats["connectionState"] == "connected"
        assert len(session.peers) >= 2  # the ICE restart's offer, or a new peer's, got through
        assert await app.text("#status") == "Connected again. Speak any time."
        assert gw.gateway.calls.current is not None
        assert gw.gateway.calls.current.call_id == call_id  # the same call goes on

        await app.page.click("#hangup")
        await app.wait("s.state === 'ended'")
        assert await app.page.evaluate("() => window.__scriptProcessors") == 0


async def test_recovery_gives_up_after_the_grace(rejoin_gateway, chromium, sign_init_data) -> None:
    with loopback_only_ice():
        gw = await rejoin_gateway(reconnect_grace_ms=2_500)
        app = await _open(chromium, gw, sign_init_data)
        await app.page.click("#start")
        await app.wait("s.state === 'in_call' && s.connectionState === 'connected'")
        backend = RejoinBackend.instances[-1]
        session = backend.sessions[-1]

        async def refuse(_sdp: str) -> str:
            from bridgehost.providers import ProviderStartError

            raise ProviderStartError("the voice service is unreachable")

        session.answer_offer = refuse  # type: ignore[method-assign]
        await session.peers[0].close()
        await app.wait("s.state === 'ended'", timeout_ms=25_000)
        assert (await app.stats())["endReason"] == "network_lost"
        assert await app.page.is_visible("#end")


async def test_gpt_live_dropped_media_moves_to_a_new_session_and_keeps_mute(
    live, gateway_factory, chromium, sign_init_data
) -> None:
    with loopback_only_ice():
        gw = await gateway_factory(backend="gpt-live", reconnect_grace_ms=20_000)
        app = await _open(chromium, gw, sign_init_data)
        await app.page.click("#start")
        await app.wait("s.state === 'in_call' && s.transport === 'webrtc'", timeout_ms=15_000)
        await app.page.wait_for_selector("#transcript li.assistant", timeout=15_000)
        first = live.last()
        call = gw.gateway.calls.current
        await app.page.get_by_role("button", name="Mute").click()
        await live.wait_until(
            lambda: (
                ("data_channel", "session.input_audio.mute")
                in [(via, event.get("type")) for via, event in first.client_events]
            )
        )

        # The page's network goes away; GPT-Live has not noticed yet (the session stays open).
        await first.pc.close()
        await app.wait("s.mediaRecoveries === 1 && s.state === 'in_call'", timeout_ms=25_000)
        assert await app.text("#status") == "Connected again. Speak any time."
        assert gw.gateway.calls.current is call
        second = live.last()
        assert second is not first and call.backend.live_session_id == second.id
        await live.wait_until(lambda: first.close_reason == "close_requested")
        assert (
            "«Caller: Can you check the build?" in second.config["input"][-1]["content"][0]["text"]
        )
        stats = await app.stats()  # a new peer at once: the new session is a new remote peer
        assert stats["iceRestarts"] == 0 and stats["peerRestarts"] >= 1
        # still muted: the new session is told so on the page's data channel to it
        await live.wait_until(
            lambda: (
                ("data_channel", "session.input_audio.mute")
                in [(via, event.get("type")) for via, event in second.client_events]
            ),
            timeout=10,
        )
        assert second.refused == []
        await app.page.click("#hangup")
        await app.wait("s.state === 'ended'")
        assert second.close_reason == "close_requested"
