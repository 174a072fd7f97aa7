"""Markdown tables of a comparison's summary, with the paper's numbers beside ours."""

from __future__ import annotations

from typing import Mapping, Sequence

from liverseg.experiments.compare import Comparison

LABELS = {"accuracy": "accuracy", "dice": "Dice", "iou": "IoU", "miou": "mIoU"}


def mean_sd(cell: Mapping, digits: int = 3) -> str:
    """``"0.912 ± 0.013"`` of a :func:`~liverseg.experiments.spread` cell (no ± for one seed)."""
    if not cell["n"]:
        return "–"
    if cell["n"] == 1:
        return f"{cell['mean']:.{digits}f}"
    return f"{cell['mean']:.{digits}f} ± {cell['sd']:.{digits}f}"


def summary_table(
    comparison: Comparison,
    metrics: Sequence[str] = ("accuracy", "dice", "miou"),
    paper: Mapping | None = None,
    paper_columns: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """A Markdown table: one row per variant, ``metric`` mean ± sd over seeds on the test
    patients, the collapse rate, and — given ``paper`` (a table of
    :mod:`~liverseg.experiments.paper_tables`) and ``paper_columns`` (variant name → the
    paper's column) — the paper's value of each metric beside ours."""
    summary = comparison.summary()
    labels = dict(labels or {})
    header = ["variant"]
    for metric in metrics:
        header.append(f"{LABELS.get(metric, metric)} (ours)")
        if paper:
            header.append(f"{LABELS.get(metric, metric)} (paper)")
    header += ["collapsed", "seeds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in summary.items():
        cells = [labels.get(name, name)]
        for metric in metrics:
            cells.append(mean_sd(row[metric]))
            if paper:
                cells.append(_paper_value(paper, (paper_columns or {}).get(name), metric))
        cells += [f"{row['collapse_rate'] * row['seeds']:.0f} / {row['seeds']}", str(row["seeds"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _paper_value(paper: Mapping, column: str | None, metric: str) -> str:
    if column is None or metric not in paper["rows"]:
        return "–"
    return f"{paper['rows'][metric][paper['columns'].index(column)]:.4f}"


def describe_difference(difference: Mapping, digits: int = 3) -> str:
    """A sentence fragment for :meth:`Comparison.difference`: the mean ± sd of the paired
    differences and whether it lies within the noise of the seeds."""
    n = difference["n"]
    value = f"{difference['mean']:+.{digits}f}"
    if n < 2:
        return f"{value} (one seed: the noise is not measured)"
    noise = "within" if difference["within_noise"] else "outside"
    return (f"{value} ± {difference['sd']:.{digits}f} over {n} seeds, {noise} the noise "
            "(paired t-test, 95 %)")
