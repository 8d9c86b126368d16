"""``kill -9`` of a real gateway process mid-call: on restart the call is ended from its log
with reason ``gateway_restart``, nothing acknowledged is lost, and the bridge is offered it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from bridgehost.state import CallLog, default_paths

from .conftest import CONTROL_SECRET, FakeBridge, free_port, init_data, secrets_env, write_config


async def _start(config: Path, port: int) -> asyncio.subprocess.Process:
    exe = Path(sys.executable).with_name("bridgehost")
    env = {**os.environ, **secrets_env()}
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
