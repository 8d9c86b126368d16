"""``bridgehost gateway`` imports only what answering needs: after ``READY=1`` and a first
``/healthz`` 200, the process has not imported the OpenAI SDK, aiortc, python-telegram-bot or
``bridgehost.ctl`` (backends and sinks load theirs on first use).

The real ``bridgehost`` command line runs under a wrapper that writes ``sys.modules`` to a file
when the process exits (after SIGTERM), so the gateway itself needs no test hook.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp

from bridgehost.testing import NotifyRecorder
from gateway.conftest import free_port, secrets_env, write_config

NOT_AT_START = (
    "openai",
    "aiortc",
    "telegram",
    "bridgehost.ctl",
    "websockets",
    "bridgehost.builtin.openai._session",
    "bridgehost.builtin.gpt_live._session",
    "bridgehost.builtin.openai._backend",
    "bridgehost.builtin.gpt_live._backend",
    "bridgehost.builtin.cloudflared._tunnel",
    "ctypes",
    "difflib",
)
"""Packages the gateway must not import to start and answer ``/healthz`` (the realtime
backends' call sessions, with websockets, load with the first call; a provider that is not
selected, here the ``openai`` and ``gpt-live`` backends and the managed tunnel, loads nothing
beyond its registration; ``difflib`` only suggests a mistyped config key)."""

RECORD_MODULES = (
    "import atexit, os, sys\n"
    "def _dump():\n"
    "    with open(os.environ['MODULES_OUT'], 'w') as out:\n"
    "        out.write('\\n'.join(sorted(sys.modules)))\n"
    "atexit.register(_dump)\n"
    "sys.argv[0] = 'bridgehost'\n"
    "from bridgehost.cli import main\n"
    "main()\n"
)
"""``python -c`` code: run ``bridgehost`` and record every module it imported, at exit."""


def offending(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The modules that are ``packages`` or lie inside one of them."""
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def test_offending_matches_packages_and_their_modules():
    assert offending({"openai.types", "openaix", "telegramx", "telegram"}, NOT_AT_START) == [
        "openai.types",
        "telegram",
    ]


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")
    }
    return {**env, **secrets_env(), **extra}


async def test_gateway_start_imports_no_sdk_media_bot_or_ctl(tmp_path):
    port = free_port()
    config = write_config(tmp_path, port)
    recorder = NotifyRecorder.abstract()
    out = tmp_path / "modules.txt"
    with (tmp_path / "gateway.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            RECORD_MODULES,
            "--config",
            str(config),
            "gateway",
            env=_env(NOTIFY_SOCKET=recorder.address, MODULES_OUT=str(out)),
            stdout=log,
            stderr=log,
        )
        try:
            await recorder.wait_for_async("READY", "1", timeout=30)
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/healthz") as resp,
            ):
                assert resp.status == 200
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            recorder.close()
    modules = set(out.read_text().split())
    assert {"aiohttp.web", "bridgehost.gateway.service", "bridgehost.builtin.echo"} <= modules
    assert offending(modules, NOT_AT_START) == []
