"""Markdown tables of a comparison's summary, with the paper's numbers beside ours."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from liverseg.experiments.comparison import Comparison, spread

LABELS = {"accuracy": "accuracy", "dice": "Dice", "iou": "IoU", "miou": "mIoU"}


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence], right: Sequence[int] = ()) -> str:
    """A Markdown table of ``rows`` (each a sequence of cells, formatted with ``str``) under
    ``columns``; the columns at the indices ``right`` are right-aligned (numbers)."""
    rule = ["---:" if i in right else "---" for i in range(len(columns))]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def mean_sd(cell: Mapping, digits: int = 3, signed: bool = False) -> str:
    """``"0.912 ± 0.013"`` of a :func:`~liverseg.experiments.spread` cell (no ± for one seed);
    ``signed``: the mean with its sign (``"+0.012 ± 0.004"``), for a difference."""
    if not cell["n"]:
        return "–"
    mean = f"{cell['mean']:{'+' if signed else ''}.{digits}f}"
    if cell["n"] == 1:
        return mean
    return f"{mean} ± {cell['sd']:.{digits}f}"


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
    rows = []
    for name, row in summary.items():
        cells = [labels.get(name, name)]
        for metric in metrics:
            cells.append(mean_sd(row[metric]))
            if paper:
                cells.append(_paper_value(paper, (paper_columns or {}).get(name), metric))
        cells += [f"{row['collapse_rate'] * row['seeds']:.0f} / {row['seeds']}", str(row["seeds"])]
        rows.append(cells)
    return markdown_table(header, rows)


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


def reading_outcome(comparison: Comparison, literal: str, other: str,
                    metric: str = "dice") -> tuple[str, str]:
    """Whether the literal reading of an ambiguous sentence of the paper was refuted in
    ``comparison``: ``(outcome, fragment)``.

    The book keeps the most literal reading as the default unless an experiment shows it fail:
    the ``literal`` variant collapsed in some seed, or ``other`` is ahead of it on ``metric``
    outside the noise of the seeds (:meth:`Comparison.difference`). ``outcome`` is
    ``"failed"``, ``"not refuted"`` or, with one seed, ``"not tested"``; ``fragment`` a
    sentence fragment that follows "the literal reading …". Not refuted is not supported: the
    run found no failure, nothing more.
    """
    row = comparison.summary()[literal]
    collapsed = round(row["collapse_rate"] * row["seeds"])
    if collapsed:
        return "failed", f"failed in this run: it collapsed in {collapsed} of {row['seeds']} seeds"
    difference = comparison.difference(other, literal, metric)
    if difference["within_noise"] is None:
        return "not tested", "is not tested by this run (one seed measures no noise)"
    if not difference["within_noise"] and difference["mean"] > 0:
        return "failed", "failed in this run: the other reading is ahead outside the noise"
    return "not refuted", ("was not refuted in this run: no seed collapsed and the other "
                           "reading is not ahead outside the noise")


def reading_verdict(comparison: Comparison, literal: str, other: str,
                    metric: str = "dice") -> str:
    """The fragment of :func:`reading_outcome`: ``"was not refuted in this run: …"``,
    ``"failed in this run: …"`` or, with one seed, ``"is not tested by this run …"``."""
    return reading_outcome(comparison, literal, other, metric)[1]


def default_sentence(outcome: str, setting: str, default: object, literal: object) -> str:
    """The sentence on the default that goes beside a :func:`reading_outcome` ``outcome``, so
    a page cannot state a default that its own run contradicts without saying so: ``setting``
    = ``default`` is the default, ``literal`` the value of the literal reading."""
    value = f"{setting} = {default!r}"  # plain text: the book glues it with {glue:text}
    if default != literal:
        if outcome == "failed":
            return f"The default, {value}, is the other reading, as this run's failure asks."
        return (f"The default, {value}, is the other reading, although this run did not show "
                "the literal one fail.")
    if outcome == "failed":
        return (f"The default, {value}, is still the literal reading, which this run shows "
                "fail: by this book's rule the default changes when the demo run, the one "
                "make book renders, shows it too; until then read it as in question.")
    if outcome == "not refuted":
        return (f"The default, {value}, is the literal reading, which this run did not refute "
                "(no evidence for it either: only no failure).")
    return (f"The default, {value}, is the literal reading; this run, with one seed, neither "
            "supports nor refutes it.")


def rounds_table(comparison: Comparison, variant: str, paper: Mapping | None = None,
                 metrics: Sequence[str] = ("accuracy", "dice", "miou")) -> str:
    """Algorithm 1's rounds in the form of Table 5: per round N, the validation and test
    ``metrics`` (pooled over the slices; mean ± sd over seeds), the patches added and the Dice
    of their pseudo-labels, and — given ``paper``
    (:data:`~liverseg.experiments.paper_tables.TABLE_5`) — the paper's value in brackets."""
    runs = comparison.runs_of(variant)
    n_rounds = max(len(run["self_training"]) for run in runs)
    header = ["N"] + [f"{LABELS.get(m, m)} {subset}" for m in metrics for subset in ("val", "test")]
    header += ["patches added", "pseudo-label Dice", "kept"]
    table = []
    for n in range(n_rounds):
        rows = [run["self_training"][n] for run in runs if len(run["self_training"]) > n]
        cells = [str(n)]
        for metric in metrics:
            for subset in ("val", "test"):
                cell = mean_sd(spread([row[subset][metric] for row in rows if subset in row]))
                if paper and n < len(paper["iterations"]) and metric in paper:
                    cell += f" ({paper[metric][subset][n]:.4f})"
                cells.append(cell)
        pseudo = [row["pseudo_label_dice"] for row in rows if row["pseudo_label_dice"] is not None]
        cells.append(mean_sd(spread([row["patches_added"] for row in rows]), digits=0))
        cells.append(mean_sd(spread(pseudo)) if pseudo else "–")
        cells.append(f"{sum(bool(row.get('kept')) for row in rows)} / {len(rows)}")
        table.append(cells)
    return markdown_table(header, table)
