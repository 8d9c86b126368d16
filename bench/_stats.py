"""Summaries of repeated measurements: median with its spread, percentiles, ratios."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values: Sequence[float], unit: str) -> dict[str, Any]:
    """Median, p25–p75, p99, min, max and count of ``values``, all in ``unit``."""
    return {
        "unit": unit,
        "n": len(values),
        "median": statistics.median(values),
        "p25": percentile(values, 0.25),
        "p75": percentile(values, 0.75),
        "p99": percentile(values, 0.99),
        "min": min(values),
        "max": max(values),
    }


def ratio(figure: dict[str, Any], baseline: dict[str, Any]) -> float:
    """``figure``'s median over ``baseline``'s median (both measured in the same run)."""
    return float(figure["median"] / baseline["median"])


def show(name: str, figure: dict[str, Any]) -> str:
    """One line: ``name: median (p25–p75, p99) unit``."""
    unit = figure["unit"]
    return (
        f"{name}: median {figure['median']:.2f} {unit} "
        f"(p25–p75 {figure['p25']:.2f}–{figure['p75']:.2f}, p99 {figure['p99']:.2f}, "
        f"n={figure['n']})"
    )
