"""The latency a delegation adds before Codex's first words reach GPT-Live.

One ``gpt-live`` session against the GPT-Live stand-in (tests/fakes/openai_live.py, aiortc on
127.0.0.1) delegates ``rounds`` times. The gateway's :class:`Delegations` sends each one to a
loopback bridge that answers at once with a progress frame, then a result (every frame is
serialized and parsed as on ``/ws/bridge``). The figure is the time from the stand-in sending
``session.delegation.created`` to it receiving the first ``session.thinking.append`` for it:
everything bridgehost adds (waiting for the transcript to cover the delegation, building the
request, both hops of the control channel, the append) except Codex itself.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from _stats import summary

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "sk-bench-gpt-live"


async def delegation_latency(rounds: int) -> dict[str, Any]:
    """Median (and spread) of delegation received → first progress append, in ms."""
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
    async with FakeLive(api_key=API_KEY, script=script, usage_every_s=60) as fake:
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
                if isinstance(parsed, CallDelegate):
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

        delegations = Delegations(Log(), Hub(), timeout_s=30)  # type: ignore[arg-type]
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
            await fake.wait_until(lambda: len(live.commentary) >= rounds, timeout=30 + rounds)
            created = {
                e["delegation"]["id"]: live.sent_at[e["event_id"]]
                for e in live.events
                if e["type"] == "session.delegation.created"
            }
            first: dict[str, float] = {}
            for (_via, event), at in zip(live.client_events, live.received_at, strict=True):
                if event.get("type") == "session.thinking.append":
                    first.setdefault(str(event.get("delegation_id")), at)
            latencies = [first[d] - at for d, at in created.items() if d in first]
        finally:
            await session.close("bench_end")
            await caller.close()
            await backend.stop()
    return {
        "rounds": rounds,
        "delegation_to_first_progress_ms": summary([1000 * s for s in latencies], "ms"),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


__all__ = ["delegation_latency"]
