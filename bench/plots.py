"""PNG plots of a benchmark report (matplotlib, from the optional ``bench`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_plots(report: dict[str, Any], directory: Path) -> list[Path]:
    """Plot RSS over sequential calls and the latency distributions; return the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    results = report["results"]
    stamp = (
        f"{report['date'][:10]}, {report['machine']['cores']} cores, {report['machine']['python']}"
    )
    written: list[Path] = []

    if "call_memory" in results:
        memory = results["call_memory"]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        xs, ys = zip(*memory["series"], strict=True)
        ax.plot(xs, ys, marker=".", label="bridge-gateway")
        floor = results.get("startup", {}).get("floor", {}).get("rss_mib")
        if floor:
            ax.axhline(floor["median"], color="grey", linestyle="--", label="bare aiohttp app")
        ax.set_xlabel("sequential calls")
        ax.set_ylabel("RSS (MiB)")
        ax.set_ylim(bottom=0)
        ax.set_title(f"Gateway memory over {memory['calls']} calls ({stamp})", fontsize=9)
        ax.legend(loc="lower right")
        fig.tight_layout()
        written.append(directory / "rss-over-calls.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    panels = [
        (name, label, results[name][key], results[name].get(base_key) or [], base_label)
        for name, key, label, base_key, base_label in (
            (
                "relay",
                "samples_ms",
                "relayed 20 ms frame round trip",
                "floor_samples_ms",
                "bare aiohttp echo",
            ),
            ("flood", "samples_ms", "call event ack, under flood", "quiet_samples_ms", "quiet"),
            ("proxy", "samples_ms", "bootstrap + offer, gateway overhead", "", ""),
        )
        if name in results
    ]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
        for ax, (_name, label, samples, baseline, base_label) in zip(axes[0], panels, strict=True):
            top = max(max(samples), max(baseline or [0]))
            bins = [top * i / 60 for i in range(61)]
            ax.hist(samples, bins=bins, alpha=0.7, label=label)
            if baseline:
                ax.hist(baseline, bins=bins, alpha=0.5, label=base_label)
            ax.set_xlabel("ms")
            ax.set_ylabel("count")
            ax.set_yscale("log")
            ax.legend(fontsize=8)
        fig.suptitle(f"Latency distributions ({stamp})", fontsize=9)
        fig.tight_layout()
        written.append(directory / "latency-distributions.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written
