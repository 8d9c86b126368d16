"""The webhook sink against a real HTTP server on loopback, loaded as an installed plugin."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridgehost.config import load_config
from bridgehost.plugins import PluginHost


@pytest.fixture
async def receiver():
    received: list[tuple[dict, dict]] = []
    status = {"code": 200}

    async def handle(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.json()))
        return web.json_response({}, status=status["code"])

    app = web.Application()
    app.router.add_post("/hook", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, received, status
    await server.close()


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "bridge.config.toml"
    path.write_text(
        f'[handoff]\nsinks = ["webhook"]\n[plugins.webhook]\nurl = "{url}"\n'
        'token_secret = "WEBHOOK_TOKEN"\n'
    )
    return path


async def test_delivers_artifact_with_idempotency_key_and_token(receiver, tmp_path):
    server, received, _ = receiver
    loaded = load_config(
        _config(tmp_path, str(server.make_url("/hook"))),
        env={"WEBHOOK_TOKEN": "s3cret-token-value"},
    )
    host = PluginHost.load(env={})
    problems = host.selection_problems(loaded.config)
    assert [p for p in problems if p.key.startswith(("handoff", "plugins"))] == []
    sink = host.build(host.select("handoff_sinks", "webhook"), loaded.config, loaded.secrets)
    await sink.start()
    try:
        where = await sink.deliver({"call_id": "call-1", "summary": "we agreed"})
    finally:
        await sink.stop()
    assert where.endswith("/hook")
    headers, body = received[0]
    assert headers["Idempotency-Key"] == "call-1"
    assert headers["Authorization"] == "Bearer s3cret-token-value"
    assert body == {"call_id": "call-1", "summary": "we agreed"}


async def test_non_2xx_raises_so_the_outbox_retries(receiver, tmp_path):
    server, _, status = receiver
    status["code"] = 503
    loaded = load_config(_config(tmp_path, str(server.make_url("/hook"))), env={})
    host = PluginHost.load(env={})
    sink = host.build(host.select("handoff_sinks", "webhook"), loaded.config, loaded.secrets)
    with pytest.raises(RuntimeError, match="HTTP 503"):
        await sink.deliver({"call_id": "call-2"})
    await sink.stop()


def test_missing_url_is_a_config_problem_naming_the_key(tmp_path):
    path = tmp_path / "bridge.config.toml"
    path.write_text('[handoff]\nsinks = ["webhook"]\n[plugins.webhook]\ntimeout_s = -1\n')
    loaded = load_config(path, env={})
    problems = PluginHost.load(env={}).selection_problems(loaded.config)
    keys = {p.key for p in problems}
    assert {"plugins.webhook.url", "plugins.webhook.timeout_s"} <= keys
