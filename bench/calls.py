"""Call benchmarks against a real gateway process: memory over many calls, event ingest,
relayed audio at concurrent calls, and call events under a flood of rejected requests."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _gateway import Gateway, free_port, running_gateway, service_env
from _procs import notify_socket
from _stats import ratio, summary

FRAME_S = 0.020
TRANSCRIPT = {
    "type": "user.transcript.final",
    "text": "a pinned sentence of twelve words said by the caller in the call",
}


def _tone() -> bytes:
    from bridgehost.demo._caller import tone_frame

    return tone_frame(0)


async def call_memory(calls: int, sample_every: int) -> dict[str, Any]:
    """Gateway RSS idle, during a call, and after ``calls`` sequential calls (each: arm,
    bootstrap, call socket, 5 events, 5 relayed frames, hang-up, handoff)."""
    frame = _tone()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        async with running_gateway(Path(tmp)) as gw:
            await asyncio.sleep(0.5)
            idle = gw.rss_mib()
            series: list[tuple[int, float]] = [(0, idle)]
            during: list[float] = []
            setup: list[float] = []
            for n in range(1, calls + 1):
                call = await gw.open_call()
                setup.append(call.bootstrap_ms)
                for _ in range(5):
                    await gw.event(call, TRANSCRIPT)
                for _ in range(5):
                    await call.ws.send_bytes(frame)
                    async with asyncio.timeout(10):
                        while (await call.ws.receive()).type is not aiohttp.WSMsgType.BINARY:
                            pass
                if n == 1 or n % sample_every == 0:
                    during.append(gw.rss_mib())
                await gw.hang_up(call)
                if n % sample_every == 0 or n == calls:
                    series.append((n, gw.rss_mib()))
            await asyncio.sleep(0.5)
            after = gw.rss_mib()
    return {
        "calls": calls,
        "idle_rss_mib": idle,
        "during_call_rss_mib": summary(during, "MiB"),
        "after_calls_rss_mib": after,
        "growth_mib": after - idle,
        "growth_after_first_call_mib": after - series[1][1] if len(series) > 1 else 0.0,
        "series": series,
        "bootstrap_ms": summary(setup, "ms"),
    }


async def event_ingest(rounds: int, events: int) -> dict[str, Any]:
    """Events per second appended (fsynced) to the call log and acknowledged, one call, one
    event at a time; each round of ``events`` gives one rate."""
    rates: list[float] = []
    acks: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        async with running_gateway(Path(tmp)) as gw:
            call = await gw.open_call()
            for _ in range(rounds):
                begin = time.perf_counter()
                for _ in range(events):
                    acks.append(await gw.event(call, TRANSCRIPT))
                rates.append(events / (time.perf_counter() - begin))
            await gw.hang_up(call)
    return {"events_per_s": summary(rates, "events/s"), "ack_ms": summary(acks, "ms")}


async def _relay_frames(ws: aiohttp.ClientWebSocketResponse, frames: int) -> list[float]:
    """Send one frame every 20 ms; each echoed frame's round trip, in ms."""
    frame = _tone()
    sent: list[float] = []
    rtts: list[float] = []

    async def receive() -> None:
        while len(rtts) < frames:
            message = await ws.receive()
            if message.type is aiohttp.WSMsgType.BINARY:
                rtts.append((time.perf_counter() - sent[len(rtts)]) * 1000)
            elif message.type is not aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"socket closed mid-relay: {message}")

    receiver = asyncio.create_task(receive())
    start = time.perf_counter()
    for n in range(frames):
        await asyncio.sleep(max(0.0, start + n * FRAME_S - time.perf_counter()))
        sent.append(time.perf_counter())
        await ws.send_bytes(frame)
    async with asyncio.timeout(30):
        await receiver
    return rtts


@contextlib.asynccontextmanager
async def _floor_servers(count: int):  # type: ignore[no-untyped-def]
    """``count`` bare aiohttp echo apps (bench/floor_app.py), their ports."""
    procs, ports = [], []
    try:
        for _ in range(count):
            port = free_port()
            with notify_socket() as (sock, path):
                proc = subprocess.Popen(
                    [sys.executable, str(Path(__file__).with_name("floor_app.py")), str(port)],
                    env={**service_env(Path(tempfile.gettempdir())), "NOTIFY_SOCKET": path},
                )
                procs.append(proc)
                sock.settimeout(30)
                sock.recv(4096)
            ports.append(port)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


async def relay(calls: int, frames: int) -> dict[str, Any]:
    """Round trip of each 20 ms frame through the relay (echo backend answering at once) at
    ``calls`` concurrent calls (one gateway each: a gateway carries one call at a time), and
    the same through bare aiohttp echo apps (the floor); the difference is what the relay adds."""
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            gateways: list[Gateway] = [
                await stack.enter_async_context(running_gateway(Path(tmp) / f"gw{n}"))
                for n in range(calls)
            ]
            handles = [await gw.open_call() for gw in gateways]
            relayed = await asyncio.gather(*(_relay_frames(h.ws, frames) for h in handles))
            for gw, handle in zip(gateways, handles, strict=True):
                await gw.hang_up(handle)
    async with _floor_servers(calls) as ports, aiohttp.ClientSession() as http:
        sockets = [await http.ws_connect(f"http://127.0.0.1:{p}/ws") for p in ports]
        floor = await asyncio.gather(*(_relay_frames(ws, frames) for ws in sockets))
        for ws in sockets:
            await ws.close()
    through = summary([v for r in relayed for v in r], "ms")
    base = summary([v for r in floor for v in r], "ms")
    return {
        "concurrent_calls": calls,
        "frames_per_call": frames,
        "relay_round_trip_ms": through,
        "floor_round_trip_ms": base,
        "added_p50_ms": through["median"] - base["median"],
        "added_p99_ms": through["p99"] - base["p99"],
        "ratio_to_floor": ratio(through, base),
        "samples_ms": [v for r in relayed for v in r],
        "floor_samples_ms": [v for r in floor for v in r],
    }


async def _bad_bootstraps(gw: Gateway, count: int, concurrency: int) -> dict[str, int]:
    statuses: dict[str, int] = {}
    queue = iter(range(count))

    async def worker() -> None:
        async with aiohttp.ClientSession() as http:
            for _ in queue:
                try:
                    async with http.post(
                        f"{gw.base}/api/call/bootstrap",
                        json={"launch_token": "x" * 40, "init_data": "user=%7B%7D&hash=00"},
                    ) as resp:
                        await resp.read()
                        key = str(resp.status)
                except aiohttp.ClientError:
                    key = "reset"
                statuses[key] = statuses.get(key, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def _slow_connections(gw: Gateway, count: int, hold_s: float) -> int:
    """Open ``count`` connections that send half a request line and then wait."""
    writers = []
    for _ in range(count):
        with contextlib.suppress(OSError):
            _reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(b"POST /api/call/bootstrap HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            writers.append(writer)
    await asyncio.sleep(hold_s)
    for writer in writers:
        writer.close()
    return len(writers)


async def _paced_events(gw: Gateway, call: Any, count: int) -> list[float]:
    acks = []
    for _ in range(count):
        acks.append(await gw.event(call, TRANSCRIPT))
        await asyncio.sleep(0.01)
    return acks


async def flood(events: int, bootstraps: int, slow: int) -> dict[str, Any]:
    """Call event acknowledgement latency, quiet and while ``bootstraps`` rejected bootstraps
    (20 at a time) and ``slow`` slow connections hit the same gateway."""
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        async with running_gateway(Path(tmp)) as gw:
            call = await gw.open_call()
            quiet = await _paced_events(gw, call, events)
            flood_task = asyncio.gather(
                _bad_bootstraps(gw, bootstraps, 20), _slow_connections(gw, slow, 2.0)
            )
            busy = await _paced_events(gw, call, events)
            statuses, held = await flood_task
            await gw.hang_up(call)
    during, before = summary(busy, "ms"), summary(quiet, "ms")
    return {
        "quiet_ack_ms": before,
        "flooded_ack_ms": during,
        "p99_ratio_to_quiet": during["p99"] / before["p99"],
        "rejected_bootstraps": statuses,
        "slow_connections_opened": held,
        "samples_ms": busy,
        "quiet_samples_ms": quiet,
    }
