"""Render the README's screenshots into docs/img/ with Playwright and Debian's Chromium.

- ``call-light.png`` and ``call-dark.png``: the Mini App in a call against the offline demo
  (``bridgehost demo --serve``, echo backend), with Telegram's light and dark theme colours.
  The demo's echo backend does not speak words, so the script adds a few transcript lines and
  a delegation line through the page's own functions (the ones its call events drive).
- ``capabilities.png``: the text ``bridgectl capabilities`` prints for a fresh configuration,
  drawn as a terminal in a small HTML page and screenshotted by the same Chromium.

Run: ``.venv/bin/python scripts/screenshots.py`` (everything stays on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote, urlsplit

from playwright.async_api import Page, Route, async_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
VIEWPORT = {"width": 390, "height": 760}
THEMES: dict[str, dict[str, str]] = {
    "light": {
        "bg_color": "#ffffff",
        "text_color": "#17212b",
        "hint_color": "#707579",
        "link_color": "#2481cc",
        "button_color": "#2481cc",
        "button_text_color": "#ffffff",
        "secondary_bg_color": "#f1f2f6",
        "section_bg_color": "#ffffff",
        "destructive_text_color": "#e53935",
    },
    "dark": {
        "bg_color": "#17212b",
        "text_color": "#f5f5f5",
        "hint_color": "#8a9aa9",
        "link_color": "#6ab3f3",
        "button_color": "#5288c1",
        "button_text_color": "#ffffff",
        "secondary_bg_color": "#232e3c",
        "section_bg_color": "#17212b",
        "destructive_text_color": "#ec3942",
    },
}
LINES = [
    ("user", "Did the nightly build pass?"),
    ("assistant", "Let me ask Codex to look at the last CI run."),
    ("user", "And check whether the flaky upload test failed again."),
]


def start_demo() -> tuple[subprocess.Popen[str], str]:
    """``bridgehost demo --serve``; returns the process and the Mini App URL it prints."""
    demo = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "bridgehost"), "demo", "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    assert demo.stdout is not None
    for line in demo.stdout:
        match = re.search(r"(http://127\.0\.0\.1:\d+/miniapp\?launch=\S+#tgWebAppData=\S+)", line)
        if match:
            return demo, match.group(1)
    demo.kill()
    raise SystemExit("bridgehost demo --serve did not print a Mini App URL")


async def loopback_only(route: Route) -> None:
    """Let loopback requests through; answer nothing else (telegram-web-app.js included)."""
    if urlsplit(route.request.url).hostname == "127.0.0.1":
        await route.continue_()
    else:
        await route.abort()


async def call_screenshot(browser: object, url: str, theme: str) -> Path:
    """The page in a call, in one theme."""
    scheme = "dark" if theme == "dark" else "light"
    context = await browser.new_context(  # type: ignore[attr-defined]
        viewport=VIEWPORT, device_scale_factor=2, color_scheme=scheme
    )
    page: Page = await context.new_page()
    await page.route("**/*", loopback_only)
    base, _, fragment = url.partition("#")
    params = f"{fragment}&tgWebAppPlatform=android&tgWebAppThemeParams=" + quote(
        json.dumps(THEMES[theme]), safe=""
    )
    await page.goto(f"{base}#{params}")
    await page.click("#start")
    await page.wait_for_function("() => window.__bridgehostStats.state === 'in_call'")
    for role, text in LINES:
        await page.evaluate("([role, text]) => addLine(role, text)", [role, text])
    await page.evaluate(
        "() => onDelegation({delegation_id: 'd1', question: 'Did the nightly build pass?'},"
        " 'started')"
    )
    await page.wait_for_timeout(2300)  # the timer shows 0:02
    path = OUT / f"call-{theme}.png"
    await page.screenshot(path=str(path))
    await page.click("#hangup")
    await context.close()
    return path


def capabilities_text() -> str:
    """What ``bridgectl capabilities`` prints for a new configuration (gateway not started)."""
    with socket.socket() as sock:  # a free loopback port, where no gateway listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="bridgehost-shot-") as tmp:
        folder = Path(tmp)
        (folder / "bridge.config.toml").write_text(
            '[realtime]\nenabled = true\nbackend = "echo"\ntunnel_mode = "static-public-url"\n'
            'public_url = "https://call.example.net"\n'
            f"gateway_port = {port}\n"
            "[telegram]\nauthorized_chat_id = 123456789\n"
            f'[storage]\nroot = "{folder / "state"}"\n'
        )
        (folder / ".env").write_text(
            f"TELEGRAM_BOT_TOKEN=123456789:{secrets.token_hex(8)}\n"
            f"REALTIME_CONTROL_SECRET={secrets.token_urlsafe(24)}\n"
        )
        env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "COLUMNS": "110"}
        result = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "bridgectl"), "capabilities", "--config",
             str(folder / "bridge.config.toml")],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
    return "$ bridgectl capabilities\n" + result.stdout + result.stderr


async def capabilities_screenshot(browser: object) -> Path:
    """The capabilities text as a terminal window."""
    text = capabilities_text()
    page_html = (
        "<!doctype html><meta charset='utf-8'><style>"
        "body{margin:0;background:#1e1e1e;padding:18px}"
        "pre{margin:0;color:#e6e6e6;font:13px/1.45 'DejaVu Sans Mono',monospace;"
        "white-space:pre-wrap;word-break:break-word;max-width:1000px}"
        ".ok{color:#7ec16e}.fail{color:#f07178}</style><pre>"
        + html.escape(text)
        .replace("[ok]", "<span class='ok'>[ok]</span>")
        .replace("[FAIL]", "<span class='fail'>[FAIL]</span>")
        + "</pre>"
    )
    context = await browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1040, "height": 200}, device_scale_factor=2
    )
    page = await context.new_page()
    await page.route("**/*", loopback_only)
    await page.set_content(page_html)
    path = OUT / "capabilities.png"
    await page.screenshot(path=str(path), full_page=True)
    await context.close()
    return path


async def main() -> None:
    """Start the demo, take every screenshot, stop the demo."""
    OUT.mkdir(parents=True, exist_ok=True)
    demo, url = start_demo()
    try:
        async with async_playwright() as driver:
            browser = await driver.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            for theme in THEMES:
                print(await call_screenshot(browser, url, theme))
                # One call per launch link: the next theme needs a fresh demo.
                demo.terminate()
                demo.wait(timeout=20)
                demo, url = start_demo()
            print(await capabilities_screenshot(browser))
            await browser.close()
    finally:
        demo.terminate()
        demo.wait(timeout=20)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
