"""``kill -9`` of a real gateway process mid-call: on restart the call is ended from its log
with reason ``gateway_restart``, nothing acknowledged is lost, and the bridge is offered it. A
kill while the call was already ending keeps its reason, and a call has one ``call.ended``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from bridgehost.gateway.calls import TEST_PAUSE_ENV
from bridgehost.state import CallLog, default_paths

from .conftest import CONTROL_SECRET, FakeBridge, free_port, init_data, secrets_env, write_config


async def _start(
    config: Path, port: int, extra_env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    exe = Path(sys.executable).with_name("bridgehost")
    env = {**os.environ, **secrets_env(), **(extra_env or {})}
    proc = await asyncio.create_subprocess_exec(
        str(exe),
        "--config",
        str(config),
        "gateway",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with aiohttp.ClientSession() as http, asyncio.timeout(20):
        while True:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


async def test_sigkill_mid_call_then_restart_ends_the_call_from_its_log(tmp_path):
    port = free_port()
    config = write_config(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {CONTROL_SECRET}"}
    proc = await _start(config, port)
    bridge = FakeBridge(url=f"ws://127.0.0.1:{port}/ws/bridge")
    try:
        await bridge.connect()
        async with aiohttp.ClientSession() as http:
            body, ws = await _connected_page(http, base)
            acked = []
            for n, event in enumerate(
                [
                    {"type": "call.started"},
                    {"type": "user.transcript.final", "text": "ship it"},
                    {"type": "assistant.transcript.final", "text": "ok"},
                ]
            ):
                await ws.send_json({"type": "call.event", "id": n, "event": event})
                reply = await ws.receive_json(timeout=5)
                while reply["type"] == "call.event":  # what the page missed is replayed first
                    reply = await ws.receive_json(timeout=5)
                assert reply["type"] == "call.event.ack"
                acked.append(reply["seq"])
            await bridge.wait_for("assistant.transcript.final")
            async with asyncio.timeout(5):  # the bridge's ack is on the gateway's disk
                while True:
                    async with http.get(f"{base}/control/status", headers=headers) as resp:
                        recent = (await resp.json())["recent_calls"][0]
                    if recent["bridge_acked_seq"] >= max(acked):
                        break
                    await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            await ws.close()
        await bridge.close()

        proc = await _start(config, port)
        bridge = FakeBridge(url=f"ws://127.0.0.1:{port}/ws/bridge")
        await bridge.connect()
        ended = await bridge.wait_for("call.ended")
        assert ended["reason"] == "gateway_restart"
        replayed = [item["event"]["seq"] for item in bridge.events]
        assert max(acked) not in replayed, "events the bridge acknowledged are not sent again"

        log = CallLog(default_paths(tmp_path / "state").call_log(body["call_id"])).read().events
        logged = {e["seq"]: e for e in log}
        assert set(acked) <= set(logged), "every acknowledged event survived the kill"
        assert logged[acked[1]]["text"] == "ship it"
        assert log[-1]["type"] == "call.ended" and log[-1]["reason"] == "gateway_restart"

        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{base}/control/status", headers=headers) as resp,
        ):
            status = await resp.json()
        assert status["call"] is None
        assert status["recent_calls"][0]["end_reason"] == "gateway_restart"
    finally:
        await bridge.close()
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


async def test_unacknowledged_events_are_replayed_in_order_after_reconnect(gateway_factory):
    gw = await gateway_factory()
    gw.bridge.ack = False
    body = await gw.start_call()
    ws = await gw.http.ws_connect(f"{gw.base}{body['ws_path']}")
    await ws.send_json({"type": "call.auth", "token": body["client_token"]})
    await ws.receive_json(timeout=5)
    await ws.send_json({"type": "call.event", "id": 1, "event": {"type": "call.started"}})
    await ws.receive_json(timeout=5)
    await gw.bridge.wait_for("call.started")
    await gw.bridge.close()
    late = FakeBridge(url=gw.bridge.url)
    await late.connect()
    gw.bridge = late
    await late.wait_for("call.started")
    seqs = [item["event"]["seq"] for item in late.events]
    assert seqs == sorted(seqs) and seqs[0] == 1


async def _connected_page(
    http: aiohttp.ClientSession, base: str
) -> tuple[dict, aiohttp.ClientWebSocketResponse]:
    """Arm, bootstrap and connect the page; the bootstrap body and the authenticated socket."""
    headers = {"Authorization": f"Bearer {CONTROL_SECRET}"}
    async with http.post(f"{base}/control/arm", headers=headers) as resp:
        launch = (await resp.text()).strip().splitlines()[-1]
    token = launch.split("launch=")[1].split('"')[0]
    async with http.post(
        f"{base}/api/call/bootstrap", json={"launch_token": token, "init_data": init_data()}
    ) as resp:
        body = await resp.json()
    ws = await http.ws_connect(f"{base}{body['ws_path']}")
    await ws.send_json({"type": "call.auth", "token": body["client_token"]})
    assert (await ws.receive_json(timeout=5))["type"] == "call.auth.ok"
    return body, ws


async def _live_call(
    http: aiohttp.ClientSession, base: str
) -> tuple[dict, aiohttp.ClientWebSocketResponse]:
    """:func:`_connected_page`, then start the call."""
    body, ws = await _connected_page(http, base)
    await ws.send_json({"type": "call.event", "id": 1, "event": {"type": "call.started"}})
    return body, ws


async def _status(base: str) -> dict:
    headers = {"Authorization": f"Bearer {CONTROL_SECRET}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base}/control/status", headers=headers) as resp,
    ):
        return await resp.json()


def _ended_events(tmp_path: Path, call_id: str) -> list[dict]:
    log = CallLog(default_paths(tmp_path / "state").call_log(call_id)).read().events
    return [e for e in log if e["type"] == "call.ended"]


async def test_sigkill_after_call_ended_is_logged_keeps_the_one_call_ended(tmp_path):
    """The kill comes after ``call.ended`` reached the log and before the record says ended:
    recovery finishes the record from that event instead of writing a second one."""
    port = free_port()
    config = write_config(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    paused = tmp_path / "paused"
    proc = await _start(config, port, {TEST_PAUSE_ENV: f"call_ended_logged={paused}"})
    bridge = FakeBridge(url=f"ws://127.0.0.1:{port}/ws/bridge")
    try:
        await bridge.connect()
        async with aiohttp.ClientSession() as http:
            body, ws = await _live_call(http, base)
            await bridge.wait_for("call.started")
            await bridge.hangup(body["call_id"])  # /hangup in Telegram
            async with asyncio.timeout(10):
                while not paused.exists():
                    await asyncio.sleep(0.02)
            assert [e["reason"] for e in _ended_events(tmp_path, body["call_id"])] == [
                "telegram_hangup"
            ]
            assert (await _status(base))["recent_calls"][0]["status"] == "ending"
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            await ws.close()
        await bridge.close()

        proc = await _start(config, port)
        bridge = FakeBridge(url=f"ws://127.0.0.1:{port}/ws/bridge")
        await bridge.connect()
        ended = await bridge.wait_for("call.ended")
        assert (ended["reason"], ended["ended_by"]) == ("telegram_hangup", "telegram")
        await asyncio.sleep(0.3)  # nothing else arrives
        assert [i["event"]["type"] for i in bridge.events].count("call.ended") == 1
        assert [e["seq"] for e in _ended_events(tmp_path, body["call_id"])] == [ended["seq"]]
        record = (await _status(base))["recent_calls"][0]
        assert (record["status"], record["end_reason"], record["ended_by"]) == (
            "ended",
            "telegram_hangup",
            "telegram",
        )
        assert record["last_seq"] == ended["seq"]
    finally:
        await bridge.close()
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


async def test_sigkill_inside_the_finalize_grace_keeps_the_hangup_reason(tmp_path):
    """The page hung up and the gateway waits for its final events when it is killed: the call
    ends with the page's reason, not ``gateway_restart``."""
    port = free_port()
    config = write_config(tmp_path, port, finalize_grace_ms=60_000)
    base = f"http://127.0.0.1:{port}"
    proc = await _start(config, port)
    bridge = FakeBridge(url=f"ws://127.0.0.1:{port}/ws/bridge")
    try:
        await bridge.connect()
        async with aiohttp.ClientSession() as http:
            body, ws = await _live_call(http, base)
            await bridge.wait_for("call.started")
            async with http.post(
                f"{base}/api/call/hangup",
                json={
                    "call_id": body["call_id"],
                    "client_token": body["client_token"],
                    "reason": "user_hangup",
                },
            ) as resp:
                assert resp.status == 200, await resp.text()
            force_end = await ws.receive_json(timeout=5)
            while force_end["type"] != "call.force_end":
                force_end = await ws.receive_json(timeout=5)
            assert force_end["reason"] == "user_hangup"
            assert (await _status(base))["call"]["status"] == "ending"
            assert _ended_events(tmp_path, body["call_id"]) == []
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            await ws.close()
        await bridge.close()

        proc = await _start(config, port)
        bridge = FakeBridge(url=f"ws://127.0.0.1:{port}/ws/bridge")
        await bridge.connect()
        ended = await bridge.wait_for("call.ended")
        assert (ended["reason"], ended["ended_by"]) == ("user_hangup", "browser")
        assert [e["reason"] for e in _ended_events(tmp_path, body["call_id"])] == ["user_hangup"]
        record = (await _status(base))["recent_calls"][0]
        assert (record["status"], record["end_reason"]) == ("ended", "user_hangup")
    finally:
        await bridge.close()
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
