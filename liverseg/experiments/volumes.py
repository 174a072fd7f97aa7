"""Whole-volume experiments: one liver model per plane, fused, scored per test patient.

The multi-plane fusion and post-processing chapters compare what happens *after* the
networks: each plane alone against the fused planes (Eq. 8 and the hard votes), and the fused
mask before and after post-processing. :func:`plane_model_folder` trains (or reads back from
the store) the liver cascade of every plane for one seed and gathers the networks into a model
folder that :class:`~liverseg.inference.volume.Segmenter` reads, as ``liverseg segment`` would;
:func:`plane_probabilities` gives a test volume's probability per plane in its own geometry,
cached in the store so both chapters predict each volume once.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from liverseg.config import ExperimentConfig, Profile
from liverseg.experiments.comparison import Comparison
from liverseg.io.atomic import atomic_path
from liverseg.labels import LIVER
from liverseg.model_folder import write_model_folder
from liverseg.postprocess import fill_holes, largest_component, postprocess_label
from liverseg.train.store import (Data, case_row, per_case_run, prepare, rounds_key,
                                  run_of_cases, train_networks)


def plane_model_folder(store: str | Path, settings: Profile, planes: Sequence[str] | None = None,
                       data_dir=None, progress: bool = True, cases=None) -> tuple[Path, Data]:
    """The liver networks of ``planes`` (default ``settings.planes``) for ``train.seed``, as a
    model folder ``store/models/seed-{s}-{key}``; returns it and the last plane's :class:`Data`
    (the split and test cases are the same for every plane). ``cases``: as
    :func:`~liverseg.train.store.prepare`'s (default: loaded once per plane)."""
    settings = settings.stage("liver")  # no lesion setting changes the liver networks
    planes = tuple(planes or settings.planes)
    store = Path(store)
    prepared = [prepare(settings, store, plane=plane, cases=cases, data_dir=data_dir,
                        progress=progress) for plane in planes]
    data = prepared[-1]
    fingerprint = "-".join(d.fingerprint for d in prepared)
    key = hashlib.sha1(fingerprint.encode()).hexdigest()[:10]
    folder = store / "models" / f"seed-{settings.train.seed}-{rounds_key(settings)}-data-{key}"
    if (folder / "liverseg-model.json").is_file():
        return folder, data
    networks = {}
    for plane, data in zip(planes, prepared):
        tag = f"{plane} seed {settings.train.seed}"
        trained = train_networks(data, settings, store, progress, tag)
        networks[plane, "liver", "localizer"] = trained.front.localizer.path
        networks[plane, "liver", "tuner"] = trained.model_path  # Algorithm 1's best round
    write_model_folder(folder, settings, networks, {"split": data.split._asdict()})
    return folder, data


def plane_probabilities(segmenter, case, cache: str | Path | None = None) -> dict[str, np.ndarray]:
    """``{plane: (z, y, x) float16}`` liver probability of each of the segmenter's planes for
    ``case``, in the case's geometry; read from / written to ``cache`` (``{case}-{plane}.npy``)."""
    from liverseg.preprocess import preprocess

    out, image = {}, None
    hu = np.asarray(case.image.array, np.float32)
    for plane in segmenter.planes:
        path = Path(cache) / f"{case.case_id}-{plane}.npy" if cache else None
        if path is not None and path.is_file():
            out[plane] = np.load(path)
            continue
        if image is None:
            image = preprocess(hu, segmenter.settings.preprocess, source=case.image.path)
        out[plane] = segmenter.predict_plane(image, hu, plane, "liver")
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                np.save(tmp, out[plane])
    return out


def score_masks(masks: Mapping[str, Callable[[dict], np.ndarray]], cases, probabilities,
                seed: int, collapse_dice: float = ExperimentConfig.collapse_dice) -> list[dict]:
    """Comparison runs (one per mask method) of liver masks made from each case's plane
    probabilities: ``masks[name](probabilities_of_case)`` → boolean ``(z, y, x)``.

    ``probabilities``: ``case → {plane: volume}`` (e.g. :func:`plane_probabilities`). Each
    run holds the per-case scores (:func:`~liverseg.train.scores.overlap_scores` on the whole
    volume in its own geometry) in the form :class:`~liverseg.experiments.Comparison` reads,
    collapsed below ``collapse_dice`` (``experiments.collapse_dice``).
    """
    per_method = {name: [] for name in masks}
    for case in cases:
        reference = np.asarray(case.label) >= LIVER
        planes = probabilities(case)
        for name, make in masks.items():
            per_method[name].append(case_row(case.case_id, make(planes), reference))
    runs = [{"variant": name, "seed": int(seed), **run_of_cases(rows, collapse_dice), "val": None}
            for name, rows in per_method.items()]
    return json.loads(json.dumps(runs))


def compare_fusions(store: str | Path, settings: Profile, *, seeds: Sequence[int] | None = None,
                    data_dir=None, progress: bool = True) -> Comparison:
    """Each plane alone and each fusion (``config.FUSIONS``) of the planes, per test patient.

    Every mask then gets the system's post-processing (largest component, hole filling as
    ``inference.fill``), so the rows differ in the fusion only. Rows: the planes, then the
    fusion methods.
    """
    from liverseg.config import FUSIONS
    from liverseg.inference.fusion import fuse

    inference = settings.inference

    def clean(mask):
        return postprocess_label(mask.astype(np.uint8), fill=inference.fill) >= LIVER

    masks = {plane: (lambda p, plane=plane: clean(p[plane] > inference.threshold))
             for plane in settings.planes}
    masks.update({method: (lambda p, method=method: clean(
        fuse(list(p.values()), method, inference.threshold))) for method in FUSIONS})
    return _compare_volumes("fusion", masks, store, settings, seeds, data_dir, progress)


def compare_postprocessing(store: str | Path, settings: Profile, *,
                           seeds: Sequence[int] | None = None, data_dir=None,
                           progress: bool = True) -> Comparison:
    """The soft-voted liver mask as thresholded, after removing all but the largest
    component (Fig. 13), after filling holes, and after both (what ``liverseg segment`` does)."""
    from liverseg.inference.fusion import fuse

    threshold, fill = settings.inference.threshold, settings.inference.fill or "3d"

    def soft(p):
        return fuse(list(p.values()), "soft", threshold)

    masks = {
        "threshold": soft,
        "largest component": lambda p: largest_component(soft(p)),
        "holes filled": lambda p: fill_holes(soft(p), per_slice=fill == "slice"),
        "both": lambda p: fill_holes(largest_component(soft(p)), per_slice=fill == "slice"),
    }
    return _compare_volumes("postprocessing", masks, store, settings, seeds, data_dir, progress)


def _compare_volumes(experiment, masks, store, settings, seeds, data_dir, progress) -> Comparison:
    from liverseg.inference.volume import Segmenter

    started = time.perf_counter()
    seeds = [int(s) for s in (settings.experiments.seeds if seeds is None else seeds)]
    runs = []
    for seed in seeds:
        seeded = settings.replace(**{"train.seed": seed})
        model_dir, data = plane_model_folder(store, seeded, data_dir=data_dir, progress=progress)
        segmenter = Segmenter(model_dir, progress=False)
        cache = model_dir / "probabilities"
        runs += score_masks(masks, data.test_cases,
                            lambda case: plane_probabilities(segmenter, case, cache), seed,
                            settings.experiments.collapse_dice)
    return Comparison(
        experiment=experiment, plane="+".join(settings.planes), structure="liver", seeds=seeds,
        variants={name: {} for name in masks}, runs=runs, split=data.split._asdict(),
        settings=settings.to_dict(), seconds=round(time.perf_counter() - started, 1))


def compare_crf(store: str | Path, settings: Profile, *, seeds: Sequence[int] | None = None,
                data_dir=None, progress: bool = True) -> tuple[Comparison, dict]:
    """The localization network's ROI on the axial test slices: its probability alone, combined
    with Grad-CAM, and that refined by the dense CRF (``prior.mode="mask"``), per test patient;
    and the bounding-box prior made with and without the CRF: the share of the liver inside
    the box (recall) and the box's area over the liver's (per seed, pooled over test slices).
    """
    from liverseg import cam
    from liverseg.predict import predict_probability
    from liverseg.prior import roi_priors
    from liverseg.train.slices import SliceSet

    started = time.perf_counter()
    seeds = [int(s) for s in (settings.experiments.seeds if seeds is None else seeds)]
    data = prepare(settings, store, data_dir=data_dir, progress=progress)
    test: SliceSet = data.test
    target = test.target("liver")
    prior = settings.prior
    rows = {"probability": [], "probability + Grad-CAM": [], "probability + Grad-CAM + CRF": []}
    boxes: dict[str, list] = {"without CRF": [], "with CRF": []}
    for seed in seeds:
        seeded = settings.replace(**{"train.seed": seed})
        trained = train_networks(data, seeded, store, progress, f"seed {seed}")
        localizer = trained.front.localizer.model
        batch = settings.inference.batch_size
        probability = predict_probability(localizer, test.images, batch)
        cams = cam.grad_cam(localizer, test.images[..., None], layer_name=prior.cam_layer,
                            batch_size=batch)
        kwargs = prior.roi_kwargs()
        made = {
            "probability": probability > prior.threshold,
            "probability + Grad-CAM": roi_priors(probability, cams, test.hu, progress=False,
                                                 **{**kwargs, "mode": "mask", "use_crf": False}),
            "probability + Grad-CAM + CRF": roi_priors(probability, cams, test.hu, progress=False,
                                                       **{**kwargs, "mode": "mask"}),
        }
        for name, masks in made.items():
            rows[name].append(_slice_run(name, seed, masks, target, test.case_ids,
                                         settings.experiments.collapse_dice))
        for name, use_crf in (("without CRF", False), ("with CRF", True)):
            box = roi_priors(probability, cams, test.hu, progress=False,
                             **{**kwargs, "use_crf": use_crf})
            boxes[name].append({"seed": seed,
                                "recall": float((box * target).sum() / max(target.sum(), 1)),
                                "area_ratio": float(box.sum() / max(target.sum(), 1))})
    runs = json.loads(json.dumps([run for name in rows for run in rows[name]]))
    comparison = Comparison(
        experiment="crf", plane=data.plane, structure="liver", seeds=seeds,
        variants={name: {} for name in rows}, runs=runs, split=data.split._asdict(),
        settings=settings.to_dict(), seconds=round(time.perf_counter() - started, 1))
    return comparison, boxes


def box_table(boxes: Mapping[str, Sequence[Mapping]]) -> str:
    """Markdown of :func:`compare_crf`'s box priors: per prior, the share of the liver inside
    the box and the box's area over the liver's, mean ± sd over seeds."""
    from liverseg.experiments.comparison import spread
    from liverseg.experiments.tables import markdown_table, mean_sd

    rows = [[name, mean_sd(spread([row["recall"] for row in per_seed])),
             mean_sd(spread([row["area_ratio"] for row in per_seed]), 2)]
            for name, per_seed in boxes.items()]
    return markdown_table(["box prior", "liver inside the box", "box area / liver area"], rows)


def cleanup_figure(store: str | Path, settings: Profile, seed: int, *, data_dir=None,
                   progress: bool = True):
    """The post-processing of one test volume, drawn: the soft-voted probability, its
    threshold and the cleaned mask (largest component, holes filled) with the removed voxels
    in red, on the axial slice that loses most (or, if nothing is removed, shows most liver).

    Returns the figure and ``{"case", "slice", "removed_voxels"}`` (voxels removed in the
    whole volume). Uses the networks of ``seed`` (:func:`plane_model_folder`).
    """
    from liverseg.figures import NotebookFigure
    from liverseg.inference.fusion import soft_vote
    from liverseg.inference.volume import Segmenter

    seeded = settings.replace(**{"train.seed": int(seed)})
    model_dir, data = plane_model_folder(store, seeded, data_dir=data_dir, progress=progress)
    case = data.test_cases[0]
    planes = plane_probabilities(Segmenter(model_dir, progress=False), case,
                                 model_dir / "probabilities")
    probability = soft_vote(list(planes.values()))
    raw = probability > settings.inference.threshold
    cleaned = fill_holes(largest_component(raw), per_slice=settings.inference.fill == "slice")
    removed = raw & ~cleaned
    k = int(np.argmax((removed if removed.any() else raw).sum(axis=(1, 2))))
    figure = NotebookFigure(figsize=(11, 3.6))
    axes = figure.subplots(1, 3)
    axes[0].imshow(probability[k], cmap="magma", vmin=0, vmax=1)
    axes[0].set_title("(a) fused probability")
    axes[1].imshow(raw[k], cmap="gray")
    axes[1].set_title("thresholded")
    axes[2].imshow(cleaned[k], cmap="gray")
    axes[2].contour(removed[k], levels=[0.5], colors="red", linewidths=0.8)
    axes[2].set_title("(b) after the clean-up (red: removed)")
    for ax in axes:
        ax.contour(np.asarray(case.label)[k] >= LIVER, levels=[0.5], colors="lime", linewidths=0.7)
        ax.axis("off")
    return figure, {"case": case.case_id, "slice": k, "removed_voxels": int(removed.sum())}


def _slice_run(name, seed, masks, target, case_ids, collapse_dice) -> dict:
    return {"variant": name, "seed": int(seed),
            **per_case_run(masks, target, case_ids, collapse_dice),
            "val": None}
