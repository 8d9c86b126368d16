"""Photos, documents and voice notes from the chat: the real daemon, the real ``codex
app-server`` against the loopback model, the Bot API stand-in (getFile and file downloads) and
the fake OpenAI's transcriptions."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image
from tg_harness import BOT_TOKEN, CHAT, CONTROL_SECRET, bridge_config, free_port, write_config

from bridgehost.config import load_config
from bridgehost.state.chat_inbox import ChatInbox
from fakes.codex_model import CODEX_ENV, FakeCodexModel, codex_home_config, find_codex_binary
from fakes.openai_api import FakeOpenAI

BINARY = find_codex_binary()
pytestmark = [
    pytest.mark.skipif(BINARY is None, reason="the codex CLI is not installed"),
    pytest.mark.timeout(60),
]
KEY = "sk-test-bridge-transcription"


@pytest.fixture
def model(monkeypatch):
    """The loopback model, and its key in the environment the app-server inherits."""
    for name, value in CODEX_ENV.items():
        monkeypatch.setenv(name, value)
    with FakeCodexModel() as fake:
        yield fake


def _loaded(tmp_path: Path, tg, model: FakeCodexModel, *, openai_key: str | None = None, **tele):
    home = tmp_path / "codex-home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(codex_home_config(model.port))
    raw = load_config(write_config(tmp_path, free_port()), env={}).raw
    raw["codex"] = {"binary": BINARY, "home": str(home)}
    raw.setdefault("telegram", {}).update(tele)
    loaded = bridge_config(tmp_path, tg, gateway_raw=raw)
    env = {"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "REALTIME_CONTROL_SECRET": CONTROL_SECRET}
    if openai_key:
        env["OPENAI_API_KEY"] = openai_key
    return load_config(loaded.path, env=env)


def _texts(tg, needle: str) -> list[str]:
    return [m["text"] for m in tg.sent_messages(CHAT) if needle in m["text"]]


async def _until(predicate, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


def _images(body: dict) -> list[str]:
    """The image inputs of one model request (their data URLs)."""
    found: list[str] = []
    for item in body.get("input") or []:
        for part in item.get("content") or [] if isinstance(item, dict) else []:
            if isinstance(part, dict) and part.get("type") == "input_image":
                found.append(str(part.get("image_url")))
    return found


async def test_a_photo_is_an_image_input_of_the_turn(tmp_path, tg, model, bridge_factory):
    await bridge_factory(_loaded(tmp_path, tg, model))
    photo = _jpeg()
    tg.push_photo(CHAT, photo, caption="what colour is this?")
    await _until(lambda: _texts(tg, "FAKE-REPLY to: what colour is this?"))
    [image] = _images(model.posts()[-1])
    assert image.startswith("data:image/")
    decoded = Image.open(io.BytesIO(base64.b64decode(image.split(",", 1)[1])))
    assert decoded.getpixel((10, 10))[0] > 150, "the model saw the largest size of the photo"


async def test_a_document_is_saved_under_the_inbox_and_a_big_one_refused(
    tmp_path, tg, model, bridge_factory
):
    bridge = await bridge_factory(_loaded(tmp_path, tg, model, max_document_bytes=1000))
    tg.push_document(CHAT, b"name,qty\nbolts,4\n", "order list.csv", caption="check this")
    await _until(lambda: _texts(tg, "FAKE-REPLY to: check this"))
    said = json.dumps(model.posts()[-1]["input"])
    saved = Path.home() / "telegram-inbox"
    [path] = list(saved.iterdir())
    assert path.read_bytes() == b"name,qty\nbolts,4\n" and path.name.endswith("order_list.csv")
    assert str(path) in said, "the turn names where the file is"

    posts = len(model.posts())
    tg.push_document(CHAT, b"x", "dump.bin", size=5000)
    await _until(lambda: _texts(tg, "That file is 5000 bytes"))
    [refusal] = _texts(tg, "That file is 5000 bytes")
    assert "up to 1000 bytes" in refusal and "max_document_bytes" in refusal
    await asyncio.sleep(0.3)
    assert len(model.posts()) == posts and len(list(saved.iterdir())) == 1
    assert not ChatInbox(bridge.rt.store).pending()


async def test_a_voice_note_is_transcribed_into_the_turn(
    tmp_path, tg, model, bridge_factory, monkeypatch
):
    async with FakeOpenAI(api_key=KEY) as openai:
        monkeypatch.setenv("OPENAI_BASE_URL", openai.base_url)
        openai.transcription_text = "please rerun the parser tests"
        await bridge_factory(_loaded(tmp_path, tg, model, openai_key=KEY))
        tg.push_voice(CHAT, b"OggS" + bytes(300))
        await _until(lambda: _texts(tg, "FAKE-REPLY to: please rerun the parser tests"))
        [seen] = openai.transcriptions
        assert seen.audio == b"OggS" + bytes(300) and seen.model == "gpt-transcribe"


async def test_a_voice_note_without_a_key_is_answered_with_the_reason(
    tmp_path, tg, model, bridge_factory
):
    await bridge_factory(_loaded(tmp_path, tg, model))
    tg.push_voice(CHAT, b"OggS" + bytes(100))
    await _until(lambda: _texts(tg, "cannot transcribe voice notes"))
    assert "no OPENAI_API_KEY" in _texts(tg, "cannot transcribe")[0]
    assert not model.posts()


async def test_a_long_code_block_comes_as_a_document(tmp_path, tg, model, bridge_factory):
    await bridge_factory(_loaded(tmp_path, tg, model))
    code = "".join(f"value_{i} = {i} * 2\n" for i in range(300))
    model.script((None, f"Here it is:\n\n```python\n{code}```\n\nThat is all."))
    tg.push_message(CHAT, "write the table")
    await _until(lambda: bool(tg.sent_documents))
    [document] = tg.sent_documents
    assert document["document"]["file_name"] == "code-1.py"
    assert document["content"].decode() == code
    await _until(lambda: _texts(tg, "sent as a file"))
    [answer] = _texts(tg, "sent as a file")
    assert "Here it is" in answer and "That is all." in answer and "value_10" not in answer
