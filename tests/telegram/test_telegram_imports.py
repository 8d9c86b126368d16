"""``bridgehost telegram`` starts without the OpenAI SDK, aiortc, the gateway's server side or
``bridgehost.ctl``: after ``READY=1`` the process has imported none of them (the summarizer
loads the SDK for the first handoff).

The real command line runs under the wrapper of ``tests/gateway/test_gateway_imports.py``, which
writes ``sys.modules`` to a file when the process exits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from tg_harness import BOT_TOKEN, CONTROL_SECRET, bridge_config

from gateway.test_gateway_imports import RECORD_MODULES, offending

NOT_AT_START = ("openai", "aiortc", "bridgehost.ctl", "bridgehost.gateway")
"""Packages bridge-telegram must not import to start polling."""


async def test_bridge_start_imports_no_sdk_media_gateway_or_ctl(tmp_path, tg):
    from bridgehost.testing import NotifyRecorder

    loaded = bridge_config(tmp_path, tg)
    recorder = NotifyRecorder.abstract()
    out = tmp_path / "modules.txt"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")
    }
    env.update(
        TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        REALTIME_CONTROL_SECRET=CONTROL_SECRET,
        NOTIFY_SOCKET=recorder.address,
        MODULES_OUT=str(out),
    )
    with (tmp_path / "bridge.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            RECORD_MODULES,
            "--config",
            str(loaded.path),
            "telegram",
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            await recorder.wait_for_async("READY", "1", timeout=30)
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            recorder.close()
    modules = set(out.read_text().split())
    assert {"telegram.ext", "bridgehost.telegram.daemon"} <= modules
    assert offending(modules, NOT_AT_START) == []
