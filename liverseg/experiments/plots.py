"""Figures of a comparison: per-patient scores with the mean ± sd over seeds."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from liverseg.experiments.compare import Comparison


def strip_plot(comparison: Comparison, labels: Mapping[str, str] | None = None,
               metric: str = "dice", ax=None):
    """Each variant's test score per patient (dots, one colour per seed) and the mean ± sd
    over seeds of the per-seed means (black square and bar). Returns the axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    labels = labels or {}
    summary = comparison.summary()
    for x, name in enumerate(comparison.variants):
        for k, run in enumerate(comparison.runs_of(name)):
            values = [case[metric] for case in run["test_cases"]]
            offsets = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [0.0]
            ax.scatter(x + np.asarray(offsets), values, s=14, color=f"C{k}", alpha=0.7,
                       label=f"seed {run['seed']}" if x == 0 else None)
        cell = summary[name][metric]
        ax.errorbar(x + 0.3, cell["mean"], yerr=cell["sd"], fmt="s", color="black", capsize=4,
                    label="mean ± sd over seeds" if x == 0 else None)
    ax.set_xticks(range(len(comparison.variants)))
    ax.set_xticklabels([labels.get(n, n) for n in comparison.variants], rotation=15, ha="right")
    ax.set_ylabel(f"test {metric}, per patient")
    ax.set_ylim(0, 1.02)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return ax
