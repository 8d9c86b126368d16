"""Run bridgehost's benchmarks: one command, pinned inputs, loopback stand-ins only.

    .venv/bin/python bench/run.py            # the full run (a few minutes), figures to
                                             # bench/results.json, plots to docs/img/
    .venv/bin/python bench/run.py --quick    # every benchmark with tiny counts: does it run?

Each figure is a median with its spread (p25–p75, and p99) over repeated measurements, and a
ratio to a baseline measured in the same run where one exists (a bare aiohttp app for start-up,
memory and relayed audio; the quiet gateway for call events under a flood). Every loop is
bounded in count and time; every socket is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import calls
import codex_handoff
import delegation
import proxy
import startup
import telegram_answer
from _stats import show

ROOT = Path(__file__).resolve().parent.parent

Bench = tuple[str, Callable[[], Any], Callable[[], Any]]
"""(name, the full run, the quick run): each returns a JSON-able result."""

BENCHMARKS: list[Bench] = [
    ("startup", lambda: startup.startup(rounds=9), lambda: startup.startup(rounds=1)),
    (
        "call_memory",
        lambda: asyncio.run(calls.call_memory(calls=1000, sample_every=25)),
        lambda: asyncio.run(calls.call_memory(calls=3, sample_every=1)),
    ),
    (
        "proxy",
        lambda: asyncio.run(proxy.proxy(calls=100)),
        lambda: asyncio.run(proxy.proxy(calls=2)),
    ),
    (
        "event_ingest",
        lambda: asyncio.run(calls.event_ingest(rounds=10, events=300)),
        lambda: asyncio.run(calls.event_ingest(rounds=2, events=5)),
    ),
    (
        "relay",
        lambda: asyncio.run(calls.relay(calls=10, frames=500)),
        lambda: asyncio.run(calls.relay(calls=2, frames=5)),
    ),
    (
        "delegation",
        lambda: asyncio.run(delegation.delegation_latency(rounds=20)),
        lambda: asyncio.run(delegation.delegation_latency(rounds=2)),
    ),
    (
        "delegation_codex",
        lambda: asyncio.run(delegation.delegation_latency(rounds=10, codex=True)),
        lambda: asyncio.run(delegation.delegation_latency(rounds=1, codex=True)),
    ),
    (
        "handoff",
        lambda: asyncio.run(codex_handoff.handoff_to_codex(calls=20)),
        lambda: asyncio.run(codex_handoff.handoff_to_codex(calls=1)),
    ),
    (
        "telegram_answer",
        lambda: asyncio.run(telegram_answer.telegram_answer(messages=20)),
        lambda: asyncio.run(telegram_answer.telegram_answer(messages=1)),
    ),
    (
        "flood",
        lambda: asyncio.run(calls.flood(events=300, bootstraps=3000, slow=200)),
        lambda: asyncio.run(calls.flood(events=5, bootstraps=20, slow=5)),
    ),
]


def machine() -> dict[str, Any]:
    """Where the figures come from: cores, memory, Python, load."""
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "ram_gib": round(total_kib / 1024 / 1024, 1),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg(),
    }


def _print_figures(name: str, result: Any, prefix: str = "") -> None:
    if isinstance(result, dict):
        if "median" in result and "unit" in result:
            print(show(f"{prefix}{name}", result))
            return
        for key, value in result.items():
            if key.endswith(("samples_ms", "series")):
                continue
            _print_figures(key, value, f"{prefix}{name}.")
    elif isinstance(result, (int, float, str)):
        print(
            f"{prefix}{name}: {result:.3f}"
            if isinstance(result, float)
            else f"{prefix}{name}: {result}"
        )


def _write_plots(report: dict[str, Any], directory: Path) -> None:
    """The PNG plots, or one line saying how to get them when matplotlib is missing (the
    figures are printed and saved either way)."""
    try:
        import matplotlib  # noqa: F401  (the optional ``bench`` extra)
    except ImportError:
        print("no plots: matplotlib is missing; run .venv/bin/pip install -e '.[bench]'")
        return
    from plots import write_plots

    for path in write_plots(report, directory):
        print(f"plot: {path}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; exit non-zero if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts: check that all run")
    parser.add_argument("--only", action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--out", type=Path, help="where to write the JSON results")
    parser.add_argument("--plots", type=Path, help="write PNG plots there (needs matplotlib)")
    args = parser.parse_args(argv)
    from bridgehost.logging import configure_logging

    configure_logging("bench", level="ERROR")
    out = args.out or (None if args.quick else ROOT / "bench" / "results.json")
    plots = args.plots or (None if args.quick else ROOT / "docs" / "img")
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "bench/run.py", *(argv or sys.argv[1:])]),
        "quick": args.quick,
        "machine": machine(),
        "results": {},
        "errors": {},
    }
    for name, full, quick in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        begin = time.monotonic()
        print(f"==> {name}", flush=True)
        try:
            result = (quick if args.quick else full)()
        except Exception as exc:
            report["errors"][name] = f"{type(exc).__name__}: {exc}"
            print(f"{name} FAILED: {type(exc).__name__}: {exc}", flush=True)
            continue
        report["results"][name] = result
        _print_figures(name, result)
        print(f"({name} took {time.monotonic() - begin:.1f} s)", flush=True)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    if out is not None:
        out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"results: {out}")
    if plots is not None and report["results"]:
        _write_plots(report, plots)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
