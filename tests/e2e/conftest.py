"""End-to-end fixtures: a real gateway and Debian's Chromium, driven by Playwright.

The gateway comes from the gateway tests' harness: ``tests/gateway`` is a package and the root
conftest puts ``tests/`` on ``sys.path``, so ``gateway.conftest`` is the very module pytest
loaded for those tests; re-exporting its ``gateway_factory`` here makes the fixture available
under ``tests/e2e`` (only the root conftest may declare ``pytest_plugins``). One harness,
nothing duplicated.

Chromium runs headless with a fake microphone that plays a short WAV tone. Every request that
is not for 127.0.0.1 is aborted and recorded; ``telegram-web-app.js`` is either aborted (the
page must work without it) or answered with a small stub that builds ``Telegram.WebApp`` from
the URL hash, as the real script does.
"""

from __future__ import annotations

import json
import math
import struct
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from gateway.conftest import gateway_factory, init_data

__all__ = ["gateway_factory"]  # the harness's fixture, for every test under tests/e2e

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",  # the fake OpenAI's ICE candidates are on 127.0.0.1
]
TELEGRAM_SCRIPT = "https://telegram.org/js/telegram-web-app.js"
WAIT_MS = 10_000


# A stand-in for telegram-web-app.js: Telegram.WebApp from the URL hash, every call recorded in
# window.__tgCalls, theme colours set as CSS variables the way the real script sets them.
TELEGRAM_STUB = r"""
(function () {
  var params = new URLSearchParams(location.hash.slice(1));
  var calls = window.__tgCalls = [];
  function rec(name) { return function (arg) { calls.push(arg ? name + ":" + arg : name); }; }
  var theme = {};
  try { theme = JSON.parse(params.get("tgWebAppThemeParams") || "{}"); } catch (e) {}
  Object.keys(theme).forEach(function (key) {
    document.documentElement.style.setProperty(
      "--tg-theme-" + key.replace(/_/g, "-"), theme[key]);
  });
  function button(prefix) {
    var handlers = [];
    return {
      setText: rec(prefix + ".setText"), show: rec(prefix + ".show"), hide: rec(prefix + ".hide"),
      onClick: function (h) { handlers.push(h); },
      offClick: function (h) { handlers = handlers.filter(function (x) { return x !== h; }); },
      click: function () { handlers.forEach(function (h) { h(); }); }
    };
  }
  window.Telegram = {WebApp: {
    initData: params.get("tgWebAppData") || "", initDataUnsafe: {}, version: "9.1",
    platform: params.get("tgWebAppPlatform") || "unknown",
    colorScheme: theme.bg_color ? "dark" : "light", themeParams: theme,
    ready: rec("ready"), expand: rec("expand"), close: rec("close"),
    enableClosingConfirmation: rec("enableClosingConfirmation"),
    disableClosingConfirmation: rec("disableClosingConfirmation"),
    setHeaderColor: rec("setHeaderColor"), setBackgroundColor: rec("setBackgroundColor"),
    onEvent: function () {}, offEvent: function () {},
    showConfirm: function (message, callback) { calls.push("showConfirm"); callback(true); },
    HapticFeedback: {notificationOccurred: rec("haptic")},
    BackButton: button("BackButton"), MainButton: button("MainButton")
  }};
})();
"""

# Records CSP violations before any page script runs.
CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def write_tone(
    path: Path,
    *,
    seconds: float = 1.0,
    rate: int = 24_000,
    hz: float = 440.0,
    amplitude: float = 0.3,
) -> Path:
    """A mono 16-bit WAV sine tone (Chromium loops it as the fake microphone)."""
    frames = b"".join(
        struct.pack("<h", int(amplitude * 32767 * math.sin(2 * math.pi * hz * i / rate)))
        for i in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def launch_hash(
    init_data: str, *, platform: str = "android", theme: dict[str, str] | None = None
) -> str:
    """The fragment Telegram appends to a Mini App URL."""
    parts = [
        f"tgWebAppData={quote(init_data, safe='')}",
        "tgWebAppVersion=9.1",
        f"tgWebAppPlatform={platform}",
    ]
    if theme:
        parts.append("tgWebAppThemeParams=" + quote(json.dumps(theme), safe=""))
    return "#" + "&".join(parts)


@dataclass
class MiniAppPage:
    """One open Mini App page, with what it tried to load from elsewhere."""

    page: Any
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    async def stats(self) -> dict[str, Any]:
        """``window.__bridgehostStats`` as a plain object."""
        return await self.page.evaluate(
            "() => Object.fromEntries(Object.keys(Object.getOwnPropertyDescriptors("
            "window.__bridgehostStats)).map((k) => [k, window.__bridgehostStats[k]]))"
        )

    async def wait(self, condition: str, timeout_ms: int = WAIT_MS) -> None:
        """Wait (bounded) until ``condition`` holds, with ``s`` bound to the page's stats."""
        # A function, not an expression: Playwright would eval() an expression in the page,
        # which the page's CSP (rightly) forbids.
        await self.page.wait_for_function(
            f"() => {{ const s = window.__bridgehostStats; return Boolean({condition}); }}",
            timeout=timeout_ms,
        )

    async def text(self, selector: str) -> str:
        """The visible text of an element."""
        return await self.page.inner_text(selector)

    async def telegram_calls(self) -> list[str]:
        """What the page asked of Telegram.WebApp (stub only)."""
        return await self.page.evaluate("() => window.__tgCalls || []")

    async def csp_violations(self) -> list[str]:
        """CSP violations the page reported."""
        return await self.page.evaluate("() => window.__cspViolations")

    async def screenshot(self, name: str) -> Path:
        """Save a screenshot under tests/e2e/artifacts/ (git-ignored)."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        await self.page.screenshot(path=str(path), full_page=True)
        return path


Opener = Callable[..., Any]


@pytest.fixture
async def chromium(tmp_path: Path) -> AsyncIterator[Opener]:
    """Open the Mini App in headless Chromium: ``await chromium(url, init_data, ...)``."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    playwright_api = pytest.importorskip(
        "playwright.async_api", reason="playwright is not installed"
    )
    wav = write_tone(tmp_path / "tone.wav")
    driver = await playwright_api.async_playwright().start()
    browsers: list[Any] = []

    async def open_page(
        url: str,
        init_data: str,
        *,
        telegram: bool = True,
        microphone: str = "allow",
        platform: str = "android",
        theme: dict[str, str] | None = None,
    ) -> MiniAppPage:
        fake_ui = (
            "--use-fake-ui-for-media-stream=deny"
            if microphone == "deny"
            else "--use-fake-ui-for-media-stream"
        )
        browser = await driver.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_ARGS, fake_ui, f"--use-file-for-fake-audio-capture={wav}"],
        )
        browsers.append(browser)
        context = await browser.new_context(
            viewport={"width": 390, "height": 760}, device_scale_factor=2
        )
        page = await context.new_page()
        page.set_default_timeout(WAIT_MS)
        opened = MiniAppPage(page)

        async def route(request_route: Any) -> None:
            request_url = request_route.request.url
            if urlsplit(request_url).hostname == "127.0.0.1":
                await request_route.continue_()
            elif telegram and request_url.startswith(TELEGRAM_SCRIPT):
                await request_route.fulfill(
                    status=200, body=TELEGRAM_STUB, content_type="application/javascript"
                )
            else:
                if not request_url.startswith(TELEGRAM_SCRIPT):
                    opened.blocked.append(request_url)
                await request_route.abort()

        await page.route("**/*", route)
        await page.add_init_script(CSP_WATCH)
        page.on(
            "console",
            lambda message: (
                opened.console_errors.append(message.text) if message.type == "error" else None
            ),
        )
        await page.goto(url + launch_hash(init_data, platform=platform, theme=theme))
        return opened

    yield open_page
    for browser in browsers:
        await browser.close()
    await driver.stop()


@pytest.fixture
def sign_init_data() -> Callable[..., str]:
    """Init data signed with the test bot token, as Telegram signs it."""
    return init_data
