"""``GET /miniapp``: who gets the page, its CSP nonce, its embedded settings, its rate limit."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bridgehost.gateway import miniapp
from bridgehost.protocol.end_reasons import EndReason, page_texts


class _Tags(HTMLParser):
    """Collects start tags with their attributes, and the settings element's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.settings_text = ""
        self._in_settings = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_settings = tag == "script" and dict(attrs).get("id") == "settings"

    def handle_endtag(self, tag: str) -> None:
        self._in_settings = False

    def handle_data(self, data: str) -> None:
        if self._in_settings:
            self.settings_text += data


def _csp(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


async def _launch_token(gw) -> str:
    armed = await gw.arm()
    return armed["launch_url"].split("launch=")[1]


async def test_unknown_token_gets_a_404_page_pointing_back_to_telegram(gw) -> None:
    await gw.arm()
    for query in ("?launch=not-the-token", ""):
        async with gw.http.get(f"{gw.base}/miniapp{query}") as resp:
            assert resp.status == 404
            assert resp.content_type == "text/html"
            assert "send /call" in (await resp.text())
            assert resp.headers["Content-Security-Policy"] == "default-src 'none'"


async def test_expired_token_gets_a_410_page(gateway_factory) -> None:
    gw = await gateway_factory(launch_token_ttl_ms=1)
    token = await _launch_token(gw)
    await asyncio.sleep(0.01)  # a loopback round trip can be faster than the 1 ms lifetime
    async with gw.http.get(f"{gw.base}/miniapp?launch={token}") as resp:
        assert resp.status == 410
        text = await resp.text()
    assert "expired" in text and "send /call" in text


async def test_page_inlines_everything_under_a_fresh_nonce(gw) -> None:
    token = await _launch_token(gw)
    nonces = set()
    for _ in range(2):
        async with gw.http.get(f"{gw.base}/miniapp?launch={token}") as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            html = await resp.text()
            csp = resp.headers["Content-Security-Policy"]
            assert resp.headers["Permissions-Policy"] == "microphone=(self)"
            assert resp.headers["Cache-Control"] == "no-store"
            assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        directives = _csp(csp)
        nonce = directives["script-src"].split("'nonce-")[1].split("'")[0]
        assert directives["style-src"] == f"'nonce-{nonce}'"
        assert directives["connect-src"] == f"'self' {gw.base.replace('http:', 'ws:')}"
        assert directives["default-src"] == "'none'"
        nonces.add(nonce)

        parser = _Tags()
        parser.feed(html)
        scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
        styles = [attrs for tag, attrs in parser.tags if tag == "style"]
        assert len(scripts) == 3 and len(styles) == 1
        assert all(attrs.get("nonce") == nonce for attrs in scripts + styles)
        assert [a.get("src") for a in scripts if a.get("src")] == [
            "https://telegram.org/js/telegram-web-app.js"
        ]
        # CSP would block inline handlers and style attributes: the page must not need them.
        for _tag, attrs in parser.tags:
            assert "style" not in attrs
            assert not [name for name in attrs if name.startswith("on")]
        settings = json.loads(parser.settings_text)
        assert settings["launch_token"] == token and settings["transport"] == "relay"
        assert settings["startup_timeout_ms"] == 3000
        # what the echo backend declares: one peer per call, no data channel, push to talk
        assert settings["ice_restart"] is True and settings["data_channel_mute"] is False
        assert settings["push_to_talk"] is True
        assert settings["end_reasons"] == page_texts()
        for element in (
            'id="start"',
            'id="hangup"',
            'id="status"',
            'role="status"',
            'aria-live="polite"',
            'id="transcript"',
            "<audio",
        ):
            assert element in html
    assert len(nonces) == 2


def test_the_page_has_no_end_reason_texts_of_its_own() -> None:
    """The sentences come from the server's EndReason, embedded in the settings."""
    script = "\n".join(miniapp._asset(name) for name in miniapp.SCRIPTS)
    assert "endReasonText" in script and "end_reasons" in script
    for reason in EndReason:
        assert reason.text not in script, reason


def test_settings_cannot_break_out_of_their_script_element() -> None:
    hostile = {"launch_token": "</script><script>alert(1)</script><!--", "line": "a\u2028b&c"}
    html = miniapp.render("n0nce-n0nce-n0nce-n0nce", hostile)
    assert "</script><script>alert(1)" not in html and "<!--" not in html
    assert "\u2028" not in html
    parser = _Tags()
    parser.feed(html)
    assert json.loads(parser.settings_text) == hostile
    assert "{{" not in html


def test_static_assets_cannot_end_their_inline_elements() -> None:
    for name in (*miniapp.SCRIPTS, "miniapp.css"):
        text = miniapp._asset(name)
        assert "</script" not in text.lower() and "</style" not in text.lower(), name


async def test_script_src_allows_the_worklet_module_and_nothing_else(gw) -> None:
    token = await _launch_token(gw)
    async with gw.http.get(f"{gw.base}/miniapp?launch={token}") as resp:
        directives = _csp(resp.headers["Content-Security-Policy"])
        html = await resp.text()
    sources = directives["script-src"].split()
    nonce = sources[0]
    # A worklet's fetch carries no nonce: its one exact URL is listed, never 'self' or a host.
    assert sources == [nonce, "https://telegram.org", f"{gw.base}{miniapp.WORKLET_PATH}"]
    assert nonce.startswith("'nonce-")
    assert "'self'" not in directives["script-src"] and "worker-src" not in directives
    assert "createScriptProcessor" not in html
    for element in ('id="mute"', 'aria-pressed="false"', 'id="activity"', 'id="end"'):
        assert element in html


async def test_worklet_module_is_served_as_javascript(gw) -> None:
    async with gw.http.get(f"{gw.base}{miniapp.WORKLET_PATH}") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/javascript"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        text = await resp.text()
    assert 'registerProcessor("bridgehost-capture"' in text
    assert 'registerProcessor("bridgehost-playback"' in text
    assert "createScriptProcessor" not in text
    assert f'WORKLET_PATH = "{miniapp.WORKLET_PATH}"' in miniapp._asset("miniapp-audio.js")


async def test_a_host_header_that_is_no_host_name_gives_no_worklet_source(gw) -> None:
    token = await _launch_token(gw)
    headers = {"Host": "evil.example; script-src *"}
    async with gw.http.get(f"{gw.base}/miniapp?launch={token}", headers=headers) as resp:
        assert resp.status == 200
        directives = _csp(resp.headers["Content-Security-Policy"])
    assert directives["script-src"].split()[1:] == ["https://telegram.org"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_worklet_module_is_valid_javascript(tmp_path: Path) -> None:
    script = tmp_path / "worklet.js"
    script.write_text(miniapp._asset(miniapp.WORKLET_FILE))
    result = subprocess.run(
        ["node", "--check", str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_inlined_script_is_valid_javascript(tmp_path: Path) -> None:
    script = tmp_path / "page.js"
    script.write_text("\n".join(miniapp._asset(name) for name in miniapp.SCRIPTS))
    result = subprocess.run(
        ["node", "--check", str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr


async def test_page_loads_are_rate_limited_per_token(gateway_factory) -> None:
    gw = await gateway_factory(miniapp_rate_limit_per_token=2)
    token = await _launch_token(gw)
    statuses = []
    for _ in range(3):
        async with gw.http.get(f"{gw.base}/miniapp?launch={token}") as resp:
            statuses.append(resp.status)
            retry_after = resp.headers.get("Retry-After")
    assert statuses == [200, 200, 429]
    assert retry_after is not None and int(retry_after) > 0
