"""A bridge process in miniature, for crash tests: runs the handoff pipeline on a stored call.

``python handoff_crash_driver.py CONFIG CALL_ID [--pause before-enqueue|after-enqueue]
[--no-offer]``. It starts the pipeline (which recovers what an earlier run left), offers the
call as the daemon does (unless ``--no-offer``: then only recovery finds it), waits until every
delivery is settled and prints ``DONE <deliveries JSON>``. ``--pause`` prints ``PAUSED <where>``
and blocks at that point so the test can ``SIGKILL`` the process there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import handoff_counting_sink
import structlog
from handoff_helpers import plugin_host

from bridgehost.config import load_config
from bridgehost.handoff import Outbox, Pipeline, deliveries
from bridgehost.state.bridge_store import BridgeStore


def pause(where: str) -> None:
    """Announce the point and block the whole process there (the test kills it)."""
    print(f"PAUSED {where}", flush=True)
    time.sleep(3600)


def install_pause(where: str | None) -> None:
    original = Outbox.enqueue

    def enqueue(self: Outbox, *args: object, **kwargs: object) -> bool:
        if where == "before-enqueue":
            pause(where)
        created = original(self, *args, **kwargs)  # type: ignore[arg-type]
        if where == "after-enqueue":
            pause(where)
        return created

    Outbox.enqueue = enqueue  # type: ignore[method-assign]


async def main(args: argparse.Namespace) -> None:
    loaded = load_config(Path(args.config), env={})
    store = BridgeStore.open(loaded.config.storage.root)
    host = plugin_host()
    host.register(handoff_counting_sink, "counting-plugin")
    pipeline = Pipeline(loaded.config, loaded.secrets, store, plugins=host, attempt_timeout_s=10)
    install_pause(args.pause)
    await pipeline.start()
    if not args.no_offer:
        await pipeline.call_ended(args.call_id)
    async with asyncio.timeout(30):
        while True:
            rows = deliveries(store, args.call_id)
            if rows and all(r["status"] in ("delivered", "failed") for r in rows):
                break
            await asyncio.sleep(0.05)
    await pipeline.stop()
    print("DONE " + json.dumps(rows), flush=True)
    store.close()


if __name__ == "__main__":
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("call_id")
    parser.add_argument("--pause", choices=["before-enqueue", "after-enqueue"])
    parser.add_argument("--no-offer", action="store_true")
    asyncio.run(main(parser.parse_args()))
