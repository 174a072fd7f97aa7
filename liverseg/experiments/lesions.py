"""Finding lesions: each lever of the lesion stage as an ablation over seeds (the book's
chapter "Finding lesions").

The lesion cascade of one plane is trained on the reference liver's view
(:mod:`liverseg.lesion_view`) as :func:`~liverseg.train.store.train_networks` trains
any cascade, once per rung of a ladder that adds one lever at a time to the paper's lesion
stage (:data:`LEVERS`), and its tuner is scored on every held-out test patient's slices:

* ``dice`` — per patient (a lesion-free patient with nothing found scores 1, as in the
  results chapter), averaged over the patients of a seed;
* ``dice_global`` — 2 Σ|X ∩ Y| / Σ(|X| + |Y|) pooled over the patients of a seed (LiTS's
  "Dice global"), which lesion-free patients cannot flatter;
* ``precision`` / ``recall`` — lesion detection (3D connected components of the patient's
  slices stacked, matched at IoU > 0.5, :func:`liverseg.metrics.lesion_detection`), counts
  summed over the patients of a seed;
* per reference lesion (``lesions`` of a run): its size, its matched-footprint z in the view
  (:func:`liverseg.metrics.lesion_visibility`) and whether it was found (a predicted component
  overlaps it at IoU > 0.5), so that :func:`visibility_table` can say which lesions a recall
  counts: those a detector could tell from their liver and those it could not.

Each seed's value is one number per metric; the table gives mean ± sd over seeds and each
rung's difference from the rung below it, paired by seed. The synthetic copies of the last
rungs, the phantoms' scan and the lesion view's size change the data, so each of their
settings gets its own :func:`prepare` (the same split and patients; validation gets synthetic
copies when ``lesion.synthesis.validation`` asks, test never).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from liverseg.config import Profile
from liverseg.train.store import prepare, train_networks
from liverseg.experiments.comparison import Variant, paired_difference, spread
from liverseg.experiments.tables import describe_difference, mean_sd
from liverseg.io.atomic import atomic_write_text
from liverseg.metrics import lesion_detection, lesion_matches, lesion_visibility

#: the ladder: the paper's lesion stage (the liver's settings), then one lever more per rung;
#: the first rung resets every lever the ladder studies, whatever the profile's lesion section
#: sets (``demo``'s is ``closer_view``), and leaves the budget (epochs, patience) to the profile
PAPER = {"lesion.prior_mode": "bbox", "lesion.prior_keep_largest": True,
         "lesion.loss_scheme": None, "lesion.positive_weight": 1.0, "lesion.dice_over": "sample",
         "lesion.positive_share": 0.0, "lesion.empty_slice_fraction": None,
         "lesion.synthesis.share": 0.0, "lesion.synthesis.validation": False,
         "lesion.synthesis.copies": 1, "lesion.synthesis.per_epoch": False,
         "lesion.prior_folds": None, "lesion.image_size": None, "lesion.base_filters": None}
WEIGHTED = {**PAPER, "lesion.prior_mode": "boxes", "lesion.prior_keep_largest": False,
            "lesion.loss_scheme": "uniform", "lesion.positive_weight": 10.0,
            "lesion.dice_over": "batch"}
RICH = {**WEIGHTED, "lesion.positive_share": 0.5, "lesion.empty_slice_fraction": 1.0}
SYNTHETIC = {**RICH, "lesion.synthesis.share": 0.9}
IN_SAMPLE = {**SYNTHETIC, "lesion.prior_folds": 1, "lesion.synthesis.validation": True}
CLOSER = {**IN_SAMPLE, "lesion.image_size": 128, "lesion.base_filters": 8}
#: 20 draws made in advance, epoch e learning from draw e % 20 + 1 (Hu et al.'s on-the-fly
#: synthesis, a draw of its own for each epoch of a 20-epoch budget; demo's lesion stage now
#: trains 60, so each draw returns every 20 epochs) instead of the same draw every epoch
FRESH = {**CLOSER, "lesion.synthesis.copies": 20, "lesion.synthesis.per_epoch": True}
LEVERS = (
    Variant("paper", PAPER),
    Variant("weighted_loss", WEIGHTED),
    Variant("lesion_rich", RICH),
    Variant("synthetic", SYNTHETIC),
    Variant("in_sample_priors", IN_SAMPLE),
    Variant("closer_view", CLOSER),
    Variant("fresh_draws", FRESH),
)
METRICS = ("dice", "dice_global", "precision", "recall")
#: each rung's neighbour below it on the ladder: a step is measured only against it
BELOW = {rung.name: below.name for below, rung in zip(LEVERS, LEVERS[1:])}
NOT_RUN = "not run"


def rungs(settings: Profile) -> tuple[Variant, ...]:
    """The rungs of :data:`LEVERS` that ``settings.experiments.lesion_rungs`` names (every
    rung when it is ``None``), in the ladder's order."""
    chosen = settings.experiments.lesion_rungs
    return tuple(lever for lever in LEVERS if chosen is None or lever.name in chosen)


@dataclasses.dataclass
class LesionLevers:
    """The runs of the ladder (one per rung and seed) and what they measured."""

    plane: str
    seeds: list[int]
    variants: dict[str, dict]
    runs: list[dict]  # {"variant", "seed", "per_case": [...], "seed_scores": {metric: value}}
    split: dict
    settings: dict
    seconds: float

    def summary(self) -> dict[str, dict]:
        """Per rung and metric: mean ± sd over seeds of the seed's value."""
        return {name: {m: spread([r["seed_scores"][m] for r in self.runs_of(name)
                                  if r["seed_scores"][m] is not None]) for m in METRICS}
                for name in self.variants}

    def runs_of(self, variant: str) -> list[dict]:
        return [run for run in self.runs if run["variant"] == variant]

    def difference(self, a: str, b: str, metric: str = "dice_global") -> dict:
        """``a − b`` of ``metric``, paired by seed, with ``within_noise`` as
        :meth:`liverseg.experiments.Comparison.difference` says it."""
        by_seed = {r["seed"]: r["seed_scores"][metric] for r in self.runs_of(b)}
        return paired_difference([
            r["seed_scores"][metric] - by_seed[r["seed"]] for r in self.runs_of(a)
            if by_seed.get(r["seed"]) is not None and r["seed_scores"][metric] is not None])

    def below(self, name: str) -> str | None:
        """The rung ``name``'s step is measured from: its neighbour below on the ladder
        (:data:`BELOW`), ``None`` when that rung was not run; for variants of another ladder,
        the variant run before it."""
        names = list(self.variants)
        if name in BELOW:
            return BELOW[name] if BELOW[name] in self.variants else None
        i = names.index(name)
        return names[i - 1] if i else None

    def steps(self) -> dict[str, dict]:
        """Each rung's step (:meth:`difference`) from the rung :meth:`below` it, where run."""
        return {name: self.difference(name, below) for name in self.variants
                if (below := self.below(name)) is not None}

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "summary": self.summary(), "steps": self.steps()}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        return path


def lesion_levers(settings: Profile, store: str | Path, *,
                  levers: Sequence[Variant] | None = None, seeds: Sequence[int] | None = None,
                  plane: str | None = None, cases=None, progress: bool = True) -> LesionLevers:
    """Train (or read back from ``store``) the lesion cascade of every rung of ``levers``
    (default: the profile's :func:`rungs`) for every seed (default
    ``settings.experiments.seeds``) along ``plane`` (default ``settings.experiments.plane``)
    and score it on the test patients (module doc)."""
    started = time.perf_counter()
    levers = rungs(settings) if levers is None else levers
    seeds = [int(s) for s in (settings.experiments.seeds if seeds is None else seeds)]
    plane = plane or settings.experiments.plane
    prepared: dict[str, object] = {}
    runs = []
    for variant in levers:
        changed = settings.replace(**variant.changes)
        data_settings = json.dumps([dataclasses.asdict(changed.lesion.synthesis),
                                    dataclasses.asdict(changed.phantoms),
                                    changed.stage("lesion").image_size], sort_keys=True)
        if data_settings not in prepared:  # synthetic copies, another scan or size: other data
            prepared[data_settings] = prepare(changed, store, plane=plane, structure="lesion",
                                              cases=cases, progress=progress)
        data = prepared[data_settings]
        for seed in seeds:
            trained = train_networks(data, changed.replace(**{"train.seed": seed}), store,
                                    progress, f"{variant.name} seed {seed}")
            runs.append({"variant": variant.name, "seed": seed,
                         **score_lesions(trained, data)})
            del trained
    return LesionLevers(plane=plane, seeds=seeds,
                        variants={v.name: {"changes": dict(v.changes)} for v in levers},
                        runs=runs, split=data.split._asdict(), settings=settings.to_dict(),
                        seconds=round(time.perf_counter() - started, 1))


def score_lesions(trained, data) -> dict:
    """Per test patient and pooled over them: Dice, global Dice, lesion detection of a
    trained lesion cascade (:class:`~liverseg.experiments.Trained`) on ``data``'s test slices."""
    from liverseg.predict import predict_tuned
    from liverseg.train.scores import overlap_scores

    stage = Profile.from_dict(trained.run["settings"])
    probability = predict_tuned(trained.model, data.test.images, trained.front.test_priors,
                                stage.inference.batch_size)
    found = probability > stage.inference.threshold
    reference = data.test.target("lesion") > 0.5
    liver = data.test.target("liver") > 0.5
    rows, lesions = [], []
    for case in dict.fromkeys(data.test.case_ids.tolist()):
        mine = data.test.case_ids == case
        pred, ref = found[mine], reference[mine]
        detection = lesion_detection(pred, ref)
        lesions += [{"case": case, **row} for row in
                    _found_lesions(data.test.images[mine], pred, ref, liver[mine])]
        rows.append({"case": case, "dice": overlap_scores(pred, ref)["dice"],
                     "intersection": int((pred & ref).sum()), "predicted": int(pred.sum()),
                     "reference": int(ref.sum()),
                     **{k: int(detection[k]) for k in ("tp", "n_pred", "n_ref")}})
    total = {k: sum(r[k] for r in rows) for k in
             ("intersection", "predicted", "reference", "tp", "n_pred", "n_ref")}
    pooled = total["predicted"] + total["reference"]
    seed_scores = {
        "dice": float(np.mean([r["dice"] for r in rows])),
        "dice_global": 2 * total["intersection"] / pooled if pooled else None,
        "precision": total["tp"] / total["n_pred"] if total["n_pred"] else None,
        "recall": total["tp"] / total["n_ref"] if total["n_ref"] else None,
    }
    return {"per_case": rows, "seed_scores": seed_scores, "lesions": lesions}


def _found_lesions(images, pred, ref, liver) -> list[dict]:
    """Per 3D reference component (in :func:`lesion_visibility`'s order): its ``voxels``,
    ``z`` (``None`` for a lesion too large to place elsewhere in its liver) and ``found``
    (matched by :func:`lesion_matches`, as the detection counts)."""
    found, _ = lesion_matches(pred, ref)
    rows = []
    for seen, hit in zip(lesion_visibility(images, ref, liver | ref), found, strict=True):
        z = seen["z"] if np.isfinite(seen["z"]) else None  # JSON has no NaN
        rows.append({"voxels": seen["voxels"], "z": z, "found": bool(hit)})
    return rows


#: the bands of :func:`visibility_table`: a lesion's matched-footprint z from ``low`` up to ``high``
VISIBILITY_BANDS = ((-np.inf, 2.0), (2.0, 3.0), (3.0, 5.0), (5.0, np.inf))


def visibility_table(levers: "LesionLevers") -> str:
    """A Markdown table: per rung, the test lesions found in each band of visibility
    (:data:`VISIBILITY_BANDS`, and lesions too large to place elsewhere in their liver), as
    found / lesions in the band, summed over seeds."""
    def band(row):
        if row["z"] is None or not np.isfinite(row["z"]):
            return len(VISIBILITY_BANDS)
        return next(i for i, (low, high) in enumerate(VISIBILITY_BANDS) if low <= row["z"] < high)

    names = [f"z < {VISIBILITY_BANDS[0][1]:g}",
             *(f"{low:g} ≤ z < {high:g}" for low, high in VISIBILITY_BANDS[1:-1]),
             f"z ≥ {VISIBILITY_BANDS[-1][0]:g}", "too large to place"]
    counts = {}
    for run in levers.runs:
        for row in run.get("lesions", []):
            cell = counts.setdefault(run["variant"], np.zeros((len(names), 2), int))
            cell[band(row)] += (int(row["found"]), 1)
    if not counts:
        return "(no lesion in the test patients)"
    shown = [i for i in range(len(names)) if any(c[i, 1] for c in counts.values())]
    lines = ["| rung | " + " | ".join(names[i] for i in shown) + " |",
             "|" + "---|" * (len(shown) + 1)]
    for name in levers.variants:
        if name in counts:
            cells = [f"{counts[name][i, 0]} / {counts[name][i, 1]}" for i in shown]
            lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


LABELS = {"dice": "Dice per case", "dice_global": "Dice (global)",
          "precision": "detection precision", "recall": "detection recall"}


def levers_table(levers: LesionLevers, labels: dict[str, str] | None = None) -> str:
    """A Markdown table: one row per rung, mean ± sd over seeds of each metric, and the global
    Dice's step from the rung below it on the ladder (paired by seed; empty where that rung
    was not run)."""
    labels = labels or {}
    names = list(levers.variants)
    summary = levers.summary()
    header = ["rung", *(LABELS[m] for m in METRICS), "global Dice − the rung above"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        below = levers.below(name)
        step = "" if below is None else _short_step(levers.difference(name, below))
        cells = [labels.get(name, name), *(mean_sd(summary[name][m]) for m in METRICS), step]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def glued(levers: LesionLevers) -> dict[str, str]:
    """What the chapter's text quotes, for every rung of :data:`LEVERS`: ``global_<rung>``
    (its global Dice, mean ± sd over seeds) and ``step_<rung>`` (its step from the rung
    below), :data:`NOT_RUN` for a rung, or a step, the profile did not train (its
    ``experiments.lesion_rungs``)."""
    summary = levers.summary()
    steps = levers.steps()
    values = {}
    for lever in LEVERS:
        name = lever.name
        values[f"global_{name}"] = (mean_sd(summary[name]["dice_global"]) if name in summary
                                    else NOT_RUN)
        if name in BELOW:
            values[f"step_{name}"] = (describe_difference(steps[name]) if name in steps
                                      else NOT_RUN)
    return values


def _short_step(difference: dict) -> str:
    """``"+0.120 ± 0.030, outside the noise"`` (or ``"+0.120, one seed"``) for a table cell."""
    if difference["n"] < 2:
        return f"{difference['mean']:+.3f}, one seed" if difference["n"] else "–"
    noise = "within" if difference["within_noise"] else "outside"
    return f"{difference['mean']:+.3f} ± {difference['sd']:.3f}, {noise} the noise"


def ladder_table(levers: Sequence[Variant] = LEVERS) -> str:
    """A Markdown table of what each rung sets (the lesion section's keys, ``lesion.`` left off)."""
    keys = list(dict.fromkeys(k for v in levers for k in v.changes))
    header = ["rung", *(k.removeprefix("lesion.") for k in keys)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant in levers:
        cells = ["–" if variant.changes.get(k) is None else str(variant.changes[k]) for k in keys]
        lines.append("| " + " | ".join([variant.name, *cells]) + " |")
    return "\n".join(lines)
