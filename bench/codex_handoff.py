"""Call end → the handoff readable in the bound Codex thread, with the real ``codex`` binary.

A real gateway process (echo backend) and the demo bridge with the ``file`` and ``codex`` sinks
(``handoff.codex_mode = "turn"``, the default). Codex is the real ``codex app-server``
(``$BRIDGEHOST_CODEX_BIN``, else the npm install in ``.codex-npm``) with its model provider the
loopback stand-in ``tests/fakes/codex_model.py``: no key for any real service is set, and every
connection stays on 127.0.0.1. As in ``bridge-telegram``, the bridge holds one app-server
connection (a shared :class:`~bridgehost.codex.turns.TurnRunner`, opened before the first
call) and the sink appends through it.

Per call: bootstrap, five transcript events, then the clock starts at the page's hang-up. The
figures are the time until the pipeline has delivered to every sink (``delivered``) and until
the handoff's user message, with its marker line, is listed by ``thread/turns/list`` on that
connection (``readable``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _gateway import ROOT, codex_binary, running_gateway
from _stats import summary

SAID = "a pinned sentence of twelve words said by the caller in the call"
READ_POLL_S = 0.01
READ_TIMEOUT_S = 20.0


async def _readable(client: Any, thread_id: str, marker: str) -> bool:
    from bridgehost.codex.threads import item_text, iter_turns

    turns = iter_turns(client, thread_id, page_size=5, max_turns=5)
    async with contextlib.aclosing(turns):
        async for turn in turns:
            for item in turn.get("items") or []:
                if item.get("type") == "userMessage" and item_text(item).startswith(marker):
                    return True
    return False


async def handoff_to_codex(calls: int) -> dict[str, Any]:
    """``calls`` sequential calls; call end → delivered, and → readable in the thread, in ms."""
    sys.path.insert(0, str(ROOT / "tests"))
    from bridgehost.codex import AppServerClient
    from bridgehost.codex.turns import TurnRunner
    from bridgehost.config import CodexConfig
    from bridgehost.handoff import marker_line
    from fakes.codex_model import (
        CODEX_ENV,
        FakeCodexModel,
        codex_home_config,
        seed_thread,
    )

    binary = codex_binary()
    os.environ.update(CODEX_ENV)  # the loopback model's key, inherited by each app-server
    delivered: list[float] = []
    readable: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-handoff-") as tmp, FakeCodexModel() as model:
        root = Path(tmp)
        home, work = root / "codex-home", root / "work"
        home.mkdir()
        work.mkdir()
        (home / "config.toml").write_text(codex_home_config(model.port))
        seeder = await AppServerClient.spawn(binary, home, cwd=work, timeout=20)
        try:
            thread_id = await seed_thread(seeder, work, ["We are refactoring the billing module"])
        finally:
            await seeder.close()
        runner = TurnRunner.for_config(CodexConfig(binary=binary, home=home))
        runner.share(home)
        tables = (
            f'[codex]\nbinary = "{binary}"\nhome = "{home}"\nthread_id = "{thread_id}"\n'
            "[plugins.codex]\nturn_wait_s = 20\n"
        )
        try:
            async with running_gateway(
                root / "gw", tables=tables, sinks=("file", "codex"), thread_id=thread_id
            ) as gw:
                async with runner.thread_connection(thread_id):
                    pass  # the bridge's connection is up before the first call, as in production
                for _ in range(calls):
                    call = await gw.open_call()
                    for _ in range(5):
                        await gw.event(call, {"type": "user.transcript.final", "text": SAID})
                    begin = time.perf_counter()
                    await gw.hang_up(call)
                    delivered.append((time.perf_counter() - begin) * 1000)
                    marker = marker_line(call.call_id)
                    async with asyncio.timeout(READ_TIMEOUT_S):
                        while True:
                            async with runner.thread_connection(thread_id) as client:
                                if await _readable(client, thread_id, marker):
                                    break
                            await asyncio.sleep(READ_POLL_S)
                    readable.append((time.perf_counter() - begin) * 1000)
        finally:
            await runner.close()
    return {
        "calls": calls,
        "codex_mode": "turn",
        "call_end_to_delivered_ms": summary(delivered, "ms"),
        "call_end_to_readable_in_thread_ms": summary(readable, "ms"),
        "first_call_readable_ms": readable[0],
        "model_requests": len(model.requests),
    }


__all__ = ["handoff_to_codex"]
