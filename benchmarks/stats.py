"""Percentiles of small samples (nearest rank) and the Prometheus text format."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: with 25 samples p99 is the largest, p50 the 13th."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def metric(text: str, name: str) -> float:
    """One unlabelled sample from a Prometheus exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return float(sample.value)
    return 0.0


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def summary(seconds: list[float]) -> dict[str, Any]:
    """p50 and p99 in ms of timings in seconds, and how many there were."""
    return {
        "p50_ms": ms(percentile(seconds, 0.5)),
        "p99_ms": ms(percentile(seconds, 0.99)),
        "runs": len(seconds),
    }
