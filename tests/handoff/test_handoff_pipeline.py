"""The whole pipeline through the plugin host: summary, bundle, outbox, file/webhook/telegram."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from handoff_helpers import make_config, plugin_host, seed_call

from bridgehost.config import Secrets
from bridgehost.handoff import Pipeline, deliveries
from bridgehost.plugins import PluginError
from bridgehost.state.bridge_store import BridgeStore
from bridgehost.telegram.handover import HandoffPipeline
from fakes.openai_api import FakeOpenAI
from fakes.telegram_api import FakeBotApi

pytestmark = pytest.mark.timeout(30)

KEY = "sk-test-pipeline-0123456789"
TOKEN = "123456:TEST-TOKEN-pipeline"


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict]]]:
    bodies: list[dict] = []

    async def handle(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/hook")), bodies
    await server.close()


async def test_call_ended_to_every_sink(tmp_path: Path, receiver) -> None:
    url, bodies = receiver
    async with FakeOpenAI(api_key=KEY) as openai_fake, FakeBotApi(token=TOKEN) as bot_api:
        config = make_config(
            tmp_path, sinks=["file", "webhook", "telegram"], plugins={"webhook": {"url": url}}
        )
        config = config.model_copy(
            update={"telegram": config.telegram.model_copy(update={"api_base_url": bot_api.root})}
        )
        secrets = Secrets(
            env={
                "OPENAI_API_KEY": KEY,
                "OPENAI_BASE_URL": openai_fake.base_url,
                "TELEGRAM_BOT_TOKEN": TOKEN,
            },
            dotenv={},
        )
        store = BridgeStore.open(tmp_path)
        seed_call(
            store,
            "call-p",
            notes=["and the nightly job"],
            usage=[{"input_audio_s": 60.0, "output_audio_s": 60.0}],
        )
        pipe = Pipeline(config, secrets, store, plugins=plugin_host())
        assert isinstance(pipe, HandoffPipeline)  # the telegram daemon's seam
        await pipe.start()
        try:
            await pipe.call_ended("call-p")
            queued = {d["sink"]: d["status"] for d in deliveries(store, "call-p")}
            assert set(queued) == {"file", "webhook", "telegram"}
            assert await pipe.wait_idle(20)
            recap = await bot_api.wait_for_message(lambda m: "Call ended" in m["text"])
        finally:
            await pipe.stop()
        rows = {d["sink"]: d for d in deliveries(store, "call-p")}
        store.close()

    assert {s: r["status"] for s, r in rows.items()} == dict.fromkeys(rows, "delivered")
    bundle = tmp_path / "calls" / "call-p"
    handoff = json.loads((bundle / "handoff.json").read_text())
    assert handoff["summarized"] is True and handoff["summary"].startswith("Summary:")
    # 60 s heard (600 audio tokens at $32/M) + 60 s spoken (1200 audio tokens at $64/M)
    assert handoff["action_items"] and handoff["usage"]["estimated_cost_usd"] == 0.096
    markdown = (bundle / "handoff.md").read_text()
    assert markdown == handoff["markdown"] and markdown.startswith("bridgehost-handoff: call-p")
    assert "## Action items for the agent" in markdown
    transcript = (bundle / "transcript.md").read_text()
    assert "pin libfoo to 1.4 and open a pull request" in transcript
    for name in ("handoff.json", "handoff.md", "transcript.md"):
        assert stat.S_IMODE((bundle / name).stat().st_mode) == 0o600
    assert bodies == [handoff]
    assert rows["file"]["receipt"] == str(bundle / "handoff.md")
    assert rows["webhook"]["receipt"] == url
    text = recap["text"]
    assert handoff["summary"] in text and f"• file: {bundle / 'handoff.md'}" in text
    assert f"• webhook: {url}" in text


async def test_a_missing_sink_refuses_to_build(tmp_path: Path) -> None:
    store = BridgeStore.open(tmp_path)
    with pytest.raises(PluginError, match="no handoff sink named 'nowhere'"):
        Pipeline(
            make_config(tmp_path, sinks=["file", "nowhere"]),
            Secrets(env={}, dotenv={}),
            store,
            plugins=plugin_host(),
        )
    store.close()


async def test_a_call_that_has_not_ended_is_not_handed_off(tmp_path: Path) -> None:
    store = BridgeStore.open(tmp_path)
    seed_call(store, "live", end=False)
    pipe = Pipeline(make_config(tmp_path), Secrets(env={}, dotenv={}), store, plugins=plugin_host())
    assert await pipe.finalize("live") is None
    assert await pipe.finalize("unknown") is None
    assert deliveries(store, "live") == [] and not (tmp_path / "calls" / "live").exists()
    with pytest.raises(ValueError, match="invalid call id"):
        await pipe.finalize("../escape")
    await pipe.stop()
    store.close()
