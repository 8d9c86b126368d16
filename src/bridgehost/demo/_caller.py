"""A scripted caller: does over HTTP and WebSocket what the Mini App does in a browser."""

from __future__ import annotations

import asyncio
import math
import struct
import time
from collections.abc import Callable
from typing import Any

import aiohttp

SAMPLE_RATE = 24_000
FRAME_SAMPLES = 480  # 20 ms


def tone_frame(index: int, frequency: float = 440.0) -> bytes:
    """20 ms of a sine tone as PCM16 mono at 24 kHz."""
    start = index * FRAME_SAMPLES
    samples = (
        int(8000 * math.sin(2 * math.pi * frequency * (start + n) / SAMPLE_RATE))
        for n in range(FRAME_SAMPLES)
    )
    return struct.pack(f"<{FRAME_SAMPLES}h", *samples)


async def place_call(
    base: str,
    launch_token: str,
    init_data: str,
    *,
    frames: int = 25,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Bootstrap, authenticate, start, stream a tone, collect the echo, hang up."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/miniapp", params={"launch": launch_token}) as resp:
            csp = resp.headers.get("Content-Security-Policy", "")
            say(f"Mini App page served: HTTP {resp.status}, CSP with a nonce: {'nonce-' in csp}")
        async with http.post(
            f"{base}/api/call/bootstrap",
            json={"launch_token": launch_token, "init_data": init_data},
        ) as resp:
            body = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"bootstrap failed: {body['error']['message']}")
        minutes = body["limits"]["max_call_ms"] / 60000
        say(
            f"bootstrap: call {body['call_id']} ({body['transport']} transport, "
            f"capped at {minutes:.0f} min)"
        )
        ws = await http.ws_connect(f"{base}{body['ws_path']}")
        await ws.send_json({"type": "call.auth", "token": body["client_token"]})
        await ws.receive_json(timeout=10)
        await ws.send_json({"type": "call.event", "id": 1, "event": {"type": "call.started"}})
        say("call socket authenticated; call.started logged")
        started = time.monotonic()
        for index in range(frames):
            await ws.send_bytes(tone_frame(index))
            await asyncio.sleep(0.02)
        echoed = 0
        try:
            async with asyncio.timeout(5):
                while echoed < frames:
                    message = await ws.receive()
                    if message.type is aiohttp.WSMsgType.BINARY:
                        echoed += 1
        except TimeoutError:
            pass
        say(
            f"sent {frames} audio frames ({frames * 20 / 1000:.1f} s of a 440 Hz tone); "
            f"{echoed} came back through the echo backend"
        )
        async with http.post(
            f"{base}/api/call/hangup",
            json={"call_id": body["call_id"], "client_token": body["client_token"]},
        ) as resp:
            await resp.json()
        await ws.close()
        return {
            "call_id": body["call_id"],
            "echoed": echoed,
            "frames": frames,
            "seconds": time.monotonic() - started,
        }
