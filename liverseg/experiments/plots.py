"""Figures of a comparison: per-patient scores with the mean ± sd over seeds."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from liverseg.experiments.comparison import Comparison


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


def rounds_plot(comparison: Comparison, variant: str, metric: str = "dice",
                paper: Mapping | None = None, ax=None):
    """Fig. 16: ``metric`` per round of Algorithm 1 on validation and test, mean ± sd over
    seeds (bands), with the paper's curves (dashed) when ``paper`` is Table 5. Returns the axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    runs = comparison.runs_of(variant)
    n_rounds = max(len(run["self_training"]) for run in runs)
    for k, subset in enumerate(("val", "test")):
        means, sds = [], []
        for n in range(n_rounds):
            values = [run["self_training"][n][subset][metric] for run in runs
                      if len(run["self_training"]) > n and subset in run["self_training"][n]]
            means.append(np.mean(values))
            sds.append(np.std(values, ddof=1) if len(values) > 1 else 0.0)
        means, sds = np.asarray(means), np.asarray(sds)
        rounds = np.arange(n_rounds)
        ax.plot(rounds, means, "o-", color=f"C{k}", label=f"ours, {subset}")
        ax.fill_between(rounds, means - sds, means + sds, color=f"C{k}", alpha=0.2)
        if paper is not None and metric in paper:
            ax.plot(paper["iterations"], paper[metric][subset], "--", color=f"C{k}",
                    alpha=0.6, label=f"paper, {subset}")
    ax.set_xlabel("round N of Algorithm 1")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
