"""Benchmark the gateway's call path on loopback: setup time, event acknowledgement latency and
throughput (each event is fsynced to the call log before its ack), relay audio round trip, memory.

Run: .venv/bin/python bench/bench_gateway.py [--calls 20] [--events 500]
Everything stays on 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from bridgehost.demo import demo_config, demo_init_data
from bridgehost.demo._bridge import DemoBridge
from bridgehost.demo._caller import tone_frame
from bridgehost.gateway.service import build_gateway, serve
from bridgehost.gateway_api import GatewayApi
from bridgehost.logging import configure_logging


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _one_call(
    base: str, api: GatewayApi, token: str, init: str, events: int, frames: int
) -> dict[str, object]:
    armed = await api.arm()
    launch = armed["launch_url"].split("launch=")[1]
    async with aiohttp.ClientSession() as http:
        t0 = time.perf_counter()
        async with http.post(
            f"{base}/api/call/bootstrap", json={"launch_token": launch, "init_data": init}
        ) as resp:
            body = await resp.json()
        ws = await http.ws_connect(f"{base}{body['ws_path']}")
        await ws.send_json({"type": "call.auth", "token": body["client_token"]})
        await ws.receive_json()
        setup = time.perf_counter() - t0
        acks: list[float] = []
        started = time.perf_counter()
        for n in range(events):
            sent = time.perf_counter()
            await ws.send_json(
                {
                    "type": "call.event",
                    "id": n,
                    "event": {"type": "user.transcript.final", "text": f"sentence number {n}"},
                }
            )
            while True:
                reply = await ws.receive_json()
                if reply.get("type") == "call.event.ack":
                    break
            acks.append(time.perf_counter() - sent)
        elapsed = time.perf_counter() - started
        rtts: list[float] = []
        for n in range(frames):
            sent = time.perf_counter()
            await ws.send_bytes(tone_frame(n))
            async with asyncio.timeout(5):
                while (await ws.receive()).type is not aiohttp.WSMsgType.BINARY:
                    pass
            rtts.append(time.perf_counter() - sent)
        async with http.post(
            f"{base}/api/call/hangup",
            json={"call_id": body["call_id"], "client_token": body["client_token"]},
        ):
            pass
        await ws.close()
    return {"setup": setup, "acks": acks, "rate": events / elapsed, "rtts": rtts}


async def main(calls: int, events: int, frames: int) -> None:
    configure_logging("bench", level="ERROR")
    state = Path(tempfile.mkdtemp(prefix="bridgehost-bench-"))
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    loaded, env = demo_config(
        state,
        port,
        "bootstrap_rate_limit_per_user = 10000\n"
        "bootstrap_rate_limit_per_ip = 10000\nbootstrap_rate_limit_per_bridge = 10000\n",
    )
    gateway = build_gateway(loaded)
    stop, ready = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(serve(gateway, stop=stop, on_ready=lambda _a: ready.set()))
    await ready.wait()
    bridge = DemoBridge(loaded, f"ws://127.0.0.1:{port}/ws/bridge", env["REALTIME_CONTROL_SECRET"])
    await bridge.start()
    base = f"http://127.0.0.1:{port}"
    results = []
    async with GatewayApi(loaded.config, loaded.secrets) as api:
        for _ in range(calls):
            results.append(
                await _one_call(
                    base, api, "", demo_init_data(env["TELEGRAM_BOT_TOKEN"]), events, frames
                )
            )
            async with asyncio.timeout(10):
                await bridge.ended.get()
    await bridge.close()
    stop.set()
    await server
    setups = [r["setup"] * 1000 for r in results]
    acks = [a * 1000 for r in results for a in r["acks"]]
    rtts = [a * 1000 for r in results for a in r["rtts"]]
    rates = [r["rate"] for r in results]
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {__import__('os').cpu_count()} cores"
    )
    print(f"calls: {calls}, events per call: {events}, audio frames per call: {frames}")
    print(
        f"call setup (bootstrap + socket auth): median {statistics.median(setups):.1f} ms, "
        f"p95 {_pct(setups, 0.95):.1f} ms"
    )
    print(
        f"event ack (validated, fsynced, forwarded): median {statistics.median(acks):.2f} ms, "
        f"p99 {_pct(acks, 0.99):.2f} ms; {statistics.median(rates):.0f} events/s per call"
    )
    print(
        f"relay audio round trip (echo delay 200 ms configured): median "
        f"{statistics.median(rtts):.1f} ms"
    )
    print(
        f"peak RSS of this process (gateway + bridge + client): "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--frames", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(min(args.calls, 200), min(args.events, 10_000), min(args.frames, 500)))
