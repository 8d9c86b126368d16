"""``bench/run.py --quick`` runs every benchmark with tiny counts and reports each one.

No timings are asserted: the benchmarks are the record (docs/performance.md); this only keeps
them runnable.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = {
    "startup",
    "call_memory",
    "proxy",
    "event_ingest",
    "relay",
    "delegation",
    "delegation_codex",
    "handoff",
    "telegram_answer",
    "flood",
}


def test_every_benchmark_runs_in_quick_mode(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True
    assert report["errors"] == {}
    assert set(report["results"]) == BENCHMARKS
    startup = report["results"]["startup"]
    assert startup["gateway"]["ratio_to_floor"]["healthz_ms"] > 0
    assert report["results"]["call_memory"]["calls"] == 3
    assert report["machine"]["cores"] >= 1


def test_without_matplotlib_the_figures_are_saved_and_one_line_names_the_fix(
    tmp_path, monkeypatch, capsys
):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import run
    finally:
        sys.path.remove(str(ROOT / "bench"))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    monkeypatch.setattr(run, "BENCHMARKS", [("tiny", lambda: {"n": 1}, lambda: {"n": 1})])
    out = tmp_path / "results.json"

    assert run.main(["--out", str(out), "--plots", str(tmp_path / "img")]) == 0

    printed = capsys.readouterr().out
    assert json.loads(out.read_text())["results"] == {"tiny": {"n": 1}}
    assert "tiny.n: 1" in printed
    lines = [line for line in printed.splitlines() if "plot" in line.split(":")[0]]
    assert lines == ["no plots: matplotlib is missing; run .venv/bin/pip install -e '.[bench]'"]
    assert not (tmp_path / "img").exists()
