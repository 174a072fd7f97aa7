"""What a comparison measured, and the arithmetic of its table: mean ± sd over seeds and
differences paired by seed (:class:`Comparison`, :func:`spread`, :func:`paired_difference`).

Kept apart from :mod:`~liverseg.experiments.variants`, which trains, so that reading results
files (the replication report) needs no Keras.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from liverseg import __version__
from liverseg.io.atomic import atomic_write_text
from liverseg.train.scores import METRICS

#: run-level measures some comparisons add (:mod:`~liverseg.experiments.domain_shift`): the
#: share of the structure inside a cascade's ROI prior, and the predicted volume over the
#: reference's, each a mean over the test patients that have the structure
RUN_MEASURES = ("prior_coverage", "volume_ratio")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of a comparison: a name and the settings it changes (``Profile.replace`` keys)."""

    name: str
    changes: Mapping[str, object] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"variant name {self.name!r} must be a plain folder name")


@dataclasses.dataclass
class Comparison:
    """The runs of a comparison and what they measured (``results.json``)."""

    experiment: str
    plane: str
    structure: str
    seeds: list[int]
    variants: dict[str, dict]
    runs: list[dict]
    split: dict
    settings: dict
    seconds: float

    def runs_of(self, variant: str) -> list[dict]:
        """The runs of one variant, one per seed, in seed order."""
        return [run for run in self.runs if run["variant"] == variant]

    def summary(self) -> dict[str, dict]:
        """Per variant and metric: the mean ± sd over seeds of the per-seed mean over test
        patients, the share of seeds whose tuner collapsed to (almost) nothing, and each of
        :data:`RUN_MEASURES` that every run of the variant measured."""
        table = {}
        for name in self.variants:
            runs = self.runs_of(name)
            row = {metric: spread([run["test_mean"][metric] for run in runs]) for metric in METRICS}
            row["val_dice"] = spread([run["val"]["dice"] for run in runs if run.get("val")])
            row["collapse_rate"] = float(np.mean([run["collapsed"] for run in runs]))
            row["seeds"] = len(runs)
            for extra in RUN_MEASURES:
                values = [run.get(extra) for run in runs]
                if runs and None not in values:
                    row[extra] = spread(values)
            table[name] = row
        return table

    def difference(self, a: str, b: str, metric: str = "dice") -> dict:
        """``a − b`` of ``metric``, paired by seed (same seed, same split, same test patients).

        Returns the mean and sd of the per-seed differences and ``within_noise``: whether the
        mean lies inside the two-sided 95 % t interval of a paired t-test (``None`` with one
        seed, where the noise is not measured).
        """
        by_seed = {run["seed"]: run["test_mean"][metric] for run in self.runs_of(b)}
        return paired_difference([run["test_mean"][metric] - by_seed[run["seed"]]
                                  for run in self.runs_of(a) if run["seed"] in by_seed])

    def to_dict(self) -> dict:
        import keras  # the backend that trained the runs; loaded by then

        data = dataclasses.asdict(self)
        data["summary"] = self.summary()
        data["liverseg_version"] = __version__
        data["keras_backend"] = keras.backend.backend()
        return data

    def save(self, path: str | Path, **extra) -> Path:
        """Write :meth:`to_dict` (and ``extra`` top-level entries) as JSON to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({**self.to_dict(), **extra}, indent=1) + "\n")
        return path


def spread(values: Sequence[float]) -> dict:
    """``{"mean", "sd", "n"}`` of ``values`` (sample sd, ddof = 1; 0.0 for a single value)."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return {"mean": float("nan"), "sd": float("nan"), "n": 0}
    sd = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return {"mean": float(values.mean()), "sd": sd, "n": int(values.size)}


def paired_difference(differences: Sequence[float]) -> dict:
    """:func:`spread` of per-seed differences and ``within_noise``: whether their mean lies
    inside the two-sided 95 % t interval of a paired t-test (``None`` with fewer than two
    seeds, where the noise is not measured)."""
    from scipy import stats

    result = spread(differences)
    n = result["n"]
    if n < 2:
        result["within_noise"] = None
    else:
        half_width = stats.t.ppf(0.975, n - 1) * result["sd"] / np.sqrt(n)
        result["within_noise"] = bool(abs(result["mean"]) <= half_width)
    return result
