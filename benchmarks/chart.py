"""The PNG chart of the main comparisons (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def draw(result: dict[str, Any], path: Path) -> None:
    figures = result["figures"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    cold = figures["cold_24mp"]
    for axis, label in zip(axes[0], ("200", "1024"), strict=True):
        names = ["inprocess_2011", "inprocess_best", "service"]
        values = [cold[label][name]["p50_ms"] for name in names]
        bars = axis.bar(
            ["2011 pipeline", "best in-process", "pymager (HTTP)"], values, color=["#b55", "#5a5", "#47b"]
        )
        axis.bar_label(bars, fmt="%.0f")
        axis.set_title(
            f"Cold 24 MP → {'200x200' if label == '200' else '1024x768'}, p50 (ms, lower is better)"
        )
    hits = figures["hits"]
    axis = axes[1][0]
    connections = list(next(iter(hits.values())))
    width = 0.8 / len(hits)
    for index, (server, by_c) in enumerate(hits.items()):
        xs = [position + index * width for position in range(len(connections))]
        axis.bar(xs, [by_c[c]["req_per_s"] for c in connections], width, label=server)
    axis.set_xticks([position + width * (len(hits) - 1) / 2 for position in range(len(connections))])
    axis.set_xticklabels([f"c={c.removeprefix('c')}" for c in connections])
    axis.set_yscale("log")
    axis.set_title("Cache hits (req/s, log scale, higher is better)")
    axis.legend()
    axis = axes[1][1]
    ratios = result["ratios"]
    targets = result["targets"]
    keys = [key for key in ratios if ratios[key] is not None]
    scores = [_score(ratios[key], targets[key]) for key in keys]
    axis.barh(keys, scores, color=["#5a5" if score >= 1 else "#b55" for score in scores])
    axis.axvline(1.0, color="black", linewidth=1)
    axis.set_title("Ratios relative to their target (≥ 1 holds)")
    axis.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"pymager benchmark, {result['machine']['mode']} mode, {result['machine']['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _score(value: float, target: dict[str, Any]) -> float:
    bound = float(target["bound"])
    return bound / value if target["at_most"] else value / bound
