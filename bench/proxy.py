"""Bootstrap plus WebRTC-offer proxy overhead: the ``openai`` backend against the loopback
OpenAI stand-in (tests/fakes/openai_api.py, which answers each offer with aiortc), and the same
offer posted straight to the stand-in, interleaved call by call; the difference is the gateway's."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from _gateway import ROOT, free_port, running_gateway, service_env
from _stats import summary

API_KEY = "sk-bench-loopback-0123456789"
"""The only key the stand-in accepts; it never leaves loopback."""


@contextlib.asynccontextmanager
async def fake_openai(home: Path) -> AsyncIterator[str]:
    """The OpenAI stand-in as its own process; yields its ``OPENAI_BASE_URL``."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fakes.openai_api", "--port", str(port), "--api-key", API_KEY],
        cwd=ROOT / "tests",
        env=service_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        if not line.startswith(b"LISTENING"):
            raise RuntimeError(f"the OpenAI stand-in did not start: {line!r}")
        yield line.decode().split()[2]
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)


async def _offer() -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    from fakes.webrtc_caller import Caller

    caller = Caller()
    try:
        return await caller.offer()
    finally:
        await caller.close()


async def proxy(calls: int) -> dict[str, Any]:
    """``calls`` calls through the gateway (bootstrap, then the offer through
    ``/api/call/webrtc``) and ``calls`` offers straight to the stand-in."""
    offer = await _offer()  # one pinned offer: the stand-in answers each post with a new peer
    bootstrap, webrtc, through, direct = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        async with fake_openai(Path(tmp)) as base_url:
            env = {"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": base_url}
            async with (
                running_gateway(Path(tmp) / "gw", backend="openai", env_extra=env) as gw,
                aiohttp.ClientSession() as http,
            ):
                headers = {"Authorization": f"Bearer {API_KEY}"}
                for _ in range(calls):
                    armed = await gw.api.arm()
                    launch = armed["launch_url"].split("launch=")[1]
                    begin = time.perf_counter()
                    async with http.post(
                        f"{gw.base}/api/call/bootstrap",
                        json={"launch_token": launch, "init_data": gw.init_data()},
                    ) as resp:
                        body = await resp.json()
                        if resp.status != 200:
                            raise RuntimeError(f"bootstrap failed: {body}")
                    booted = time.perf_counter()
                    async with http.post(
                        f"{gw.base}/api/call/webrtc",
                        json={
                            "call_id": body["call_id"],
                            "client_token": body["client_token"],
                            "sdp": offer,
                        },
                    ) as resp:
                        answer = await resp.json()
                        if resp.status != 200 or not answer.get("sdp"):
                            raise RuntimeError(f"offer failed: {answer}")
                    done = time.perf_counter()
                    bootstrap.append((booted - begin) * 1000)
                    webrtc.append((done - booted) * 1000)
                    through.append((done - begin) * 1000)
                    async with http.post(
                        f"{gw.base}/api/call/hangup",
                        json={"call_id": body["call_id"], "client_token": body["client_token"]},
                    ) as resp:
                        await resp.read()
                    async with asyncio.timeout(20):
                        while await gw.bridge.ended.get() != body["call_id"]:
                            pass
                    begin = time.perf_counter()
                    async with http.post(
                        f"{base_url}/realtime/calls",
                        data=offer,
                        headers={**headers, "Content-Type": "application/sdp"},
                    ) as resp:
                        await resp.read()
                        location = resp.headers.get("Location", "")
                    direct.append((time.perf_counter() - begin) * 1000)
                    if location:
                        call_url = base_url.removesuffix("/v1") + location + "/hangup"
                        async with http.post(call_url, headers=headers) as resp:
                            await resp.read()
    first = {"through_gateway_ms": through[0], "direct_to_upstream_ms": direct[0]}
    if calls > 1:  # the first call also loads the OpenAI SDK into the gateway (lazy import)
        bootstrap, webrtc, through, direct = bootstrap[1:], webrtc[1:], through[1:], direct[1:]
    through_s, direct_s = summary(through, "ms"), summary(direct, "ms")
    overhead = [t - d for t, d in zip(through, direct, strict=True)]
    return {
        "calls": calls,
        "first_call": first,
        "bootstrap_ms": summary(bootstrap, "ms"),
        "webrtc_offer_ms": summary(webrtc, "ms"),
        "through_gateway_ms": through_s,
        "direct_to_upstream_ms": direct_s,
        "overhead_ms": summary(overhead, "ms"),
        "ratio_to_direct": through_s["median"] / direct_s["median"],
        "samples_ms": overhead,
    }
