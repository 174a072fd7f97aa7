"""The replication report: every number the paper claims beside ours, with a verdict.

The book's last chapter (``book/report.ipynb``) calls :func:`load_results` on a run folder,
:func:`claims_table` for the rows, :func:`to_markdown` to show them and :func:`ambiguities`
for the paper's ambiguities and the choices this code makes. Nothing here is typed by hand
from a run: "ours" is read from the chapters' ``RUN/results/<chapter>.json`` files, so the
report changes when the runs change. The paper's Tables 3–6 come from
:mod:`~liverseg.experiments.paper_tables`; its other numbers (abstract, §3.4, §4.4,
conclusion) are in :data:`CLAIMS` with the sentence they come from (and §4.2's inference
time, a claim no run here tests).

Claims and verdicts
-------------------
A claim is **absolute** (a score: "Dice 0.9511 on LiTS"), **relative** (a comparison:
"the multi-level loss beats a loss on the final output only"), a **count** (the parameter
count of §3.4) or **untestable** here (a comparison with other models, say). Verdicts:

``consistent within noise`` / ``inconclusive: too noisy`` / ``not reproduced``
    absolute — only on the paper's own dataset, with at least two seeds. Our interval is
    ours ± max(2 √(sd² + sd_patients²), :data:`TOLERANCE`): sd over seeds of the per-seed
    test mean (where a rerun with another seed lands) and sd_patients from a bootstrap over
    the test patients (:func:`patient_sd`: which few patients were tested; left out, and said
    so, where a results file has no per-patient scores). The floor of 0.01 is there because
    the paper states neither its aggregation (per slice, per case or global) nor its split
    unit, and those alone move a liver Dice by about that much. The paper's value outside the
    interval: ``not reproduced``. Inside it: ``consistent within noise`` — our run cannot be
    told apart from the paper's number, which is not the same as reproducing it — unless the
    interval is wider than ± :data:`NOISE_BOUND`, where a noisy run would pass any value
    near the paper's: ``inconclusive: too noisy``.
    mIoU — where the paper's mIoU equals D / (2 − D) of its Dice of the same result (a
    foreground IoU, :func:`iou_consistency`), it is judged against our foreground IoU;
    otherwise against both our mIoU (Eq. 12, background included) and our foreground IoU,
    keeping the stricter verdict.
``reproduced`` / ``not reproduced`` (relative and count claims)
    relative — on any dataset (a relative claim does not depend on the data being LiTS):
    reproduced when our paired-by-seed difference has the paper's sign and lies outside the
    noise (a paired t-test at 95 %, :meth:`~liverseg.experiments.Comparison.difference`, the
    test the chapters use); not reproduced when it has the opposite sign outside the noise.
    Only the sign is tested, not the paper's size of the effect.
    count — reproduced when equal.
``matched by construction``
    a count equal to the paper's because a setting was chosen to produce it: no evidence,
    kept out of the reproduced tally.
``inconclusive: within the noise``
    a relative difference inside the noise of the seeds.
``inconclusive: one seed``
    one seed measures no noise: neither a difference nor a distance to the paper's value can
    be judged.
``not testable here``
    an absolute number on another dataset than the paper's (ours on synthetic phantoms is
    still shown), or a claim no run here can test.
``not run``
    the results file, or the part of it the claim needs (a variant, a round), is missing.

Tables 3–5, §4.4, the abstract and the conclusion name no dataset; their final values equal
Table 6's LiTS liver row, so they are taken to be LiTS (``PAPER_DATASET``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from liverseg.errors import CorruptFileError
from liverseg.experiments import paper_tables
from liverseg.experiments.comparison import Comparison, spread
from liverseg.io.atomic import atomic_write_text

TOLERANCE = 0.01  # the smallest distance to the paper's value counted as a disagreement
# the widest half-interval that can still call a number consistent: ± 0.05 around a liver Dice
# of 0.95 holds 0.90 and 1.0, a poor and a perfect segmentation
NOISE_BOUND = 0.05
BOOTSTRAP_DRAWS = 2000  # resamples of the test patients in :func:`patient_sd`
IOU_TOLERANCE = 0.002  # a printed mIoU within this of D / (2 − D) is a foreground IoU
PAPER_DATASET = "lits"  # the dataset assumed for the paper's numbers that name none
VERDICTS = ("consistent within noise", "reproduced", "not reproduced",
            "inconclusive: too noisy", "inconclusive: within the noise",
            "inconclusive: one seed", "matched by construction", "not testable here", "not run")
# absolute verdicts from the least to the most favourable: the stricter of two is the first
STRICTER = ("not reproduced", "inconclusive: too noisy", "inconclusive: one seed",
            "consistent within noise")
DATASETS = {"synthetic": "synthetic phantoms", "lits": "LiTS", "ircadb": "3D-IRCADb-01",
            None: "unstated"}
CHAPTERS = {
    "data_preparation": "data preparation", "networks": "the cascade",
    "multi_level_loss": "multi-level loss", "patch_levels": "patch levels",
    "self_training": "self-training", "fusion": "fusion", "postprocessing": "post-processing",
    "results": "results", "report": "this chapter",
}
METRIC_NAMES = {"accuracy": "accuracy", "dice": "Dice", "miou": "mIoU", "iou": "IoU"}
GROUPS = ("Abstract and conclusion", "Table 3", "Table 4", "Table 5", "Table 6",
          "§4.4, per plane", "§3.4, parameter count", "§4.2, inference time", "Relative claims")
PAPER_KEPT_ROUND = 5  # Table 5's round behind Table 6 (its test mIoU 0.9070 is Table 6's)


# --------------------------------------------------------------------------- data classes

@dataclasses.dataclass
class Measure:
    """Our number for a claim: mean, sd over seeds (``None`` with one seed) and seeds, and the
    protocol behind it. ``patient_sd``: the bootstrap sd over test patients
    (:func:`patient_sd`; ``None`` without per-patient scores). For a relative claim,
    ``within_noise`` is the paired test's answer and ``refuted`` a reason the claim fails
    whatever the noise (empty if none)."""

    mean: float
    sd: float | None
    n: int
    dataset: str | None = None
    split: str = "–"
    aggregation: str = "–"
    postprocessing: str = "–"
    source: str = ""
    chapter: str = ""
    note: str = ""
    within_noise: bool | None = None
    patient_sd: float | None = None
    refuted: str = ""


@dataclasses.dataclass
class Missing:
    """Why a claim has no number of ours (the verdict is ``not run``)."""

    reason: str
    source: str = ""
    chapter: str = ""


@dataclasses.dataclass(frozen=True)
class Claim:
    """One number (or comparison) the paper claims and how to find ours.

    ``measure(results)`` returns a :class:`Measure` or :class:`Missing` from the loaded
    results files; ``dataset`` is the paper's dataset of an absolute claim; ``sign`` the
    direction a relative claim asserts (+1: the first is better); ``reason`` why an
    ``untestable`` claim cannot be tested; ``paper_dice`` the paper's Dice of the same result
    as an mIoU claim; ``construction`` why a count equals the paper's by design (empty if not).
    """

    key: str
    group: str
    where: str
    claim: str
    quote: str
    kind: str  # "absolute", "relative", "count" or "untestable"
    paper: float | None
    measure: Callable[[Mapping[str, dict]], Measure | Missing] | None = None
    dataset: str | None = PAPER_DATASET
    sign: int = 1
    chapter: str = "results"
    metric: str = ""
    reason: str = ""
    paper_dice: float | None = None
    construction: str = ""

    def foreground_measure(self) -> Callable | None:
        """For an mIoU claim, the measure of our foreground IoU under the same protocol
        (``None`` for other claims)."""
        measure = self.measure
        if self.metric != "miou" or not isinstance(measure, partial):
            return None
        return partial(measure, metric="iou") if "metric" in measure.keywords else None


# --------------------------------------------------------------------------- loading

def load_results(run_dir: str | Path) -> dict[str, dict]:
    """``{chapter: results}`` of every ``RUN/results/<chapter>.json`` (the report's own
    ``report.json`` excluded); an empty dict when the folder does not exist.

    Raises:
        CorruptFileError: a results file is not valid JSON.
    """
    folder = Path(run_dir) / "results"
    found = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.stem == "report":
            continue
        try:
            found[path.stem] = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CorruptFileError(f"not a results file: {error}", path) from None
    return found


# --------------------------------------------------------------------------- protocol

def _comparison(data: Mapping) -> Comparison:
    fields = [f.name for f in dataclasses.fields(Comparison)]
    return Comparison(**{name: data.get(name) for name in fields})


def _split_text(split: Mapping | None) -> str:
    if not split:
        return "–"
    sizes = [len(v) if isinstance(v, (list, tuple)) else int(v)
             for v in (split.get(k, ()) for k in ("train", "val", "test"))]
    return f"by patient, {sizes[0]} / {sizes[1]} / {sizes[2]}"


def _settings(data: Mapping) -> dict:
    return data.get("settings") or {}


def _dataset(data: Mapping) -> str | None:
    return data.get("dataset") or _settings(data).get("dataset")


def _plane_size(data: Mapping) -> str:
    settings = _settings(data)
    plane = data.get("plane") or settings.get("experiments", {}).get("plane", "axial")
    size = settings.get("image_size")
    return f"{plane} slices at {size} px" if size else f"{plane} slices"


def _rounds_of(data: Mapping) -> int:
    return int(_settings(data).get("self_training", {}).get("iterations", 0))


def _rounds_text(data: Mapping) -> str:
    n = _rounds_of(data)
    return f"Algorithm 1: {n} round{'' if n == 1 else 's'}"


def _slice_protocol(data: Mapping, source: str, chapter: str) -> dict:
    return dict(dataset=_dataset(data), split=_split_text(data.get("split")),
                aggregation=f"per test patient ({_plane_size(data)}), mean over patients",
                postprocessing=f"threshold 0.5; {_rounds_text(data)}",
                source=source, chapter=chapter)


def _volume_postprocessing(data: Mapping, fused: bool = True) -> str:
    inference = _settings(data).get("inference", {})
    fill = inference.get("fill")
    steps = [f"threshold {inference.get('threshold', 0.5)}", "largest component"]
    if fill:
        steps.append(f"holes filled ({fill})")
    text = ", ".join(steps)
    return f"soft vote, {text}" if fused else text


def _volume_protocol(data: Mapping, source: str, chapter: str, fused: bool = True) -> dict:
    protocol = data.get("protocol") or {}
    steps = protocol.get("postprocessing", _volume_postprocessing(data, fused))
    return dict(dataset=_dataset(data), split=_split_text(data.get("split")),
                aggregation=protocol.get(
                    "aggregation", "per test patient (volume, own geometry), mean over patients"),
                postprocessing=f"{steps}; {_rounds_text(data)}",
                source=source, chapter=chapter)


def _papers_rounds(protocol: dict) -> dict:
    """``protocol`` with the paper's rounds beside ours: Table 6, §4.4, the abstract and the
    conclusion report the system after Algorithm 1 (Table 6's LiTS liver row is Table 5's
    N = 5)."""
    protocol["postprocessing"] += (f" (the paper's: {PAPER_KEPT_ROUND} rounds, Table 5's "
                                   f"N = {PAPER_KEPT_ROUND})")
    return protocol


def _cell(cell: Mapping | None) -> tuple[float, float | None, int] | None:
    """(mean, sd or None, n) of a summary cell (``n``) or a results cell (``n_seeds``)."""
    if not cell:
        return None
    n = int(cell.get("n", cell.get("n_seeds", 1)) or 0)
    mean = cell.get("mean")
    if not n or mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return None
    sd = cell.get("sd")
    sd = None if n < 2 or sd is None or (isinstance(sd, float) and math.isnan(sd)) else float(sd)
    return float(mean), sd, n


def patient_sd(per_seed: Mapping[object, Mapping[str, float | None]],
               draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> float | None:
    """The sd of our number that comes from which test patients were drawn: ``per_seed`` is
    ``{seed: {patient: score}}``; each of ``draws`` bootstrap samples draws the patients with
    replacement, the same draw for every seed (a seed's scores are paired with the others' on
    the same patient), and takes the mean over seeds of each seed's mean over the drawn
    patients. Patients without a score in every seed are left out; ``None`` with fewer than two
    patients left."""
    scored = [{case for case, value in cases.items() if value is not None and math.isfinite(value)}
              for cases in per_seed.values()]
    patients = sorted(set.intersection(*scored)) if scored else []
    if len(patients) < 2:
        return None
    values = np.array([[cases[p] for p in patients] for cases in per_seed.values()], np.float64)
    draw = np.random.default_rng(seed).integers(0, len(patients), (draws, len(patients)))
    means = values[:, draw].mean(axis=(0, 2))  # one per draw: over seeds and drawn patients
    return float(means.std(ddof=1))


def _cases_by_seed(rows: Iterable[Mapping], metric: str) -> dict:
    """``{seed: {patient: score}}`` of per-patient rows carrying ``seed`` and ``case``."""
    found: dict = {}
    for row in rows:
        found.setdefault(row["seed"], {})[row["case"]] = row.get(metric)
    return found


def _runs_patient_sd(runs: Iterable[Mapping], metric: str) -> float | None:
    """:func:`patient_sd` of comparison runs (each run's ``test_cases``)."""
    rows = [{"seed": run["seed"], **case} for run in runs for case in run.get("test_cases") or []]
    return patient_sd(_cases_by_seed(rows, metric))


def _not_run(source: str, chapter: str) -> Missing:
    return Missing(f"no results/{source}.json: the {CHAPTERS.get(chapter, chapter)} chapter "
                   "has not run", source, chapter)


def _fg_note(cells: Mapping, metric: str) -> str:
    if metric != "miou":
        return ""
    iou = _cell(cells.get("iou"))
    return f"foreground IoU {iou[0]:.3f}" if iou else ""


# --------------------------------------------------------------------------- measures

def _summary(results, *, source: str, chapter: str, variant: Callable[[Mapping], str | None],
             metric: str, missing: Callable[[Mapping], str] | None = None):
    data = results.get(source)
    if data is None:
        return _not_run(source, chapter)
    name = variant(data)
    row = (data.get("summary") or {}).get(name) if name else None
    cell = _cell(row.get(metric)) if row else None
    if cell is None:
        reason = (missing(data) if missing else
                  f"results/{source}.json has no {METRIC_NAMES.get(metric, metric)} of "
                  f"{name or 'this row'}")
        return Missing(reason, source, chapter)
    mean, sd, n = cell
    spread_patients = _runs_patient_sd(_comparison(data).runs_of(name), metric)
    return Measure(mean, sd, n, note=_fg_note(row, metric), patient_sd=spread_patients,
                   **_slice_protocol(data, source, chapter))


def _table3_variant(column: str, data: Mapping) -> str | None:
    inverse = {col: name for name, col in (data.get("paper_columns") or {}).items()}
    return inverse.get(column)


def _table3_missing(column: str, data: Mapping) -> str:
    levels = _settings(data).get("tuning", {}).get("patch_levels", [])
    return (f"this profile's tuning network has patches at {len(levels)} encoder levels "
            f"(tuning.patch_levels); the column {column!r} needs more")


def _loss_variant(column: str, data: Mapping) -> str:
    if column == "Without":
        return "final_only"
    return _settings(data).get("train", {}).get("loss_scheme", "paper")


def _full_patch_variant(data: Mapping) -> str | None:
    """The row with tiles at every level of the profile: the profile's own network."""
    levels = list(_settings(data).get("tuning", {}).get("patch_levels", []))
    for name, variant in (data.get("variants") or {}).items():
        changes = variant.get("changes", {})
        if (list(changes.get("tuning.patch_levels", [None])) == levels
                and changes.get("tuning.patch_arrangement", "tiles") == "tiles"):
            return name
    return None


def _self_training_variant(data: Mapping) -> str:
    name = _settings(data).get("self_training", {}).get("pseudo_labels", "prediction")
    return name if name in (data.get("variants") or {}) else "prediction"


def _round(results, *, n: int, subset: str, metric: str):
    source, chapter = "self_training", "self_training"
    data = results.get(source)
    if data is None:
        return _not_run(source, chapter)
    runs = _comparison(data).runs_of(_self_training_variant(data))
    values = [run["self_training"][n][subset][metric] for run in runs
              if len(run.get("self_training", [])) > n and subset in run["self_training"][n]
              and metric in run["self_training"][n][subset]]
    if not values:
        last = max((len(run.get("self_training", [])) for run in runs), default=0) - 1
        return Missing(f"this run has rounds 0–{last} of Algorithm 1 "
                       f"(self_training.iterations = {_rounds_of(data)})", source, chapter)
    cell = spread(values)
    protocol = _slice_protocol(data, source, chapter)
    protocol["aggregation"] = (f"pooled over the {_plane_size(data)} of the row's patients "
                               "(validation or test)")
    protocol["postprocessing"] = "threshold 0.5, after the row's round of Algorithm 1"
    return Measure(cell["mean"], cell["sd"] if cell["n"] > 1 else None, cell["n"], **protocol)


def _table6(results, *, structure: str, plane: str, metric: str, fallback: bool = False):
    data = results.get("results")
    if data is not None:
        cells = ((data.get("table6") or {}).get(structure) or {}).get(plane) or {}
        cell = _cell(cells.get(metric))
        if cell is not None:
            mean, sd, n = cell
            protocol = _volume_protocol(data, "results", "results", fused=plane == "fused")
            rows = [row for row in data.get("per_case") or []
                    if row.get("structure") == structure and row.get("plane") == plane]
            return Measure(mean, sd, n, note=_fg_note(cells, metric),
                           patient_sd=patient_sd(_cases_by_seed(rows, metric)),
                           **_papers_rounds(protocol))
        if not fallback:
            return Missing(f"results/results.json has no {structure} {plane} "
                           f"{METRIC_NAMES.get(metric, metric)}", "results", "results")
    if fallback and structure == "liver" and "fusion" in results:
        fusion = results["fusion"]
        row = (fusion.get("summary") or {}).get(plane) or {}
        cell = _cell(row.get(metric))
        if cell is not None:
            mean, sd, n = cell
            protocol = _volume_protocol(fusion, "fusion", "fusion", fused=False)
            spread_patients = _runs_patient_sd(_comparison(fusion).runs_of(plane), metric)
            return Measure(mean, sd, n, note=_fg_note(row, metric), patient_sd=spread_patients,
                           **_papers_rounds(protocol))
    return _not_run("results", "results")


def _paired(a: Mapping[int, float], b: Mapping[int, float]) -> dict:
    """Mean, sd and ``within_noise`` of ``a − b`` paired by seed, by
    :meth:`Comparison.difference` (the chapters' test)."""
    runs = ([{"variant": "a", "seed": s, "test_mean": {"x": v}} for s, v in a.items()]
            + [{"variant": "b", "seed": s, "test_mean": {"x": v}} for s, v in b.items()])
    return Comparison("paired", "", "", sorted(a), {"a": {}, "b": {}}, runs, {}, {},
                      0.0).difference("a", "b", "x")


def _from_difference(difference: Mapping, protocol: Mapping, note: str = "") -> Measure:
    n = int(difference["n"])
    return Measure(float(difference["mean"]), float(difference["sd"]) if n > 1 else None, n,
                   within_noise=difference.get("within_noise"), note=note, **protocol)


def _difference(results, *, source: str, chapter: str,
                pair: Callable[[Mapping], tuple[str | None, str | None]],
                metric: str = "dice", part: str | None = None, volumes: bool = False,
                postprocessing: str | None = None):
    data = results.get(source)
    if data is None:
        return _not_run(source, chapter)
    inner = data.get(part) if part else data
    if not inner:
        return Missing(f"results/{source}.json has no {part!r} comparison", source, chapter)
    comparison = _comparison(inner)
    a, b = pair(inner)
    if a not in (inner.get("variants") or {}) or b not in (inner.get("variants") or {}):
        return Missing(f"results/{source}.json has no rows {a!r} and {b!r}", source, chapter)
    difference = comparison.difference(a, b, metric)
    if not difference["n"]:
        return Missing(f"results/{source}.json has no seed with both {a!r} and {b!r}",
                       source, chapter)
    protocol = (_volume_protocol(data, source, chapter) if volumes
                else _slice_protocol(inner, source, chapter))
    if postprocessing:
        protocol["postprocessing"] = postprocessing
    return _from_difference(difference, protocol, note=f"{a} − {b}")


def _best_plane(data: Mapping) -> str | None:
    summary = data.get("summary") or {}
    planes = [p for p in PLANES if p in summary]
    return max(planes, key=lambda p: summary[p]["dice"]["mean"]) if planes else None


def _self_training_runs(results) -> list[dict] | Missing:
    """The runs of the self-training chapter's own pseudo-labels (``Missing``: no file)."""
    data = results.get("self_training")
    if data is None:
        return _not_run("self_training", "self_training")
    return _comparison(data).runs_of(_self_training_variant(data))


def _rounds_protocol(data: Mapping) -> dict:
    protocol = _slice_protocol(data, "self_training", "self_training")
    protocol["aggregation"] = f"pooled over the patients' {_plane_size(data)}"
    protocol["postprocessing"] = "threshold 0.5"
    return protocol


def _self_training_gain(results):
    """Per seed, test Dice of the kept round (chosen on validation) minus round 0."""
    runs = _self_training_runs(results)
    if isinstance(runs, Missing):
        return runs
    data = results["self_training"]
    kept, first = {}, {}
    for run in runs:
        history = run.get("self_training") or []
        if len(history) >= 2:
            row = next((row for row in history if row.get("kept")), history[0])
            kept[run["seed"]], first[run["seed"]] = row["test"]["dice"], history[0]["test"]["dice"]
    if not kept:
        return Missing(f"this run has no round of Algorithm 1 after round 0 "
                       f"(self_training.iterations = {_rounds_of(data)})", "self_training",
                       "self_training")
    return _from_difference(_paired(kept, first), _rounds_protocol(data),
                            note="kept round − round 0, test")


def after_test_peak(val: Sequence[float], test: Sequence[float]) -> tuple[bool, float]:
    """The paper's sign of overfitting in one history of rounds: whether test Dice falls after
    the round of its peak (the first maximum), and validation Dice of the last round minus that
    of the peak's round (0.0 when the peak is the last round)."""
    peak = int(np.argmax(test))
    return bool(test[-1] < test[peak]), float(val[-1] - val[peak])


def _overfitting(results):
    """§4.4's overfitting as the paper states it: after its peak test Dice falls while
    validation Dice still rises. Per seed (at least rounds 0–2): :func:`after_test_peak`;
    ours is the validation rise after the test peak, paired-tested against 0 over seeds;
    ``refuted`` when test Dice falls after its peak in no seed, within the noise when it falls
    in only some."""
    runs = _self_training_runs(results)
    if isinstance(runs, Missing):
        return runs
    data = results["self_training"]
    falls, rises = {}, {}
    for run in runs:
        history = run.get("self_training") or []
        if len(history) >= 3:
            falls[run["seed"]], rises[run["seed"]] = after_test_peak(
                [row["val"]["dice"] for row in history], [row["test"]["dice"] for row in history])
    if not rises:
        return Missing(f"a test peak followed by a round needs rounds 0–2 of Algorithm 1 "
                       f"(self_training.iterations = {_rounds_of(data)})", "self_training",
                       "self_training")
    n_falls = sum(falls.values())
    ours = _from_difference(_paired(rises, dict.fromkeys(rises, 0.0)), _rounds_protocol(data),
                            note=f"validation Dice after the test peak; test Dice falls after "
                                 f"its peak in {n_falls} of {len(falls)} seeds")
    if n_falls == 0:
        ours.refuted = "test Dice never falls after its peak: it peaks at the last round"
    elif n_falls < len(falls) and ours.within_noise is not None:
        ours.within_noise = True  # the seeds disagree on the fall itself
    return ours


def _params(results, *, index: int):
    data = results.get("networks")
    if data is None or not data.get("paper_config_params"):
        return _not_run("networks", "networks")
    return Measure(float(data["paper_config_params"][index]), None, 1, dataset=None,
                   aggregation="the `paper` profile's tuning network", source="networks",
                   chapter="networks")


# --------------------------------------------------------------------------- the claims

def _metric_label(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric)


def table_claims() -> list[Claim]:
    """One absolute claim per number of Tables 3–6 (:mod:`.paper_tables`)."""
    claims = []
    t3, t4, t5, t6 = (paper_tables.TABLE_3, paper_tables.TABLE_4, paper_tables.TABLE_5,
                      paper_tables.TABLE_6)
    for metric, values in t3["rows"].items():
        for column, value, dice in zip(t3["columns"], values, t3["rows"]["dice"]):
            claims.append(Claim(
                f"table3:{column}:{metric}", "Table 3", f"Table 3, {column}",
                f"liver {_metric_label(metric)}", t3["caption"],
                "absolute", value, partial(_summary, source="patch_levels",
                                           chapter="patch_levels",
                                           variant=partial(_table3_variant, column),
                                           metric=metric,
                                           missing=partial(_table3_missing, column)),
                chapter="patch_levels", metric=metric, paper_dice=_dice_of(metric, dice)))
    for metric, values in t4["rows"].items():
        for column, value, dice in zip(t4["columns"], values, t4["rows"]["dice"]):
            claims.append(Claim(
                f"table4:{column}:{metric}", "Table 4", f"Table 4, {column.lower()}",
                f"liver {_metric_label(metric)}", t4["caption"], "absolute", value,
                partial(_summary, source="multi_level_loss", chapter="multi_level_loss",
                        variant=partial(_loss_variant, column), metric=metric),
                chapter="multi_level_loss", metric=metric, paper_dice=_dice_of(metric, dice)))
    for metric in ("accuracy", "dice", "miou"):
        for subset in ("val", "test"):
            for n, value, dice in zip(t5["iterations"], t5[metric][subset],
                                      t5["dice"][subset]):
                label = "validation" if subset == "val" else "test"
                claims.append(Claim(
                    f"table5:{n}:{subset}:{metric}", "Table 5", f"Table 5, N = {n}, {label}",
                    f"liver {_metric_label(metric)}",
                    t5["caption"], "absolute", value,
                    partial(_round, n=n, subset=subset, metric=metric),
                    chapter="self_training", metric=metric, paper_dice=_dice_of(metric, dice)))
    dataset_keys = {"LiTS": "lits", "3D-IRCADb": "ircadb"}
    for (structure, dataset), values in t6["rows"].items():
        for metric, value in zip(t6["columns"], values):
            claims.append(Claim(
                f"table6:{structure}:{dataset}:{metric}", "Table 6", f"Table 6, {dataset}",
                f"{structure} {_metric_label(metric)}", t6["caption"], "absolute",
                value, partial(_table6, structure=structure, plane="fused", metric=metric),
                dataset=dataset_keys[dataset], metric=metric,
                paper_dice=_dice_of(metric, values[t6["columns"].index("dice")])))
    return claims


def _dice_of(metric: str, dice: float) -> float | None:
    """The paper's Dice of the same result, kept for an mIoU claim only."""
    return dice if metric == "miou" else None


_PLANES_QUOTE = ("Our method achieved a DICE of 0.9511, 0.9501 and 0.9465 respectively in "
                 "Axial, Coronal and Sagittal plane. And an average IoU of 0.9070, 0.8976 and "
                 "0.8988 respectively in Axial, Coronal and Sagittal plane.")
_ABSTRACT_QUOTE = ("The proposed approach achieved a mean IoU score of 0,9511 for liver and "
                   "0,9471 for lesions segmentation.")
_CONCLUSION_QUOTE = ("The model reaches a dice coefficient of 0.9199 and mIoU of 0.965 on test "
                     "data.")
_PARAMS_QUOTE = ("The summary of the model is: • Total of params: 38,059,141 • Trainable "
                 "params: 38,056,069 • Non-trainable params: 3,072")
_TIME_QUOTE = ("Training time was up to 3 hours per model, with an interference time up to "
               "0.01s per slice.")
_BATCH_NORM_CHOICE = ("`TuningConfig` puts BatchNorm in the ASPP only because its six 256-wide "
                      "BatchNorm layers hold exactly these 3,072 non-trainable weights (mean and "
                      "variance of 1,536 channels): the setting was chosen to match, so the match "
                      "is no evidence")
_OVERFIT_QUOTE = ("Although iterative learning improves the performance indices of our model, "
                  "after a certain number of iterations, an overfitting occurs when the "
                  "accuracy and dice on the validation continues increasing but decrease on "
                  "test data.")
_SOFT_VOTE_QUOTE = ("To merge result masks in 3D volume a soft voting is proposed instead of "
                    "hard voting classifiers (union, intersection, or majority voting) which "
                    "could lead to over or under-segmentation.")
_CRF_QUOTE = ("As post-processing method, we suggest use CRF just in the localization network. "
              "CRF shown a good result to remove small artifacts in the ROI. However, in the "
              "patches segmentation, and due to errors caused by the weak annotation the data "
              "distribution learned by the network is not completely correct, and CRF didn't "
              "bring any remarkable improvement.")


# §4.4's per-plane liver scores (axial, coronal, sagittal); its "average IoU" is compared with mIoU
PLANE_SCORES = {"dice": (0.9511, 0.9501, 0.9465), "miou": (0.9070, 0.8976, 0.8988)}
PLANES = ("axial", "coronal", "sagittal")


def _plane_claims() -> list[Claim]:
    claims = []
    for metric, row in PLANE_SCORES.items():
        for plane, value, dice in zip(PLANES, row, PLANE_SCORES["dice"]):
            name = "Dice" if metric == "dice" else "average IoU (mIoU)"
            claims.append(Claim(
                f"4.4:{plane}:{metric}", "§4.4, per plane", "§4.4",
                f"liver {name}, {plane} plane",
                _PLANES_QUOTE, "absolute", value,
                partial(_table6, structure="liver", plane=plane, metric=metric, fallback=True),
                metric=metric, paper_dice=_dice_of(metric, dice)))
    return claims


def _t5(metric: str, subset: str, n: int) -> float:
    return paper_tables.TABLE_5[metric][subset][n]


def _relative_claims() -> list[Claim]:
    t3, t4 = paper_tables.TABLE_3["rows"]["dice"], paper_tables.TABLE_4["rows"]["dice"]
    t5 = paper_tables.TABLE_5
    last = t5["iterations"][-1]
    peak = t5["iterations"][int(np.argmax(t5["dice"]["test"]))]
    _, paper_rise = after_test_peak(t5["dice"]["val"], t5["dice"]["test"])

    def pair(a, b):
        return lambda data: (a, b)

    patches = partial(_difference, source="patch_levels", chapter="patch_levels")
    fusion = partial(_difference, source="fusion", chapter="fusion", volumes=True)
    return [
        Claim("rel:patches_vs_none", "Relative claims", "Abstract, §3.4",
              "multi-level patches beat no patches (test Dice)",
              "To overcome the conventional methods drawbacks and provides greater retention of "
              "fine details, a multi-level patches wise training is proposed.", "relative", None,
              partial(patches, pair=lambda d: (_full_patch_variant(d), "none")),
              chapter="patch_levels", metric="dice"),
        Claim("rel:patches_all_vs_first", "Relative claims", "Table 3",
              "patches at every level beat patches at the first level only (test Dice)",
              paper_tables.TABLE_3["caption"], "relative", t3[-1] - t3[0],
              partial(patches, pair=lambda d: (_full_patch_variant(d),
                                               _table3_variant("Level-1 (256)", d))),
              chapter="patch_levels", metric="dice"),
        Claim("rel:loss_with_vs_without", "Relative claims", "Table 4",
              "the multi-level loss beats one loss on the final output (test Dice)",
              paper_tables.TABLE_4["caption"], "relative", t4[1] - t4[0],
              partial(_difference, source="multi_level_loss", chapter="multi_level_loss",
                      pair=lambda d: (_loss_variant("With", d), "final_only")),
              chapter="multi_level_loss", metric="dice"),
        Claim("rel:self_training_gain", "Relative claims", "Table 5, conclusion",
              f"Algorithm 1 improves test Dice (paper: N = {PAPER_KEPT_ROUND} − N = 0)",
              _OVERFIT_QUOTE, "relative",
              _t5("dice", "test", PAPER_KEPT_ROUND) - _t5("dice", "test", 0),
              _self_training_gain, chapter="self_training", metric="dice"),
        Claim("rel:self_training_overfit", "Relative claims", "Table 5, conclusion",
              "after its peak, test Dice falls while validation Dice still rises (validation "
              f"Dice, last round − the round of the test peak; paper: N = {peak} → {last})",
              _OVERFIT_QUOTE, "relative", paper_rise, _overfitting, chapter="self_training",
              metric="dice"),
        Claim("rel:soft_vs_best_plane", "Relative claims", "§3.10",
              "soft voting of the three planes beats the best single plane (test Dice)",
              "In soft voting, we predict the class labels based on the predicted probabilities "
              "for classifier and allows one mask to fail without downgrading the final results "
              "in the areas where the other two are successful.", "relative", None,
              partial(fusion, pair=lambda d: ("soft", _best_plane(d))),
              chapter="fusion", metric="dice"),
        *[Claim(f"rel:soft_vs_{vote}", "Relative claims", "§3.10",
                f"soft voting beats the {vote} vote (test Dice)", _SOFT_VOTE_QUOTE, "relative",
                None, partial(fusion, pair=pair("soft", vote)), chapter="fusion", metric="dice")
          for vote in ("union", "intersection", "majority")],
        Claim("rel:artifact_removal", "Relative claims", "§3.9, Fig. 13",
              "removing small artifacts improves the fused liver (test Dice)",
              "Figure. 13 Removing small artifacts: (a) final probability map and (b) output "
              "after removing false positive", "relative", None,
              partial(_difference, source="postprocessing", chapter="postprocessing",
                      pair=pair("both", "threshold"), volumes=True),
              chapter="postprocessing", metric="dice"),
        Claim("rel:crf_roi", "Relative claims", "§3.9, conclusion",
              "the CRF improves the localization network's ROI (ROI Dice)", _CRF_QUOTE,
              "relative", None,
              partial(_difference, source="postprocessing", chapter="postprocessing",
                      pair=pair("probability + Grad-CAM + CRF", "probability + Grad-CAM"),
                      part="crf", postprocessing="the localizer's ROI mask before the box "
                                                  "(prior.mode = mask), threshold 0.5"),
              chapter="postprocessing", metric="dice"),
        Claim("rel:crf_tuner", "Relative claims", "Conclusion",
              "the CRF brings no remarkable improvement to the tuning network's output",
              _CRF_QUOTE, "untestable", None,
              reason="the book applies the CRF to the localizer's ROI only, as the paper "
                     "suggests, never to the tuning network's output",
              chapter="postprocessing"),
        Claim("rel:small_objects", "Relative claims", "Conclusion",
              "the model does well on small objects compared with other models",
              "The results show that our model performs well on small objects comparing to "
              "other models due to our proposed tuning network with the fed patches in deep "
              "levels.", "untestable", None,
              reason="no other model is trained here, and the paper names none nor a "
                     "small-object score", chapter="results"),
    ]


CLAIMS: list[Claim] = [
    Claim("abstract:liver:miou", "Abstract and conclusion", "Abstract",
          "liver mean IoU (the number is Table 6's LiTS liver Dice)", _ABSTRACT_QUOTE,
          "absolute", 0.9511, partial(_table6, structure="liver", plane="fused", metric="miou"),
          metric="miou"),
    Claim("abstract:lesion:miou", "Abstract and conclusion", "Abstract",
          "lesion mean IoU (the number is Table 6's LiTS lesion accuracy)", _ABSTRACT_QUOTE,
          "absolute", 0.9471, partial(_table6, structure="lesion", plane="fused", metric="miou"),
          metric="miou"),
    Claim("conclusion:dice", "Abstract and conclusion", "Conclusion",
          "Dice on the test data (liver assumed; in no table)", _CONCLUSION_QUOTE, "absolute",
          0.9199, partial(_table6, structure="liver", plane="fused", metric="dice"),
          metric="dice"),
    Claim("conclusion:miou", "Abstract and conclusion", "Conclusion",
          "mIoU on the test data (liver assumed; in no table)", _CONCLUSION_QUOTE, "absolute",
          0.965, partial(_table6, structure="liver", plane="fused", metric="miou"),
          metric="miou", paper_dice=0.9199),
    *_plane_claims(),
    *[Claim(f"3.4:params:{label}", "§3.4, parameter count", "§3.4",
            f"{label} parameters of the tuning network", _PARAMS_QUOTE, "count", value,
            partial(_params, index=index), dataset=None, chapter="networks",
            construction=construction)
      for index, (label, value, construction) in enumerate((
          ("total", 38059141.0, ""), ("trainable", 38056069.0, ""),
          ("non-trainable", 3072.0, _BATCH_NORM_CHOICE)))],
    Claim("4.2:inference_time", "§4.2, inference time", "§4.2",
          "inference time up to 0.01 s per slice", _TIME_QUOTE, "untestable", 0.01,
          reason="a time on the paper's machine (one Tesla 16 GB GPU), not a score: no chapter "
                 "times the segmentation; `benchmarks/` times the networks and the cascade on a "
                 "GPU (the README's GPU figures), on another GPU than the paper's",
          dataset=None, chapter="report"),
    *_relative_claims(),
]


def all_claims() -> list[Claim]:
    """Tables 3–6 and :data:`CLAIMS`, in the order of :data:`GROUPS`."""
    claims = table_claims() + CLAIMS
    return sorted(claims, key=lambda c: GROUPS.index(c.group))  # stable within a group


# --------------------------------------------------------------------------- verdicts

def verdict(claim: Claim, ours: Measure | Missing | None,
            foreground: Measure | Missing | None = None) -> tuple[str, str]:
    """``(verdict, why)`` of a claim given our measurement and, for an mIoU claim, our
    foreground IoU under the same protocol (rules: module docstring)."""
    if claim.kind == "untestable":
        return "not testable here", claim.reason
    if ours is None or isinstance(ours, Missing):
        return "not run", ours.reason if ours else "no measurement"
    if claim.kind == "count":
        return _count_verdict(claim, ours)
    if claim.kind == "relative":
        return _relative_verdict(claim, ours)
    if claim.metric == "miou":
        return _miou_verdict(claim, ours, foreground)
    return _absolute_verdict(claim, ours)


def _count_verdict(claim: Claim, ours: Measure) -> tuple[str, str]:
    if ours.mean == claim.paper:
        if claim.construction:
            return "matched by construction", claim.construction
        return "reproduced", "the same count"
    excess = 100 * (ours.mean - claim.paper) / claim.paper
    return "not reproduced", (f"ours is {excess:+.1f} %: the paper gives neither the widths "
                              "nor the depth of its network")


def _relative_verdict(claim: Claim, ours: Measure) -> tuple[str, str]:
    sign = "+" if claim.sign > 0 else "−"
    diff = f"{ours.mean:+.3f}"
    if ours.n < 2 or ours.within_noise is None:
        return "inconclusive: one seed", f"difference {diff}; one seed measures no noise"
    text = f"{diff} ± {ours.sd:.3f} over {ours.n} seeds"
    if ours.refuted:
        return "not reproduced", f"{text}: {ours.refuted}"
    if ours.within_noise:
        return ("inconclusive: within the noise",
                f"{text}, within the noise (paired t-test, 95 %)")
    if ours.mean * claim.sign > 0:
        return "reproduced", f"{text}: the paper's sign ({sign}), outside the noise"
    return "not reproduced", f"{text}: the opposite sign to the paper's, outside the noise"


def interval(ours: Measure) -> tuple[float, str]:
    """Half-width of our interval around an absolute number, and what it covers:
    max(2 √(sd² + patient_sd²), :data:`TOLERANCE`)."""
    variance = (ours.sd or 0.0) ** 2 + (ours.patient_sd or 0.0) ** 2
    covers = ("seeds and test patients" if ours.patient_sd is not None
              else "seeds only: no per-patient scores")
    return max(2 * math.sqrt(variance), TOLERANCE), covers


def _absolute_verdict(claim: Claim, ours: Measure) -> tuple[str, str]:
    if claim.dataset is not None and ours.dataset != claim.dataset:
        return "not testable here", (f"the paper's number is on {DATASETS.get(claim.dataset)}; "
                                     f"ours is on {DATASETS.get(ours.dataset, ours.dataset)}")
    if ours.n < 2 or ours.sd is None:
        return ("inconclusive: one seed",
                "one seed measures no spread to compare the paper's value with")
    half, covers = interval(ours)
    gap = ours.mean - claim.paper
    if abs(gap) > half:
        return "not reproduced", (f"ours is {abs(gap):.3f} {'higher' if gap > 0 else 'lower'}, "
                                  f"beyond ± {half:.3f} ({covers})")
    if half > NOISE_BOUND:
        return "inconclusive: too noisy", (f"the paper's value is within ours ± {half:.3f} "
                                           f"({covers}), wider than ± {NOISE_BOUND}: any "
                                           "value near it would pass")
    return "consistent within noise", f"the paper's value is within ours ± {half:.3f} ({covers})"


def is_foreground_iou(miou: float, dice: float | None) -> bool:
    """Whether a printed mIoU equals D / (2 − D) of the Dice of the same result (within
    :data:`IOU_TOLERANCE`): the foreground IoU of that overlap, not a mean over classes."""
    return dice is not None and abs(miou - dice / (2 - dice)) <= IOU_TOLERANCE


def _miou_verdict(claim: Claim, ours: Measure,
                  foreground: Measure | Missing | None) -> tuple[str, str]:
    """Against our foreground IoU where the paper's mIoU is D / (2 − D) of its Dice; else the
    stricter of the verdicts against our mIoU (Eq. 12) and our foreground IoU."""
    if is_foreground_iou(claim.paper, claim.paper_dice):
        reason = (f"the paper's {claim.paper:.4f} = D / (2 − D) of its Dice "
                  f"{claim.paper_dice:.4f}, a foreground IoU")
        if not isinstance(foreground, Measure):
            return "not run", f"{reason}; we have no foreground IoU"
        decided, why = _absolute_verdict(claim, foreground)
        return decided, f"{reason}, set beside our foreground IoU {foreground.mean:.3f}: {why}"
    by_miou = _absolute_verdict(claim, ours)
    if not isinstance(foreground, Measure):
        return by_miou[0], f"{by_miou[1]} (we have no foreground IoU to set beside it)"
    by_iou = _absolute_verdict(claim, foreground)
    if by_miou[0] == by_iou[0] == "not testable here":
        return by_miou
    stricter = min(by_miou, by_iou, key=lambda v: STRICTER.index(v[0]))
    return stricter[0], (f"mIoU (Eq. 12): {by_miou[0]}, {by_miou[1]}; foreground IoU "
                         f"{foreground.mean:.3f}: {by_iou[0]}, {by_iou[1]}; the stricter kept")


# --------------------------------------------------------------------------- the table

def _paper_text(claim: Claim) -> str:
    if claim.paper is None:
        return "better (no number)" if claim.kind == "relative" else "–"
    if claim.kind == "count":
        return f"{claim.paper:,.0f}"
    if claim.kind == "relative":
        return f"{claim.paper:+.4f}"
    return f"{claim.paper:.4f}"


def _paper_dataset(claim: Claim) -> str | None:
    if claim.kind == "absolute":
        return DATASETS.get(claim.dataset)
    return "any" if claim.kind == "relative" else None


def _ours_text(claim: Claim, ours: Measure | Missing | None) -> str:
    if not isinstance(ours, Measure):
        return "–"
    if claim.kind == "count":
        return f"{ours.mean:,.0f}"
    value = f"{ours.mean:+.3f}" if claim.kind == "relative" else f"{ours.mean:.3f}"
    if ours.sd is not None and ours.n > 1:
        value += f" ± {ours.sd:.3f}"
    value += f" ({ours.n} seed{'s' if ours.n != 1 else ''})"
    if ours.patient_sd is not None:
        value += f"; ± {ours.patient_sd:.3f} over test patients"
    return value + (f"; {ours.note}" if ours.note else "")


def claims_table(results: Mapping[str, dict], claims: Sequence[Claim] | None = None) -> list[dict]:
    """One row (a JSON-ready dict) per claim: the paper's value and ours, the protocol behind
    ours, the verdict and why, and the chapter. ``results`` is :func:`load_results`."""
    rows = []
    for claim in all_claims() if claims is None else claims:
        ours = claim.measure(results) if claim.measure else None
        foreground = claim.foreground_measure()
        foreground = foreground(results) if foreground else None
        decided, why = verdict(claim, ours, foreground)
        measured = isinstance(ours, Measure)
        rows.append({
            "key": claim.key, "group": claim.group, "where": claim.where, "claim": claim.claim,
            "quote": claim.quote, "kind": claim.kind, "metric": claim.metric,
            "paper": claim.paper, "paper_text": _paper_text(claim),
            "paper_dataset": _paper_dataset(claim),
            "ours": ({"mean": ours.mean, "sd": ours.sd, "n": ours.n,
                      "within_noise": ours.within_noise, "patient_sd": ours.patient_sd,
                      "foreground_iou": (foreground.mean if isinstance(foreground, Measure)
                                         else None)} if measured else None),
            "ours_text": _ours_text(claim, ours),
            "dataset": (DATASETS.get(ours.dataset, ours.dataset)
                        if measured and ours.dataset else None),
            "split": ours.split if measured else "–",
            "aggregation": ours.aggregation if measured else "–",
            "postprocessing": ours.postprocessing if measured else "–",
            "source": (ours.source if ours is not None else "") if claim.measure else "",
            "chapter": (ours.chapter if ours is not None and ours.chapter else claim.chapter),
            "verdict": decided, "why": why,
        })
    return rows


def counts(rows: Iterable[Mapping]) -> dict[str, int]:
    """Rows per verdict, every verdict of :data:`VERDICTS` present (0 if none)."""
    found = Counter(row["verdict"] for row in rows)
    return {name: found.get(name, 0) for name in VERDICTS}


def sections(rows: Sequence[Mapping]) -> list[tuple[str, list[Mapping]]]:
    """The rows in display order, as ``(title, rows)``: one section per group of
    :data:`GROUPS`, the relative claims split by chapter (so each section shares a protocol)."""
    found = []
    for group in GROUPS:
        in_group = [row for row in rows if row["group"] == group]
        if group != "Relative claims":
            found += [(group, in_group)] if in_group else []
            continue
        for chapter in dict.fromkeys(row["chapter"] for row in in_group):
            title = f"{group}: {CHAPTERS.get(chapter, chapter)}"
            found.append((title, [row for row in in_group if row["chapter"] == chapter]))
    return found


def link(chapter: str) -> str:
    """A Markdown link to a chapter of the book (relative to ``book/``)."""
    return f"[{CHAPTERS.get(chapter, chapter)}]({chapter}.ipynb)"


def _escape(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def protocol(row: Mapping) -> str:
    """The protocol behind our number of a :func:`claims_table` row, in one line ("–" when
    there is no number of ours)."""
    if row["ours"] is None:
        return "–"
    parts = [f"{row['paper_dataset'] or '–'} → {row['dataset'] or '–'}"]
    parts += [row[key] for key in ("split", "aggregation", "postprocessing") if row[key] != "–"]
    return "; ".join(parts)


def to_markdown(rows: Sequence[Mapping], shared: bool = True) -> str:
    """A Markdown table of :func:`claims_table` rows: claim, where, the paper's value, ours,
    the protocol behind ours (dataset paper → ours; split train / val / test; aggregation;
    post-processing), the verdict and why, the chapter. With ``shared``, a protocol common to
    every row with a number of ours is written once above the table instead of in a column."""
    protocols = {protocol(row) for row in rows if row["ours"] is not None}
    common = shared and len(protocols) == 1
    header = ["claim", "where", "paper", "ours"] + ([] if common else ["protocol of ours"])
    header += ["verdict", "chapter"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["claim"], row["where"], row["paper_text"], row["ours_text"]]
        cells += [] if common else [protocol(row)]
        cells += [f"**{row['verdict']}**: {row['why']}", link(row["chapter"])]
        lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
    table = "\n".join(lines)
    return f"Protocol of ours: {_escape(protocols.pop())}.\n\n{table}" if common else table


# --------------------------------------------------------------------------- the paper itself

def _dice_miou_pairs() -> list[tuple[str, float, float]]:
    """Every (where, Dice, mIoU) pair the paper prints for one result."""
    pairs = []
    for name, table in (("Table 3", paper_tables.TABLE_3), ("Table 4", paper_tables.TABLE_4)):
        for column, d, m in zip(table["columns"], table["rows"]["dice"], table["rows"]["miou"]):
            pairs.append((f"{name}, {column}", d, m))
    t5 = paper_tables.TABLE_5
    for subset in ("val", "test"):
        for n, d, m in zip(t5["iterations"], t5["dice"][subset], t5["miou"][subset]):
            pairs.append((f"Table 5, N = {n}, {subset}", d, m))
    t6 = paper_tables.TABLE_6
    for (structure, dataset), (_, d, m) in t6["rows"].items():
        pairs.append((f"Table 6, {structure}, {dataset}", d, m))
    for plane, d, m in zip(PLANES, PLANE_SCORES["dice"], PLANE_SCORES["miou"]):
        pairs.append((f"§4.4, {plane}", d, m))
    return pairs


def iou_consistency(tolerance: float = IOU_TOLERANCE) -> list[dict]:
    """For every Dice and mIoU the paper prints for one result: D / (2 − D), the foreground IoU
    that Dice D implies, whether the printed mIoU equals it (within ``tolerance``) and whether
    it exceeds the Dice (which no foreground IoU can)."""
    rows = []
    for where, d, m in _dice_miou_pairs():
        implied = d / (2 - d)
        rows.append({"where": where, "dice": d, "miou": m, "implied_iou": implied,
                     "foreground_iou": abs(m - implied) <= tolerance, "miou_above_dice": m > d})
    return rows


def paper_values() -> list[float]:
    """Every score printed in Tables 3–6."""
    values = []
    for table in (paper_tables.TABLE_3, paper_tables.TABLE_4):
        values += [v for row in table["rows"].values() for v in row]
    t5 = paper_tables.TABLE_5
    values += [v for metric in ("accuracy", "dice", "miou") for subset in ("val", "test")
               for v in t5[metric][subset]]
    values += [v for row in paper_tables.TABLE_6["rows"].values() for v in row]
    return values


# --------------------------------------------------------------------------- ambiguities

def ambiguities(settings=None) -> list[dict]:
    """Each ambiguity or inconsistency of the paper: ``topic``, ``where``, the paper's words
    (``quote``), the ``choice`` this code makes (with the setting that holds it, the values of
    the ``paper`` profile, and this run's where ``settings`` — a Profile — differs) and the
    ``chapters`` that discuss it (``report``: this chapter's notes)."""
    from liverseg import config

    paper = config.profile("paper")
    run = settings

    def value(path: str) -> str:
        def get(profile):
            node = profile
            for part in path.split("."):
                node = getattr(node, part)
            return node
        text = f"`{path}` = {_fmt(get(paper))}"
        if run is not None and get(run) != get(paper):
            text += f" (this run, `{run.name}`: {_fmt(get(run))})"
        return text

    crf = paper.prior.crf
    t6 = paper_tables.TABLE_6["rows"][("liver", "LiTS")]
    t5 = paper_tables.TABLE_5
    n = PAPER_KEPT_ROUND
    return [
        _item("IoU denominator (Eq. 11)", "§4.3, Eq. 11",
              "IoU = |X∩Y| / |X+Y| (11)",
              "IoU = |X ∩ Y| / |X ∪ Y| (`liverseg.metrics.iou`): with |X| + |Y| below the line "
              "a perfect segmentation would score 0.5, not the stated 1.", ["report", "results"]),
        _item("mIoU: which classes (Eq. 12)", "§4.3, Eq. 12; Tables 3–6",
              "mIoU = 1/C Σ_c IoU_c (12)",
              "`miou` in every results file is Eq. 12 over background and foreground "
              "(`liverseg.metrics.miou`, classes 0 and 1), the literal reading; the foreground "
              "IoU (`iou`) is shown beside it. The report judges a paper's mIoU that equals "
              "D / (2 − D) of its Dice against our foreground IoU, any other against both, "
              "keeping the stricter verdict: the background's IoU near 1 would otherwise lift "
              "a poor liver to the paper's number.",
              ["report", "results"]),
        _item("mIoU above Dice in Table 5", "Table 5",
              "N = 5 0,9732 0,9621 0,9511 0.9331 0,9700 0,9070",
              "A foreground IoU never exceeds the Dice of the same masks; an mIoU with the "
              "background can. Such an mIoU is judged against both our mIoU (Eq. 12) and our "
              "foreground IoU, the stricter verdict kept.", ["report"]),
        _item("liver mIoU 0.907 = D / (2 − D) of Dice 0.9511", "Tables 3, 4, 6; §4.4",
              "LiTS 0,9732 0,9511 0,9070",
              "0.9511 / (2 − 0.9511) = 0.9068: the foreground IoU of the same overlap, "
              "inconsistent with Table 5's mIoU above Dice. Wherever the paper's mIoU equals "
              "D / (2 − D) of its Dice, the report judges it against our foreground IoU.",
              ["report", "results"]),
        _item("Table 6 mixes validation and test", "Table 6 vs Table 5",
              "the Table 6 present the obtained results",
              f"Table 6's LiTS liver accuracy and Dice ({t6[0]}, {t6[1]}) are Table 5's "
              f"*validation* scores at N = {n} ({t5['accuracy']['val'][n]}, "
              f"{t5['dice']['val'][n]}), its mIoU the *test* score ({t5['miou']['test'][n]}); "
              f"Table 5's test Dice at N = {n} is {t5['dice']['test'][n]}. Every number of ours "
              "is on test patients.", ["report", "results"]),
        _item("Table 6: which plane", "Table 6, §4.4", _PLANES_QUOTE,
              f"Table 6's LiTS liver row equals §4.4's axial Dice and IoU "
              f"({PLANE_SCORES['dice'][0]}, {PLANE_SCORES['miou'][0]}), not a fusion of the "
              "planes; the report sets Table 6 beside our fused volume (Eq. 8), the output of "
              "the framework, and §4.4 beside each plane.", ["report", "fusion", "results"]),
        _item("the abstract's 'mean IoU'", "Abstract", _ABSTRACT_QUOTE,
              "0.9511 is Table 6's LiTS liver Dice and 0.9471 its LiTS lesion accuracy; the "
              "report compares both with our mIoU, as the abstract names them.", ["report"]),
        _item("the conclusion's 0.9199 / 0.965", "Conclusion", _CONCLUSION_QUOTE,
              "Neither number is in any table; we compare them with our fused liver on the test "
              "patients, the framework's final output.", ["report", "results"]),
        _item("lesion Dice 0.9313 on LiTS", "Table 6",
              "Lesion LiTS 0,9471 0,9313 0,8718",
              "Far above the best published per-case tumour Dice on LiTS (about 0.74 on the "
              "LiTS benchmark's test set, about 0.64 in nnU-Net's cross-validation). A global "
              "Dice (all lesion voxels of the dataset pooled) runs much higher than the per-case "
              "mean; the results chapter reports both (`dice` and `dice_global`).",
              ["report", "results"]),
        _item("Tables 7 and 8", "§4.4",
              "The statistical results of the proposed method are represented in Table 7 for "
              "Liver and in Table 8 for Lesions.",
              "The paper has no Tables 7 or 8; we read Table 6 (liver and lesion rows) as their "
              "summary, and the results chapter reports the LiTS metrics per structure.",
              ["report", "results"]),
        _item("the dataset of Tables 3–5 and §4.4", "Tables 3–5, §4.4",
              "Table 3. Impact of patch level on segmentation performance (Axial plan)",
              "No dataset is named; their final values equal Table 6's LiTS liver row, so the "
              "report takes them to be LiTS (absolute claims are testable on LiTS only).",
              ["report"]),
        _item("ASPP rates", "§3.5, Fig. 10",
              "Rates of 6, 12, and 18 used. […] Figure. 10 Multiple scales features using "
              "multiple parallel filters with different rates 4,8,12 and 16",
              f"The text's rates: {value('tuning.aspp_rates')} (DeepLabv3's at output stride "
              "16); `aspp_rates=(4, 8, 12, 16)` gives the caption's. The small profiles scale "
              "the rates with their smaller bottleneck.", ["networks"]),
        _item("α / β indexing of the multi-level loss", "§3.6, Eq. 6",
              "α = N − i and β = i and the top layer loss is defined as: l = Σ_{i=2}^{N} l_i "
              "while N is the number of layers in the network.",
              f"i counts from the deepest output, so the final output gets Dice only: "
              f"{value('train.loss_scheme')}; `paper_reversed` is the other reading.",
              ["multi_level_loss", "networks"]),
        _item("patch layout", "§3.2, §3.4",
              "slices and their corresponding ground-truth segmentation maps are divided into "
              "different patches, by using dividing by 2, 4 and 8 (256x256, 128x128, and 64x64) "
              "patches sizes",
              f"Tiles of the feature map's size stacked as channels: "
              f"{value('tuning.patch_arrangement')} at levels {value('tuning.patch_levels')}; "
              "`space_to_depth` is the aligned alternative.", ["patch_levels", "networks"]),
        _item("Table 3's levels: cumulative or alone", "Table 3, §4.4",
              "we evaluate integrating patches in each level to measure the impact of this "
              "proposed strategy on the final performance",
              "Cumulative: Level-k has the patches of the first k levels (its Level-3 column is "
              "the paper's final result).", ["patch_levels"]),
        _item("residual blocks: concatenation or addition", "§3.7",
              "Residual blocks Fig. 11 shares the same idea of concatenating the input and "
              "propagating the low fine details.",
              f"He et al.'s addition: {value('tuning.residual_merge')}; `concat` is the "
              "literal reading.", ["networks"]),
        _item("CRF parameters", "§3.3, §3.9",
              "At the end of the network CRF is used as post-processing step to refine the "
              "segmentation.",
              f"Not given; ours (`prior.crf`, at 512 px): {crf.iterations} mean-field "
              f"iterations, Gaussian σ {crf.gaussian_sxy:g} px (weight {crf.gaussian_compat:g}), "
              f"bilateral σ {crf.bilateral_sxy:g} px and {crf.bilateral_srgb:g} grey levels "
              f"(weight {crf.bilateral_compat:g}); {value('prior.crf.bilateral_sxy')}.",
              ["networks", "postprocessing"]),
        _item("median filter size", "§3.2, Eq. 2",
              "I′(u, v) ← median{I(u + i, v + j) ∣ (i, j) ∈ R} (2) Where I’ is the "
              "filtered image, I is the image to filter, and R the moving region.",
              f"R is not sized: {value('preprocess.median_size')}, per slice "
              f"({value('preprocess.median_dims')}).", ["data_preparation"]),
        _item("order of the preprocessing steps", "§3.2",
              "We propose Z-score Eq. (1)",
              "Window, then median, then z-score (`liverseg.preprocess.preprocess`).",
              ["data_preparation"]),
        _item("the split's unit", "§3.1",
              "Training set: this subset contains most of the initial data (70% in this case).",
              f"By patient, {value('split.fractions')}, never by slice.",
              ["data_preparation", "networks"]),
        _item("Algorithm 1: pseudo-labels and stop", "§3.8, Algorithm 1",
              "Step 5: X = X ⋃ P and Y = Y ⋃ S […] Step 7: Repeat step 3 until the "
              "integration model's performance stops improving.",
              f"S are the network's own masks ({value('self_training.pseudo_labels')}); the "
              f"rounds stop on validation Dice ({value('self_training.patience')}, "
              f"{value('self_training.iterations')}), the best round kept.",
              ["self_training", "networks"]),
        _item("post-processing of the tuning network", "§3.9, Fig. 13",
              "Figure. 13 Removing small artifacts: (a) final probability map and (b) output "
              "after removing false positive",
              f"Largest liver component, holes filled ({value('inference.fill')}), lesion "
              f"components below {value('inference.min_lesion_size')} mm³ made liver.",
              ["postprocessing"]),
        _item("3D-IRCADb-01 slice size", "§4.1, §4.4",
              "Images are provided in DICOM format in 256x256 size.",
              f"3D-IRCADb-01's DICOM slices are 512 × 512 as distributed; every slice is resized "
              f"to the profile's input ({value('image_size')}).", ["data_preparation"]),
        _item("contrastive learning on patches", "§3.8",
              "In our approaches patches are used apply contrastive learning to enforce network "
              "to cluster the same instances and push away the distinct instances.",
              "Not implemented: the paper names no pairs, loss, projection or temperature. The "
              "patches enter the tuning network as inputs at its encoder levels "
              f"({value('tuning.patch_levels')}) and, in Algorithm 1, as pseudo-labelled "
              f"tiles; every network trains on its segmentation loss alone "
              f"({value('train.loss_scheme')}).", ["networks", "self_training"]),
        _item("ConvBox: two placements", "§3.4, §3.8",
              "Within each skip connection, the intersection between the unpooled map from a "
              "level contracting layer and the location feature map from the ConvBox layer is "
              "then obtained. […] The output in the correspondent convolved features of each "
              "layer for even full images and their patches, a multiply operation is then "
              "performed between output and the features from network expanding path as prior "
              "integration.",
              "§3.4's: in each skip connection the contracting path's features are multiplied "
              "by the ConvBox's location map (the intersection read as a product), then "
              f"concatenated with the expanding path ({value('tuning.use_convbox')}; "
              f"{value('tuning.convbox_channels')}: maps per level). §3.8's product with the "
              "expanding path's features, and a ConvBox on the patches, are not implemented.",
              ["networks"]),
        _item("3D patches", "§3.7",
              "Additionally, using 3D patches take advantage of the context in the three "
              "directions is a good way to improve the context information provided in the "
              "patch (axial, coronal and sagittal).",
              "Not implemented: every patch is 2D, cut from one slice of one plane; the three "
              f"directions meet only in one network per plane ({value('planes')}) fused by "
              "soft voting (§3.10).", ["patch_levels", "fusion"]),
        _item("inference time", "§4.2", _TIME_QUOTE,
              "A claim of the report, not testable in a run: no chapter times the "
              "segmentation, and the time depends on the machine (the paper's: one Tesla 16 GB "
              "GPU). `benchmarks/` times the networks and the whole cascade on a GPU; the "
              "README gives the figures.", ["report"]),
        _item("accuracy's scale", "§4.3",
              "Accuracy values range from 0 to 100 and reflect the percentage of correctly "
              "predicted pixels.",
              "The tables print fractions (0.9732); ours are fractions too.", ["report"]),
    ]


def _fmt(value) -> str:
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return repr(value) if isinstance(value, str) else f"{value}"


def _item(topic: str, where: str, quote: str, choice: str, chapters: list[str]) -> dict:
    return {"topic": topic, "where": where, "quote": quote, "choice": choice,
            "chapters": chapters}


def ambiguities_markdown(items: Sequence[Mapping]) -> str:
    """A Markdown table of :func:`ambiguities`."""
    lines = ["| ambiguity | where | the paper | our choice | discussed in |",
             "|---|---|---|---|---|"]
    for item in items:
        cells = [item["topic"], item["where"], f"“{item['quote']}”", item["choice"],
                 ", ".join(link(c) for c in item["chapters"])]
        lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- saving

def save(path: str | Path, rows: Sequence[Mapping], items: Sequence[Mapping],
         results: Mapping[str, dict]) -> Path:
    """Write the report (rows, counts per verdict, ambiguities, the files it read) as JSON."""
    data = {"experiment": "report", "sources": sorted(results), "tolerance": TOLERANCE,
            "noise_bound": NOISE_BOUND, "counts": counts(rows), "claims": list(rows),
            "ambiguities": list(items)}
    return atomic_write_text(path, json.dumps(data, indent=1) + "\n")
