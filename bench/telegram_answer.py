"""A Telegram text message → the first edit of Codex's answer in the chat.

The real ``bridgehost telegram`` process, bound to a Codex thread, talks to the Bot API
stand-in (``tests/fakes/telegram_api.py``, in this process on 127.0.0.1) and to the real
``codex app-server`` (``$BRIDGEHOST_CODEX_BIN``, else ``.codex-npm``) whose model provider is
the loopback stand-in ``tests/fakes/codex_model.py`` (it answers ``FAKE-REPLY to: <text>`` at
once). No gateway runs: text outside a call goes to the bound thread all the same.

Per message, from the stand-in queuing the update: the placeholder (``sendMessage``) and the
first ``editMessageText`` that carries the answer. The bridge long-polls ``getUpdates``, so
both include the poll's hand-over. The first message also starts the app-server; it is
reported on its own and left out of the medians.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _gateway import (
    BRIDGEHOST,
    ROOT,
    USER_ID,
    _wait_ready,
    codex_binary,
    free_port,
    new_secrets,
    service_env,
    write_gateway_config,
)
from _procs import notify_socket
from _stats import summary

POLL_S = 0.002
ANSWER_TIMEOUT_S = 30.0


async def _first_call(api: Any, since: int, method: str, needle: str) -> float:
    """Wait (bounded) for the first Bot API call ``method`` after ``since`` whose text holds
    ``needle``; return the moment it was seen (``perf_counter``)."""
    async with asyncio.timeout(ANSWER_TIMEOUT_S):
        while True:
            for call in api.calls[since:]:
                if call.method.lower() == method.lower() and needle in call.params.get("text", ""):
                    return time.perf_counter()
            await asyncio.sleep(POLL_S)


async def telegram_answer(messages: int) -> dict[str, Any]:
    """``messages`` sequential texts; message → placeholder, and → first answer edit, in ms."""
    sys.path.insert(0, str(ROOT / "tests"))
    from bridgehost.codex import AppServerClient
    from bridgehost.state.bridge_store import BridgeStore
    from fakes.codex_model import (
        CODEX_ENV,
        FakeCodexModel,
        codex_home_config,
        seed_thread,
    )
    from fakes.telegram_api import FakeBotApi

    binary = codex_binary()
    secrets = new_secrets()
    placeholder: list[float] = []
    answered: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-telegram-") as tmp, FakeCodexModel() as model:
        root = Path(tmp)
        home, work = root / "codex-home", root / "work"
        home.mkdir()
        work.mkdir()
        (home / "config.toml").write_text(codex_home_config(model.port))
        env = service_env(root / "tg", {**secrets, **CODEX_ENV})
        os.environ.update(CODEX_ENV)
        seeder = await AppServerClient.spawn(binary, home, cwd=work, timeout=20)
        try:
            thread_id = await seed_thread(seeder, work, ["We are refactoring the billing module"])
        finally:
            await seeder.close()
        async with FakeBotApi(token=secrets["TELEGRAM_BOT_TOKEN"], max_poll_wait=5.0) as api:
            config = write_gateway_config(root / "tg", free_port())
            config.write_text(
                config.read_text().replace(
                    "[telegram]\n", f'[telegram]\napi_base_url = "{api.root}"\npoll_timeout_s = 5\n'
                )
                + f'[codex]\nbinary = "{binary}"\nhome = "{home}"\n'
            )
            store = BridgeStore.open(root / "tg" / "state")
            store.bind(thread_id)
            store.close()
            with notify_socket() as (sock, path), (root / "telegram.log").open("wb") as log:
                proc = subprocess.Popen(
                    [BRIDGEHOST, "--config", str(config), "telegram"],
                    env={**env, "NOTIFY_SOCKET": path},
                    stdout=log,
                    stderr=log,
                )
                try:
                    await _wait_ready(sock, proc)
                    for n in range(messages + 1):
                        text = f"Question number {n}: what did we decide?"
                        since = len(api.calls)
                        api.push_message(USER_ID, text)
                        begin = time.perf_counter()
                        sent = await _first_call(api, since, "sendMessage", "")
                        edited = await _first_call(api, since, "editMessageText", "FAKE-REPLY")
                        placeholder.append((sent - begin) * 1000)
                        answered.append((edited - begin) * 1000)
                finally:
                    proc.terminate()
                    try:
                        await asyncio.to_thread(proc.wait, 10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        await asyncio.to_thread(proc.wait)
    return {
        "messages": messages,
        "first_message_to_answer_ms": answered[0],
        "message_to_placeholder_ms": summary(placeholder[1:], "ms"),
        "message_to_first_answer_edit_ms": summary(answered[1:], "ms"),
    }


__all__ = ["telegram_answer"]
