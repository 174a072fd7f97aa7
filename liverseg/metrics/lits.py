"""The LiTS evaluation set: one JSON report per case (``evaluate_case``) and a data-set
summary of those reports (``summarize_cases``).

Reports are JSON, so non-finite numbers (a distance to an empty mask, an undefined
precision) are written as ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from liverseg.errors import ShapeError
from liverseg.labels import LESION, LIVER
from liverseg.metrics._checks import as_label, as_spacing
from liverseg.metrics._counts import dice_from_counts, iou_from_counts, ratio
from liverseg.metrics.detection import lesion_detection
from liverseg.metrics.overlap import rvd
from liverseg.metrics.surface import surface_scores

SURFACE_METRICS = ("assd", "mssd", "rmsd")  # the keys of :func:`surface_scores`


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _structure_scores(pred: np.ndarray, ref: np.ndarray, spacing: np.ndarray,
                      connectivity: int) -> dict:
    n_pred, n_ref = int(np.count_nonzero(pred)), int(np.count_nonzero(ref))
    intersection = int(np.count_nonzero(pred & ref))
    empty = None
    if not n_pred and not n_ref:
        empty = "both"
    elif not n_pred:
        empty = "prediction"
    elif not n_ref:
        empty = "reference"
    jaccard = iou_from_counts(intersection, n_pred - intersection, n_ref - intersection)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    scores = {
        "dice": dice_from_counts(intersection, n_pred - intersection, n_ref - intersection),
        "jaccard": jaccard,
        "voe": 1.0 - jaccard,
        "rvd": rvd(pred, ref),
        **surface_scores(pred, ref, spacing, connectivity),
        "pred_voxels": n_pred,
        "ref_voxels": n_ref,
        "intersection_voxels": intersection,
        "pred_volume_ml": n_pred * voxel_ml,
        "ref_volume_ml": n_ref * voxel_ml,
        "empty": empty,
    }
    return {k: _finite_or_none(v) if isinstance(v, float) else v for k, v in scores.items()}


def evaluate_case(pred_label, ref_label, spacing, *, connectivity: int = 2,
                  detection_iou: float = 0.5, pred_path=None, ref_path=None) -> dict:
    """All LiTS scores of one predicted label volume against its reference.

    ``pred_label`` and ``ref_label`` are 0/1/2 arrays of the same shape (integer or
    integer-valued float), ``spacing`` the voxel size in mm along each axis. Returns a
    JSON-serialisable dict::

        {"shape": [...], "spacing": [...],
         "liver":  {"dice", "jaccard", "voe", "rvd", "assd", "mssd", "rmsd",
                    "pred_voxels", "ref_voxels", "intersection_voxels",
                    "pred_volume_ml", "ref_volume_ml", "empty"},
         "lesion": {... the same ..., "detection": {"tp", "n_pred", "n_ref",
                                                    "precision", "recall"}}}

    Non-finite values (distances to an empty mask, undefined precision) are ``None``;
    ``"empty"`` is ``None``, ``"both"``, ``"prediction"`` or ``"reference"``.
    ``pred_path``/``ref_path`` only name the files in error messages.
    """
    pred_label = as_label(pred_label, "prediction", pred_path)
    ref_label = as_label(ref_label, "reference", ref_path)
    if pred_label.shape != ref_label.shape:
        raise ShapeError(
            f"prediction shape {pred_label.shape} differs from reference shape {ref_label.shape}",
            pred_path,
        )
    spacing = as_spacing(spacing, ref_label.ndim)
    result = {"shape": list(ref_label.shape), "spacing": spacing.tolist()}
    pred_liver, ref_liver = pred_label >= LIVER, ref_label >= LIVER
    result["liver"] = _structure_scores(pred_liver, ref_liver, spacing, connectivity)
    pred_lesion, ref_lesion = pred_label == LESION, ref_label == LESION
    lesion = _structure_scores(pred_lesion, ref_lesion, spacing, connectivity)
    detection = lesion_detection(pred_lesion, ref_lesion, iou_threshold=detection_iou)
    lesion["detection"] = {k: _finite_or_none(v) if isinstance(v, float) else v
                           for k, v in detection.items()}
    result["lesion"] = lesion
    return result


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values))


def summarize_cases(results: Iterable[Mapping]) -> dict:
    """Dataset summary of ``evaluate_case`` results (dicts, e.g. read back from JSON).

    Per structure: the mean and standard deviation over cases of each score ("Dice per
    case" is ``dice.mean``), skipping ``None`` values and counting them in ``n_skipped``;
    the global Dice from voxel counts pooled over all cases; and for lesions the detection
    precision and recall from pooled component counts.
    """
    results = list(results)
    summary: dict = {"n_cases": len(results)}
    for structure in ("liver", "lesion"):
        rows = [r[structure] for r in results]
        block = {}
        for key in ("dice", "jaccard", "voe", "rvd", *SURFACE_METRICS):
            values = [row[key] for row in rows if row.get(key) is not None]
            mean, std = _mean_std(values)
            block[key] = {"mean": mean, "std": std, "n_skipped": len(rows) - len(values)}
        intersection = sum(row["intersection_voxels"] for row in rows)
        total = sum(row["pred_voxels"] + row["ref_voxels"] for row in rows)
        block["dice_per_case"] = block["dice"]["mean"]
        block["dice_global"] = ratio(2 * intersection, total, empty=1.0) if rows else None
        block["empty_cases"] = {kind: sum(row.get("empty") == kind for row in rows)
                                for kind in ("both", "prediction", "reference")}
        if structure == "lesion":
            detections = [row["detection"] for row in rows if "detection" in row]
            tp = sum(d["tp"] for d in detections)
            n_pred = sum(d["n_pred"] for d in detections)
            n_ref = sum(d["n_ref"] for d in detections)
            block["detection"] = {
                "tp": tp, "n_pred": n_pred, "n_ref": n_ref,
                "precision": _finite_or_none(ratio(tp, n_pred, empty=math.nan)),
                "recall": _finite_or_none(ratio(tp, n_ref, empty=math.nan)),
            }
        summary[structure] = block
    return summary
