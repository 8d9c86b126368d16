"""The latency a delegation adds before Codex's first words reach GPT-Live.

One ``gpt-live`` session against the GPT-Live stand-in (tests/fakes/openai_live.py, aiortc on
127.0.0.1) delegates ``rounds`` times. The gateway's :class:`Delegations` sends each one to a
loopback bridge that answers at once with a progress frame, then a result (every frame is
serialized and parsed as on ``/ws/bridge``). The figure is the time from the stand-in sending
``session.delegation.created`` to it receiving the first ``session.thinking.append`` for it:
everything bridgehost adds (waiting for the transcript to cover the delegation, building the
request, both hops of the control channel, the append) except Codex itself; and from
``session.delegation.created`` to the answer (``session.commentary.append``).

With ``codex=True`` the bridge is the real :class:`~bridgehost.telegram.call_delegations.
CallDelegator`: a read-only turn on a bound thread of the real ``codex app-server``
(``$BRIDGEHOST_CODEX_BIN``, else ``.codex-npm``) whose model is the loopback stand-in
``tests/fakes/codex_model.py``, through one shared :class:`~bridgehost.codex.turns.TurnRunner`
opened before the call, as in ``bridge-telegram``.
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

from _gateway import codex_binary
from _stats import summary

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "sk-bench-gpt-live"


async def _codex_delegator(stack: contextlib.AsyncExitStack, send: Any) -> Any:
    """A :class:`CallDelegator` on a fresh thread of the real codex with the loopback model."""
    from bridgehost.codex import AppServerClient
    from bridgehost.codex.turns import TurnRunner
    from bridgehost.config import CodexConfig
    from bridgehost.telegram.call_delegations import CallDelegator
    from fakes.codex_model import (
        CODEX_ENV,
        FakeCodexModel,
        codex_home_config,
        seed_thread,
    )

    binary = codex_binary()
    os.environ.update(CODEX_ENV)
    model = stack.enter_context(FakeCodexModel())
    root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-delegate-")))
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
    stack.push_async_callback(runner.close)
    async with runner.thread_connection(thread_id):
        pass  # the bridge's connection is up before the call

    async def post(text: str) -> None:
        pass

    delegator = CallDelegator(runner, thread_of=lambda: thread_id, send=send, post=post)
    stack.push_async_callback(delegator.close)
    return delegator


async def delegation_latency(rounds: int, *, codex: bool = False) -> dict[str, Any]:
    """Median (and spread) of delegation received → first progress append, and → answer, in
    ms; the bridge answers at once, or (``codex``) with a real Codex turn."""
    sys.path.insert(0, str(ROOT / "tests"))
    from bridgehost.builtin import gpt_live
    from bridgehost.config import Secrets, validate_config
    from bridgehost.gateway.delegations import Delegations
    from bridgehost.plugins import PluginHost
    from bridgehost.protocol.bridge import (
        CallDelegate,
        CallDelegateProgress,
        CallDelegateResult,
        Frame,
        parse_from_bridge,
        parse_from_gateway,
    )
    from bridgehost.providers import SessionSetup
    from fakes.openai_live import FakeLive
    from fakes.webrtc_caller import Caller

    script: list[tuple[str, str | None]] = []
    for i in range(rounds):
        script += [("user", f"Question number {i}, please"), ("delegate", None)]
    async with (
        contextlib.AsyncExitStack() as stack,
        FakeLive(api_key=API_KEY, script=script, usage_every_s=60) as fake,
    ):
        os.environ["OPENAI_BASE_URL"] = fake.base_url
        host = PluginHost()
        host.register(gpt_live, "gpt-live")
        config = validate_config({"realtime": {"backend": "gpt-live"}}, env={})
        backend = host.build(
            host.select("realtime_backends", "gpt-live"),
            config,
            Secrets(env={"OPENAI_API_KEY": API_KEY}),
        )
        await backend.start()

        class Log:
            async def gateway_event(self, session: Any, event: dict[str, Any]) -> None:
                pass

        class Hub:
            on_delegation_frame: Any = None
            on_connected: Any = None

            async def send_to(self, bridge_id: str, frame: Frame) -> bool:
                parsed = parse_from_gateway(frame.to_json())
                if delegator is not None:
                    await delegator.on_frame(parsed)
                elif isinstance(parsed, CallDelegate):
                    ids = {
                        "call_id": parsed.call_id,
                        "delegation_id": parsed.delegation_id,
                        "revision": parsed.revision,
                    }
                    for reply in (
                        CallDelegateProgress(**ids, text="Looking"),
                        CallDelegateResult(**ids, ok=True, answer="Done."),
                    ):
                        await delegations.on_frame(parse_from_bridge(reply.to_json()))
                return True

        class Events:
            async def event(self, event: Any) -> None:
                pass

            async def audio(self, chunk: bytes) -> None:
                pass

            async def ended(self, reason: str) -> None:
                pass

        class Record:
            bridge_id = "bridge"

        async def to_gateway(reply: Frame) -> None:
            await delegations.on_frame(parse_from_bridge(reply.to_json()))

        delegations = Delegations(Log(), Hub(), timeout_s=30)  # type: ignore[arg-type]
        delegator = await _codex_delegator(stack, to_gateway) if codex else None
        session = await backend.open_session(
            SessionSetup(call_id="bench", instructions="Persona", max_call_ms=600_000), Events()
        )

        class Call:
            call_id = "bench"
            record = Record()
            backend = session
            ended = asyncio.Event()

        delegations.attach(Call())  # type: ignore[arg-type]
        caller = Caller()
        try:
            await caller.connect(await session.answer_offer(await caller.offer()))
            live = fake.last()
            await fake.wait_until(
                lambda: len(live.commentary) >= rounds, timeout=30 + (10 if codex else 1) * rounds
            )
            created = {
                e["delegation"]["id"]: live.sent_at[e["event_id"]]
                for e in live.events
                if e["type"] == "session.delegation.created"
            }
            first: dict[str, float] = {}
            answer: dict[str, float] = {}
            for (_via, event), at in zip(live.client_events, live.received_at, strict=True):
                if event.get("type") == "session.thinking.append":
                    first.setdefault(str(event.get("delegation_id")), at)
                elif event.get("type") == "session.commentary.append":
                    answer.setdefault(str(event.get("delegation_id")), at)
            latencies = [first[d] - at for d, at in created.items() if d in first]
            answers = [answer[d] - at for d, at in created.items() if d in answer]
        finally:
            await session.close("bench_end")
            await caller.close()
            await backend.stop()
    return {
        "rounds": rounds,
        "bridge": "codex (loopback model)" if codex else "answers at once",
        "delegation_to_first_progress_ms": summary([1000 * s for s in latencies], "ms")
        if latencies
        else None,
        "delegation_to_answer_ms": summary([1000 * s for s in answers], "ms"),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


__all__ = ["delegation_latency"]
