"""``bridgehost telegram`` as a real process: sd_notify, /call, SIGTERM; refusing bad configs."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tg_harness import BOT_TOKEN, CHAT, CONTROL_SECRET, bridge_config, wait_button

from bridgehost.state.bridge_store import BridgeStore
from bridgehost.testing import NotifyRecorder

BRIDGEHOST = str(Path(sys.executable).with_name("bridgehost"))


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")
    }
    return {
        **env,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "REALTIME_CONTROL_SECRET": CONTROL_SECRET,
        **extra,
    }


async def test_bridgehost_telegram_process(tmp_path, tg, gateway_factory):
    gw = await gateway_factory(connect_bridge=False)
    store = BridgeStore.open(gw.loaded.config.storage.root)
    store.bind("thread-abc")
    store.close()
    loaded = bridge_config(tmp_path, tg, gateway_raw=gw.loaded.raw)
    recorder = NotifyRecorder.abstract()
    log_path = tmp_path / "bridge-telegram.log"
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            BRIDGEHOST,
            "--config",
            str(loaded.path),
            "telegram",
            env=_env(NOTIFY_SOCKET=recorder.address, WATCHDOG_USEC="1000000"),
            stdout=log_file,
            stderr=log_file,
        )
        try:
            ready = await recorder.wait_for_async("READY", "1", timeout=20)
            assert ready["STATUS"].startswith(("connected to gateway", "waiting for gateway"))
            await recorder.wait_for_async(
                "STATUS", "connected to gateway; thread thread-abc bound", timeout=10
            )
            await recorder.wait_for_async("WATCHDOG", "1", timeout=5)
            assert gw.gateway.hub.connected("bridge")

            tg.push_message(CHAT, "/call")
            _message, url = await wait_button(tg, timeout=15)
            async with gw.http.get(url) as resp:
                assert resp.status == 200

            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
            await recorder.wait_for_async("STOPPING", "1", timeout=5)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            recorder.close()
    assert b"Traceback" not in log_path.read_bytes()


async def test_missing_secret_or_chat_exits_2_with_the_fix(tmp_path, tg):
    loaded = bridge_config(tmp_path, tg)
    text = loaded.path.read_text().replace("authorized_chat_id = 4242\n", "")
    loaded.path.write_text(text)
    env = _env()
    del env["TELEGRAM_BOT_TOKEN"]
    proc = await asyncio.create_subprocess_exec(
        BRIDGEHOST,
        "--config",
        str(loaded.path),
        "telegram",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"TELEGRAM_BOT_TOKEN" in err and b"bridgectl telegram discover" in err
