"""Table 6: the whole system — both cascades, every plane, fused — scored per test patient.

The results chapter of the book runs this. For each seed, :func:`system_model_folder` gathers
the liver networks of every plane (:func:`~liverseg.experiments.volumes.plane_model_folder`,
the fusion chapter's, read back from the store) and the lesion networks of every plane
(trained, or read back, by :func:`~liverseg.train.store.train_networks` on the slices of
:func:`~liverseg.train.store.prepare` with ``structure="lesion"``: the reference
liver's view, :mod:`liverseg.lesion_view`, label 2 the foreground) into one model folder, the
one ``liverseg segment --model`` reads. :func:`segment_systems` then segments a test volume as
:meth:`liverseg.inference.volume.Segmenter.segment` does — liver fused and reduced to its
largest component, lesions fused inside it, the 0/1/2 label post-processed — once with all the
planes ("fused") and once with each plane alone, and :func:`score_case` scores each label with
the paper's overlap metrics and the LiTS set (:func:`liverseg.metrics.evaluate_case`).

Metrics (per test patient, on the whole volume in its own geometry, then averaged):

* ``accuracy``, ``dice``, ``iou``, ``miou`` — :func:`liverseg.train.scores.overlap_scores` of
  the structure's mask (liver: label ≥ 1; lesion: label 2): ``miou`` is the mean of the
  background's and the structure's IoU (background **included**; a class absent from both
  masks is skipped, so a lesion-free patient with no lesion found scores 1);
* ``voe``, ``rvd``, ``assd``, ``msd`` (the maximum symmetric surface distance, MSSD, i.e. the
  Hausdorff distance), ``rmsd`` — mm for the distances; undefined (an empty mask) values are
  skipped in the means and counted;
* pooled over the test patients of a seed: ``dice_global`` (2 Σ|X ∩ Y| / Σ(|X| + |Y|)) and, for
  lesions, detection ``precision`` and ``recall`` (connected components matched at IoU > 0.5,
  :func:`liverseg.metrics.lesion_detection`, counts summed over the patients).

Each seed's value is then one number per metric; :func:`table6` gives their mean and sample
standard deviation over seeds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from liverseg import __version__
from liverseg.config import Profile
from liverseg.experiments.volumes import plane_model_folder, plane_probabilities
from liverseg.io.atomic import atomic_path, atomic_write_text
from liverseg.labels import LESION, LIVER
from liverseg.model_folder import network_file, write_model_folder
from liverseg.train.store import Data, prepare, rounds_key, train_networks

STRUCTURES = ("liver", "lesion")
FUSED = "fused"
OVERLAP_METRICS = ("accuracy", "dice", "miou")  # the paper's (Table 6)
CASE_METRICS = ("accuracy", "dice", "iou", "miou", "voe", "rvd", "assd", "msd", "rmsd")
POOLED_METRICS = ("dice_global",)
DETECTION_METRICS = ("precision", "recall")
LITS_METRICS = ("dice_global", "voe", "rvd", "assd", "msd", "rmsd")


# ---------------------------------------------------------------------------- model folder


def with_lesion_changes(settings: Profile,
                        changes: Mapping[str, object] | None = None) -> Profile:
    """``settings`` with ``changes`` to its lesion section (``Profile.replace`` keys under
    ``lesion.``: the lesion networks' own input size, widths, training, sampling, loss and
    synthesis, :class:`~liverseg.config.LesionConfig`); the liver networks stay as they are.

    Raises:
        ValueError: a change outside the lesion section.
    """
    changes = dict(changes or {})
    bad = [key for key in changes if not key.startswith("lesion.")]
    if bad:
        raise ValueError(f"lesion_changes may only change the lesion section ('lesion.…'), "
                         f"got {bad}")
    return settings.replace(**changes)


def system_planes(settings: Profile) -> tuple[str, ...]:
    """The planes the system is built of: ``experiments.system_planes`` if set (a cheaper
    system for the ``smoke`` profile), else ``settings.planes``."""
    return tuple(settings.experiments.system_planes or settings.planes)


def system_model_folder(store: str | Path, settings: Profile, data_dir=None,
                        planes: Sequence[str] | None = None,
                        lesion_changes: Mapping[str, object] | None = None,
                        progress: bool = True) -> tuple[Path, Data]:
    """The liver and lesion networks of ``planes`` (default :func:`system_planes`) for
    ``settings.train.seed``, as one model folder ``store/models/system-seed-{s}-{key}``;
    returns it and the liver :class:`~liverseg.train.store.Data` (the split and the
    test cases).

    The liver networks are :func:`~liverseg.experiments.volumes.plane_model_folder`'s (trained
    once, shared with the fusion and post-processing chapters); the lesion networks of each
    plane are trained with ``settings.stage("lesion")`` after :func:`with_lesion_changes` — or
    read back: a second call trains nothing. The manifest holds the settings tree (what
    inference reads, the lesion section included) and, in ``info``, the lesion stage's
    settings, the split and the liver folder's name (whose ``probabilities/`` cache
    :func:`segment_systems` reuses).
    """
    from liverseg.train.system import load_cases

    store = Path(store)
    planes = tuple(planes or system_planes(settings))
    cases = load_cases(settings, data_dir, progress)  # once, not once per plane and structure
    liver_dir, data = plane_model_folder(store, settings, planes, data_dir=data_dir,
                                         progress=progress, cases=cases)
    settings = with_lesion_changes(settings, lesion_changes)
    lesion = settings.stage("lesion")
    prepared = [prepare(settings, store, plane=plane, structure="lesion", cases=cases,
                        progress=progress) for plane in planes]
    fingerprint = "-".join([liver_dir.name, rounds_key(lesion)]
                           + [d.fingerprint for d in prepared])
    key = hashlib.sha1(fingerprint.encode()).hexdigest()[:10]
    folder = store / "models" / f"system-seed-{settings.train.seed}-{key}"
    if (folder / "liverseg-model.json").is_file():
        return folder, data
    networks = {(plane, "liver", network): liver_dir / network_file(plane, "liver", network)
                for plane in planes for network in ("localizer", "tuner")}
    for plane, lesion_data in zip(planes, prepared):
        tag = f"{plane} lesion seed {settings.train.seed}"
        trained = train_networks(lesion_data, lesion, store, progress, tag)
        networks[plane, "lesion", "localizer"] = trained.front.localizer.path
        networks[plane, "lesion", "tuner"] = trained.model_path  # Algorithm 1's best round
        del trained
    write_model_folder(folder, settings, networks,
                       {"split": data.split._asdict(), "liver_model": liver_dir.name,
                        "lesion_settings": lesion.to_dict()})
    return folder, data


# ---------------------------------------------------------------------------- segmenting


def segment_systems(segmenter, case, cache: str | Path | None = None) -> dict[str, np.ndarray]:
    """``{plane: label, ..., "fused": label}``: ``case`` segmented by each plane's networks
    alone and by all of them fused, each as :meth:`Segmenter.segment` does with those planes
    (uint8 0/1/2 ``(z, y, x)``, the case's geometry; ``Segmenter(folder, planes=[p])`` gives
    the same labels).

    ``segmenter`` is a :class:`~liverseg.inference.volume.Segmenter` of a
    :func:`system_model_folder`. The liver probabilities of each plane are read from (or
    written to) the liver folder's ``probabilities/`` cache when the model folder names one
    (:func:`~liverseg.experiments.volumes.plane_probabilities`); the labels are cached in
    ``cache`` (``{case}.npz``) when given.
    """
    from liverseg.inference.fusion import FusionAccumulator
    from liverseg.postprocess import largest_component, postprocess_label
    from liverseg.preprocess import preprocess

    path = Path(cache) / f"{case.case_id}.npz" if cache else None
    systems = (*segmenter.planes, FUSED)
    if path is not None and path.is_file():
        with np.load(path) as saved:
            if set(saved.files) == set(systems):
                return {name: saved[name] for name in systems}
    folder, s = segmenter.folder, segmenter.settings
    liver_cache = None
    if folder.info.get("liver_model"):
        liver_cache = folder.root.parent / folder.info["liver_model"] / "probabilities"
    liver_probability = plane_probabilities(segmenter, case, liver_cache)
    hu = np.asarray(case.image.array, np.float32)
    image = preprocess(hu, s.preprocess, source=case.image.path)
    inference = s.inference
    lesions = inference.lesions and "lesion" in folder.structures
    labels = {}
    for name in systems:
        planes = segmenter.planes if name == FUSED else (name,)
        if name == FUSED and len(planes) == 1:  # one plane: the fused system is that plane's
            labels[name] = labels[planes[0]]
            continue
        fused = FusionAccumulator(segmenter.fusion, image.shape, inference.threshold)
        for plane in planes:
            fused.add(liver_probability[plane])
        liver = largest_component(fused.result())
        label = liver.astype(np.uint8) * LIVER
        if lesions and liver.any():
            label[segmenter.find_lesions(image, hu, liver, planes)[0]] = LESION
        labels[name] = postprocess_label(label, fill=inference.fill,
                                         min_lesion_size=inference.min_lesion_size,
                                         spacing=case.image.spacing)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **labels)
    return labels


# ---------------------------------------------------------------------------- scoring


def score_case(label: np.ndarray, reference: np.ndarray, spacing) -> dict[str, dict]:
    """``{"liver": scores, "lesion": scores}`` of a 0/1/2 ``label`` against ``reference``.

    Each holds :data:`CASE_METRICS` (``None`` where undefined: a distance to an empty mask),
    the voxel counts (``pred_voxels``, ``ref_voxels``, ``intersection_voxels``) and ``empty``;
    the lesion block adds the detection counts ``tp``, ``n_pred``, ``n_ref`` and this
    patient's ``precision`` and ``recall``.
    """
    from liverseg.metrics import evaluate_case
    from liverseg.train.scores import overlap_scores

    label, reference = np.asarray(label), np.asarray(reference)
    lits = evaluate_case(label, reference, spacing)
    out = {}
    for structure in STRUCTURES:
        if structure == "liver":
            pred, ref = label >= LIVER, reference >= LIVER
        else:
            pred, ref = label == LESION, reference == LESION
        block = lits[structure]
        row = {**overlap_scores(pred, ref),
               **{key: block[key] for key in ("voe", "rvd", "assd", "rmsd")}, "msd": block["mssd"],
               **{key: block[key] for key in ("pred_voxels", "ref_voxels", "intersection_voxels",
                                              "empty")}}
        if structure == "lesion":
            detection = block["detection"]
            row.update({key: detection[key] for key in ("tp", "n_pred", "n_ref", "precision",
                                                        "recall")})
        out[structure] = row
    return out


def case_rows(seed: int, case_id: str, labels: Mapping[str, np.ndarray], reference: np.ndarray,
              spacing) -> list[dict]:
    """The per-case rows of one test patient: one per structure and system (plane or fused),
    ``{"seed", "case", "structure", "plane", **scores}`` (:func:`score_case`)."""
    rows = []
    for plane, label in labels.items():
        scores = score_case(label, reference, spacing)
        rows += [{"seed": int(seed), "case": str(case_id), "structure": structure,
                  "plane": plane, **scores[structure]} for structure in STRUCTURES]
    return rows


def seed_values(rows: Sequence[Mapping]) -> dict[str, float | None]:
    """One seed's number per metric from its per-case rows of one structure and plane: the
    mean over patients of each of :data:`CASE_METRICS` (``None`` values skipped; ``None`` if
    all are), ``dice_global`` from the pooled voxel counts and, when the rows have detection
    counts, ``precision`` and ``recall`` from the pooled component counts (``None`` with no
    component predicted / in the reference)."""
    values: dict[str, float | None] = {}
    for metric in CASE_METRICS:
        finite = [row[metric] for row in rows if row.get(metric) is not None]
        values[metric] = float(np.mean(finite)) if finite else None
    intersection = sum(row["intersection_voxels"] for row in rows)
    total = sum(row["pred_voxels"] + row["ref_voxels"] for row in rows)
    values["dice_global"] = 2.0 * intersection / total if total else 1.0
    if rows and all("tp" in row for row in rows):
        tp = sum(row["tp"] for row in rows)
        n_pred, n_ref = sum(row["n_pred"] for row in rows), sum(row["n_ref"] for row in rows)
        values["precision"] = tp / n_pred if n_pred else None
        values["recall"] = tp / n_ref if n_ref else None
    return values


def over_seeds(values: Sequence[float | None]) -> dict:
    """``{"mean", "sd", "n_seeds"}`` of per-seed values, ``None`` ones left out: the sample
    standard deviation (ddof = 1), ``None`` with fewer than two seeds (not measured)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": None, "sd": None, "n_seeds": 0}
    sd = float(np.std(finite, ddof=1)) if len(finite) > 1 else None
    return {"mean": float(np.mean(finite)), "sd": sd, "n_seeds": len(finite)}


def table6(per_case: Sequence[Mapping]) -> dict:
    """``{structure: {plane: {metric: over_seeds(...)}}}`` from the per-case rows.

    For each structure and plane (in the rows' order) each seed gives one value per metric
    (:func:`seed_values`), then :func:`over_seeds` takes their mean and sd. Metrics: the
    paper's :data:`OVERLAP_METRICS`, ``iou``, the LiTS :data:`LITS_METRICS` and for the
    lesions :data:`DETECTION_METRICS`.
    """
    out: dict = {}
    structures = list(dict.fromkeys(row["structure"] for row in per_case))
    for structure in structures:
        rows = [row for row in per_case if row["structure"] == structure]
        out[structure] = {}
        for plane in dict.fromkeys(row["plane"] for row in rows):
            seeds = list(dict.fromkeys(row["seed"] for row in rows if row["plane"] == plane))
            per_seed = [seed_values([row for row in rows
                                     if row["plane"] == plane and row["seed"] == seed])
                        for seed in seeds]
            metrics = ("accuracy", "dice", "iou", "miou", *LITS_METRICS)
            if structure == "lesion":
                metrics += DETECTION_METRICS
            out[structure][plane] = {metric: over_seeds([v.get(metric) for v in per_seed])
                                     for metric in metrics}
    return out


def ranked_cases(per_case: Sequence[Mapping], structure: str = "liver", plane: str = FUSED,
                 metric: str = "dice") -> list[str]:
    """Test patients from best to worst by ``metric`` of ``structure`` and ``plane``, averaged
    over seeds. For the lesions only patients with a reference lesion are ranked (all of them
    if none has one)."""
    rows = [row for row in per_case if row["structure"] == structure and row["plane"] == plane]
    if structure == "lesion" and any(row["ref_voxels"] for row in rows):
        rows = [row for row in rows if row["ref_voxels"]]
    by_case: dict[str, list] = {}
    for row in rows:
        if row.get(metric) is not None:
            by_case.setdefault(row["case"], []).append(row[metric])
    return sorted(by_case, key=lambda case: -float(np.mean(by_case[case])))


# ---------------------------------------------------------------------------- the experiment


@dataclasses.dataclass
class SystemResults:
    """Table 6 of one dataset: per-case rows over seeds, and what produced them."""

    dataset: str
    seeds: list[int]
    settings: dict
    lesion_settings: dict
    split: dict
    per_case: list[dict]
    model_dirs: dict  # seed → the name of its system model folder in ``store/models``
    seconds: float
    test_cases: list = dataclasses.field(default_factory=list, repr=False)  # not saved

    def table6(self) -> dict:
        return table6(self.per_case)

    def to_dict(self) -> dict:
        import keras

        return {"experiment": "results", "dataset": self.dataset, "seeds": list(self.seeds),
                "settings": self.settings, "lesion_settings": self.lesion_settings,
                "split": self.split, "liverseg_version": __version__,
                "keras_backend": keras.backend.backend(), "seconds": self.seconds,
                "table6": self.table6(), "per_case": self.per_case,
                "model_dirs": {str(k): v for k, v in self.model_dirs.items()}}

    def save(self, path: str | Path, **extra) -> Path:
        """Write :meth:`to_dict` (and ``extra`` top-level entries) as JSON to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(_jsonable({**self.to_dict(), **extra}), indent=1, default=_json_default)
        atomic_write_text(path, text + "\n")
        return path


def _jsonable(value):
    """``value`` with tuple keys joined by ``/`` (the paper tables' ``("liver", "LiTS")``)."""
    if isinstance(value, Mapping):
        return {"/".join(map(str, k)) if isinstance(k, tuple) else k: _jsonable(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _json_default(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def system_results(store: str | Path, settings: Profile, *, seeds: Sequence[int] | None = None,
                   data_dir=None, planes: Sequence[str] | None = None,
                   lesion_changes: Mapping[str, object] | None = None,
                   progress: bool = True) -> SystemResults:
    """Train (or read back) the system of ``planes`` (default :func:`system_planes`) for each
    seed (default ``settings.experiments.seeds``), segment every test patient with each plane
    alone and with the planes fused (:func:`segment_systems`) and score each label
    (:func:`case_rows`). ``model_dirs`` names each seed's model folder in ``store/models``."""
    from liverseg.inference.volume import Segmenter

    started = time.perf_counter()
    seeds = [int(s) for s in (settings.experiments.seeds if seeds is None else seeds)]
    rows, model_dirs, data = [], {}, None
    for seed in seeds:
        seeded = settings.replace(**{"train.seed": seed})
        folder, data = system_model_folder(store, seeded, data_dir, planes, lesion_changes,
                                           progress)
        model_dirs[seed] = folder.name
        segmenter = Segmenter(folder, progress=False)
        for case in data.test_cases:
            labels = segment_systems(segmenter, case, folder / "labels")
            rows += case_rows(seed, case.case_id, labels, case.label, case.image.spacing)
        del segmenter
    return SystemResults(
        dataset=settings.dataset, seeds=seeds, settings=settings.to_dict(),
        lesion_settings=with_lesion_changes(settings, lesion_changes).stage("lesion").to_dict(),
        split=data.split._asdict(), per_case=json.loads(json.dumps(rows)),
        model_dirs=model_dirs, seconds=round(time.perf_counter() - started, 1),
        test_cases=list(data.test_cases))


# ---------------------------------------------------------------------------- tables


LABELS = {"accuracy": "accuracy", "dice": "Dice", "iou": "IoU", "miou": "mIoU",
          "dice_global": "Dice (global)", "voe": "VOE", "rvd": "RVD", "assd": "ASSD (mm)",
          "msd": "MSSD (mm)", "rmsd": "RMSD (mm)", "precision": "precision",
          "recall": "recall"}


def cell(value: Mapping, digits: int = 3) -> str:
    """``"0.912 ± 0.013"`` of an :func:`over_seeds` cell (no ± with one seed, – with none)."""
    if value["mean"] is None:
        return "–"
    if value["sd"] is None:
        return f"{value['mean']:.{digits}f}"
    return f"{value['mean']:.{digits}f} ± {value['sd']:.{digits}f}"


PAPER_DATASETS = {"lits": "LiTS", "ircadb": "3D-IRCADb"}  # our dataset → Table 6's row


def table6_markdown(table: Mapping, metrics: Sequence[str] = OVERLAP_METRICS,
                    paper: Mapping | None = None, paper_dataset: str | None = None,
                    paper_plane: str = FUSED, digits: int = 3) -> str:
    """A Markdown table of :func:`table6`: one row per structure and plane, ``metrics`` as
    columns; given ``paper`` (:data:`~liverseg.experiments.paper_tables.TABLE_6`) and
    ``paper_dataset`` (``"LiTS"`` or ``"3D-IRCADb"``), the paper's value in brackets in the
    rows of ``paper_plane`` (the paper's Table 6 does not say which plane it reports)."""
    header = ["structure", "planes"] + [LABELS.get(m, m) for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for structure, planes in table.items():
        for plane, row in planes.items():
            cells = [structure, plane]
            for metric in metrics:
                text = cell(row[metric], digits) if metric in row else "–"
                if paper and paper_dataset and plane == paper_plane and metric in paper["columns"]:
                    value = paper["rows"].get((structure, paper_dataset))
                    if value is not None:
                        text += f" ({value[paper['columns'].index(metric)]:.4f})"
                cells.append(text)
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def beside_paper_markdown(table: Mapping, paper: Mapping, dataset: str,
                          planes: Sequence[str] = ("axial", FUSED), digits: int = 3) -> str:
    """The paper's Table 6 (both of its datasets) beside ours on ``dataset``: one row per
    structure and metric of the paper (accuracy, Dice, mIoU), our ``planes`` as columns
    (those the system has)."""
    ours = PAPER_DATASETS.get(dataset, dataset)
    datasets = list(dict.fromkeys(name for _, name in paper["rows"]))
    header = (["structure", "metric"] + [f"paper, {name}" for name in datasets]
              + [f"ours, {ours}, {plane}" for plane in planes])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for structure in dict.fromkeys(structure for structure, _ in paper["rows"]):
        for k, metric in enumerate(paper["columns"]):
            cells = [structure, LABELS.get(metric, metric)]
            cells += [f"{paper['rows'][(structure, name)][k]:.4f}"
                      if (structure, name) in paper["rows"] else "–" for name in datasets]
            block = table.get(structure, {})
            cells += [cell(block[plane][metric], digits) if plane in block else "–"
                      for plane in planes]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_case_markdown(per_case: Sequence[Mapping], structure: str, plane: str = FUSED,
                      metrics: Sequence[str] = ("dice", "miou", "voe", "rvd", "assd", "msd"),
                      digits: int = 3) -> str:
    """The per-case rows of ``structure`` and ``plane`` as a Markdown table (one line per seed
    and test patient; – where a score is undefined), with the reference and predicted volumes
    in voxels and, for lesions, the detected / reference / predicted lesion counts."""
    rows = [row for row in per_case if row["structure"] == structure and row["plane"] == plane]
    header = ["seed", "patient"] + [LABELS.get(m, m) for m in metrics] + ["voxels ref / pred"]
    if structure == "lesion":
        header.append("lesions found / ref / pred")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row["seed"]), row["case"]]
        cells += ["–" if row.get(m) is None else f"{row[m]:.{digits}f}" for m in metrics]
        cells.append(f"{row['ref_voxels']} / {row['pred_voxels']}")
        if structure == "lesion":
            cells.append(f"{row['tp']} / {row['n_ref']} / {row['n_pred']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- figures


def example_panels(segmenter, case, label: np.ndarray, structure: str = "liver",
                   index: int | None = None, margin: int = 8) -> dict:
    """The four panels of Figs. 17–18 for one axial slice of ``case``: the CT (HU), the
    reference label, the first network's ROI (the axial ``structure`` localizer's prior —
    probability + Grad-CAM + CRF → box, as the tuning network gets it) and the system's
    ``label``; plus ``index`` (the slice; default the one with the most reference
    ``structure``, or of ``label`` if the reference has none) and ``crop`` (for lesions, the
    slice around the predicted or reference liver grown by ``margin`` pixels).

    ``segmenter``: a :class:`~liverseg.inference.volume.Segmenter` of a
    :func:`system_model_folder` with an axial plane. For the lesions the localizer sees, as in
    :meth:`Segmenter.segment`, the predicted liver's view (:mod:`liverseg.lesion_view`); its
    ROI is empty on a slice outside that view.
    """
    from liverseg.lesion_view import lesion_view
    from liverseg.preprocess import preprocess

    if "axial" not in segmenter.folder.planes:
        raise ValueError("the figures show axial slices: the model folder has no axial networks")
    s = segmenter.settings
    reference = np.asarray(case.label)
    wanted = (reference == LESION) if structure == "lesion" else (reference >= LIVER)
    if not wanted.any():
        wanted = (label == LESION) if structure == "lesion" else (label >= LIVER)
    if index is None:
        index = int(np.argmax(wanted.sum(axis=(1, 2))))
    hu = np.asarray(case.image.array, np.float32)
    image = preprocess(hu, s.preprocess, source=case.image.path)
    if structure == "liver":
        roi = _slice_roi(segmenter, structure, image[index], hu[index])
    else:  # the lesion localizer looks at the predicted liver's view
        roi = np.zeros(hu.shape[1:], bool)
        found = label >= LIVER
        if found.any():
            view = lesion_view(image, hu, found, s.inference.liver_margin,
                               s.inference.lesion_view)
            z = index - view.box[0].start
            if 0 <= z < len(view.image):
                roi[view.box[1:]] = _slice_roi(segmenter, structure, view.image[z], view.hu[z])
    crop = (slice(None), slice(None))
    if structure == "lesion":
        liver = (label[index] >= LIVER) | (reference[index] >= LIVER)
        if liver.any():
            ys, xs = np.nonzero(liver)
            crop = (slice(max(ys.min() - margin, 0), ys.max() + margin + 1),
                    slice(max(xs.min() - margin, 0), xs.max() + margin + 1))
    return {"ct": hu[index], "truth": reference[index], "roi": roi, "result": label[index],
            "index": index, "crop": crop, "structure": structure}


def _slice_roi(segmenter, structure: str, x: np.ndarray, x_hu: np.ndarray) -> np.ndarray:
    """The axial ``structure`` localizer's ROI prior of one slice (input ``x``, HU ``x_hu``),
    bool in the slice's own shape."""
    from liverseg.predict import predict_priors
    from liverseg.resample import from_model_size, to_model_size

    s = segmenter.settings.stage(structure)
    localizer = segmenter._network("axial", structure, "localizer")  # loaded once, and checked
    prior = predict_priors(localizer, to_model_size(x[None], s.image_size),
                           to_model_size(x_hu[None], s.image_size), s.prior,
                           s.inference.batch_size)
    return from_model_size(prior, x.shape)[0] > 0.5


def best_and_worst_figure(store: str | Path, results: "SystemResults", structure: str = "liver",
                          seed: int | None = None, width: float = 9.0):
    """Fig. 17 (``structure="liver"``) or Fig. 18 (``"lesion"``) for the best and the worst test
    patient of ``seed`` (default the first) by fused Dice of ``structure``
    (:func:`ranked_cases`; one row when there is a single patient). Returns the figure and the
    patients shown as ``[(case, dice), ...]``, best first."""
    from liverseg.inference.volume import Segmenter

    seed = results.seeds[0] if seed is None else int(seed)
    rows = [row for row in results.per_case if row["seed"] == seed]
    ranked = ranked_cases(rows, structure)
    chosen = list(dict.fromkeys([ranked[0], ranked[-1]]))
    dice = {row["case"]: row["dice"] for row in rows
            if row["structure"] == structure and row["plane"] == FUSED}
    folder = Path(store) / "models" / results.model_dirs[seed]
    segmenter = Segmenter(folder, progress=False)
    cases = {case.case_id: case for case in results.test_cases}
    panels = []
    for case_id in chosen:
        labels = segment_systems(segmenter, cases[case_id], folder / "labels")  # cached
        panels.append(example_panels(segmenter, cases[case_id], labels[FUSED], structure))
    titles = [f"{'best' if k == 0 else 'worst'}: {case_id}\n{structure} Dice {dice[case_id]:.3f}"
              for k, case_id in enumerate(chosen)]
    return plot_examples(panels, titles, width=width), [(c, dice[c]) for c in chosen]


def plot_examples(panels: Sequence[Mapping], titles: Sequence[str], window=(-100.0, 200.0),
                  width: float = 9.0):
    """Figs. 17–18: one row per :func:`example_panels` (titled by ``titles``), columns (a) the
    CT, (b) the ground truth, (c) the first network's ROI, (d) the system's result. Liver is
    drawn green, lesions red, the ROI yellow. Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    colours = ListedColormap([(0, 0, 0, 0), (0.2, 0.8, 0.2, 0.45), (0.95, 0.15, 0.15, 0.7)])
    roi_colour = ListedColormap([(1.0, 0.9, 0.1)])
    fig, axes = plt.subplots(len(panels), 4, figsize=(width, width / 4 * len(panels) + 0.4),
                             squeeze=False)
    heads = ("(a) CT", "(b) ground truth", "(c) ROI of the first network", "(d) result")
    for row, (panel, title) in enumerate(zip(panels, titles)):
        crop = panel["crop"]
        ct = panel["ct"][crop]
        for column, ax in enumerate(axes[row]):
            ax.imshow(ct, cmap="gray", vmin=window[0], vmax=window[1])
            if column == 1:
                ax.imshow(panel["truth"][crop], cmap=colours, vmin=0, vmax=2,
                          interpolation="nearest")
            elif column == 2:
                ax.imshow(np.where(panel["roi"][crop], 1.0, np.nan), cmap=roi_colour,
                          alpha=0.3, vmin=0, vmax=1, interpolation="nearest")
                ax.contour(panel["roi"][crop], levels=[0.5], colors="yellow", linewidths=0.8)
            elif column == 3:
                ax.imshow(panel["result"][crop], cmap=colours, vmin=0, vmax=2,
                          interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(heads[column], fontsize=9)
        axes[row][0].set_ylabel(f"{title}\nslice {panel['index']}", fontsize=8)
    fig.tight_layout()
    return fig
