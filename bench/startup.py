"""Start-up and idle memory of both services against the floor (bench/floor_app.py), in one
run, rounds interleaved so that machine load falls on all three alike."""

from __future__ import annotations

import asyncio
import compileall
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _gateway import BRIDGEHOST, ROOT, free_port, new_secrets, service_env, write_gateway_config
from _procs import started
from _stats import ratio, summary


@contextmanager
def fake_bot_api(token: str) -> Iterator[str]:
    """The loopback Bot API stand-in (tests/fakes) on its own thread; yields its root URL."""
    sys.path.insert(0, str(ROOT / "tests"))
    from fakes.telegram_api import FakeBotApi

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    api = FakeBotApi(token=token, max_poll_wait=1.0)

    async def serve() -> None:
        await api.start()
        ready.set()
        while not stopping.is_set():
            await asyncio.sleep(0.05)
        await api.close()

    stopping = threading.Event()
    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the fake Bot API did not start")
    try:
        yield api.root
    finally:
        stopping.set()
        thread.join(10)
        loop.close()


def precompile() -> list[Path]:
    """Write the bytecode of bridgehost's own sources (and of the plugins kept in this repo).

    An installed wheel ships with bytecode (pip compiles it at install); an editable install
    does not, and with ``PYTHONDONTWRITEBYTECODE`` set every start would compile the sources
    again (tens of milliseconds). Compiling first measures what an installed service pays, on any
    shell; files that are already current are skipped.
    """
    roots = [ROOT / "src", *sorted((ROOT / "plugins").glob("*/src"))]
    for root in roots:
        if not compileall.compile_dir(root, quiet=1):
            raise RuntimeError(f"could not compile the sources under {root}")
    return roots


def _floor(tmp: Path) -> dict[str, Any]:
    port = free_port()
    argv = [sys.executable, str(Path(__file__).with_name("floor_app.py")), str(port)]
    with started(argv, service_env(tmp), port=port) as s:
        return {"ready_ms": s.ready_ms, "healthz_ms": s.healthz_ms, "rss_mib": s.rss_mib}


def _gateway(tmp: Path) -> dict[str, Any]:
    port = free_port()
    config = write_gateway_config(tmp, port)
    env = service_env(tmp, new_secrets())
    with started([BRIDGEHOST, "--config", str(config), "gateway"], env, port=port) as s:
        return {"ready_ms": s.ready_ms, "healthz_ms": s.healthz_ms, "rss_mib": s.rss_mib}


def _bridge(tmp: Path, api_root: str, secrets: dict[str, str]) -> dict[str, Any]:
    config = write_gateway_config(tmp, free_port())
    config.write_text(
        config.read_text().replace(
            "[telegram]\n", f'[telegram]\napi_base_url = "{api_root}"\npoll_timeout_s = 1\n'
        )
    )
    env = service_env(tmp, secrets)
    with started([BRIDGEHOST, "--config", str(config), "telegram"], env, port=None) as s:
        return {"ready_ms": s.ready_ms, "rss_mib": s.rss_mib}


def startup(rounds: int) -> dict[str, Any]:
    """``rounds`` starts of the floor, bridge-gateway and bridge-telegram, interleaved."""
    precompile()
    runs: dict[str, list[dict[str, Any]]] = {"floor": [], "gateway": [], "telegram": []}
    secrets = new_secrets()
    with fake_bot_api(secrets["TELEGRAM_BOT_TOKEN"]) as api_root:
        for n in range(rounds):
            with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
                root = Path(tmp)
                runs["floor"].append(_floor(root / "floor"))
                runs["gateway"].append(_gateway(root / f"gw{n}"))
                runs["telegram"].append(_bridge(root / f"tg{n}", api_root, secrets))
    result: dict[str, Any] = {"rounds": rounds}
    for name, values in runs.items():
        result[name] = {
            key: summary([v[key] for v in values], "MiB" if key == "rss_mib" else "ms")
            for key in values[0]
        }
    floor = result["floor"]
    for name in ("gateway", "telegram"):
        result[name]["ratio_to_floor"] = {
            key: ratio(result[name][key], floor[key]) for key in result[name] if key in floor
        }
    return result
