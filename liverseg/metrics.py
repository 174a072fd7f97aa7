"""Segmentation scores: the paper's overlap metrics (section 4.3) and the LiTS evaluation set.

NumPy and SciPy only (no Keras), so scores can be computed anywhere a label array exists.

Overlap metrics (Eqs. 9-12)
    ``accuracy``, ``dice``, ``iou`` take two masks and an optional ``axis`` to reduce over:
    ``None`` scores the whole array (one case); ``axis=(1, 2)`` on a ``(z, y, x)`` volume
    gives one score per axial slice. ``iou`` is the standard ``|X ∩ Y| / |X ∪ Y|``; the
    paper's Eq. 11 prints ``|X + Y|`` in the denominator, a misprint (with ``|X| + |Y|`` the
    best score would be 0.5, not the stated 1). ``miou`` averages the per-class IoU over
    classes (with or without background). ``OverlapAccumulator`` adds cases one at a time
    and reports per-case scores, their mean, and *global* scores pooled over the dataset
    (intersections and unions summed over cases before dividing).

LiTS evaluation set (``evaluate_case``)
    For the liver (label >= 1) and the lesions (label == 2): Dice, Jaccard, VOE = 1 − Jaccard,
    RVD = (|P| − |R|) / |R|, and the surface distances in mm: ASSD (mean of both directed
    distance sets), MSSD (maximum symmetric surface distance, i.e. the Hausdorff distance)
    and RMSD (root mean square of both sets), plus lesion detection by connected components.
    The surface of a mask is its boundary voxels, ``mask ^ binary_erosion(mask, footprint)``
    as in medpy, with the array's outside counted as background; distances are exact
    Euclidean distances in mm between surface voxel centres (nearest neighbours by
    ``scipy.spatial.cKDTree``, as in the LiTS code; the same numbers as medpy's
    ``distance_transform_edt(..., sampling=spacing)``, faster on whole livers). ``connectivity`` picks the erosion footprint;
    the default 2 (18-neighbourhood in 3D) is the one of the LiTS challenge's evaluation code
    (``Surface.compute_contour``); ``medpy.metric.binary`` defaults to 1 (6-neighbourhood).
    The LiTS script passes ``ravd(reference, prediction)``; we use the usual signed
    ``(|P| − |R|) / |R|``, positive when the prediction is too large.

Empty masks (the same rules everywhere)
    ============================  =======  =======  =====  ===========  ==================
    prediction / reference        Dice     IoU      VOE    RVD          ASSD, MSSD, RMSD
    ============================  =======  =======  =====  ===========  ==================
    both empty                    1        1        0      0            0
    prediction empty only         0        0        1      −1           inf
    reference empty only          0        0        1      inf          inf
    ============================  =======  =======  =====  ===========  ==================

    A surface distance to nothing is infinitely wrong, so the numeric functions return
    ``inf``; ``evaluate_case`` is a JSON report and writes non-finite numbers as ``null``,
    with ``"empty"`` saying which mask was empty, and ``summarize_cases`` averages each
    distance over the cases where it is finite and reports how many it skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from liverseg.errors import InvalidDataError, ShapeError

__all__ = [
    "OverlapAccumulator",
    "accuracy",
    "assd",
    "confusion_counts",
    "dice",
    "evaluate_case",
    "iou",
    "lesion_detection",
    "miou",
    "mssd",
    "rmsd",
    "rvd",
    "summarize_cases",
    "surface_distances",
    "voe",
]

LIVER, LESION = 1, 2
SURFACE_METRICS = ("assd", "mssd", "rmsd")


# ----------------------------------------------------------------------------- inputs


def _check_same_shape(pred: np.ndarray, ref: np.ndarray) -> None:
    if pred.shape != ref.shape:
        raise ShapeError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")


def _as_mask(x, what: str = "mask") -> np.ndarray:
    """A boolean view of a mask: non-zero is foreground; NaN is refused, not guessed."""
    x = np.asarray(x)
    if x.dtype == bool:
        return x
    if x.dtype.kind == "f" and np.isnan(x).any():
        raise InvalidDataError(f"{what} contains NaN; threshold probabilities before scoring")
    return x != 0


def _masks(pred, ref) -> tuple[np.ndarray, np.ndarray]:
    pred, ref = _as_mask(pred, "prediction"), _as_mask(ref, "reference")
    _check_same_shape(pred, ref)
    return pred, ref


def _as_label(x, what: str, path=None) -> np.ndarray:
    """A uint8 0/1/2 label; float input (e.g. nibabel's ``get_fdata``) must hold integers."""
    x = np.asarray(x)
    if x.dtype == bool:
        return x.astype(np.uint8)
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise InvalidDataError(f"{what} label contains NaN or infinite values", path)
        if (x != np.round(x)).any():
            raise InvalidDataError(f"{what} label contains non-integer values", path)
    elif x.dtype.kind not in "iu":
        raise InvalidDataError(f"{what} label has unsupported dtype {x.dtype}", path)
    values = np.unique(x)
    bad = values[(values < 0) | (values > LESION)]
    if bad.size:
        raise InvalidDataError(
            f"{what} label has values {bad.tolist()[:5]} outside 0 (background), 1 (liver), "
            f"2 (lesion)",
            path,
        )
    return x.astype(np.uint8)


def _as_spacing(spacing, ndim: int) -> np.ndarray:
    if spacing is None:
        return np.ones(ndim)
    values = np.atleast_1d(np.asarray(spacing, dtype=float))
    if values.size == 1:
        values = np.repeat(values, ndim)
    if values.shape != (ndim,) or not np.isfinite(values).all() or (values <= 0).any():
        raise InvalidDataError(
            f"voxel spacing must be {ndim} positive finite numbers, "
            f"got {np.asarray(spacing).tolist()}"
        )
    return values


# ----------------------------------------------------------------------------- overlap


def confusion_counts(pred, ref, axis=None) -> dict[str, np.ndarray]:
    """True/false positives/negatives of two masks, summed over ``axis`` (None: all)."""
    pred, ref = _masks(pred, ref)
    return {
        "tp": np.count_nonzero(pred & ref, axis=axis),
        "fp": np.count_nonzero(pred & ~ref, axis=axis),
        "fn": np.count_nonzero(~pred & ref, axis=axis),
        "tn": np.count_nonzero(~pred & ~ref, axis=axis),
    }


def _ratio(numerator, denominator, empty: float):
    """``numerator / denominator``, ``empty`` where the denominator is 0 (scalar in, float out)."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(numerator, denominator).shape, float(empty))
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return float(out) if out.ndim == 0 else out


def _dice_from_counts(tp, fp, fn):
    return _ratio(2 * np.asarray(tp), 2 * np.asarray(tp) + fp + fn, empty=1.0)


def _iou_from_counts(tp, fp, fn):
    return _ratio(tp, np.asarray(tp) + fp + fn, empty=1.0)


def accuracy(pred, ref, axis=None):
    """Fraction of voxels where the masks agree, ``(TP + TN) / N`` (Eq. 9)."""
    c = confusion_counts(pred, ref, axis)
    return _ratio(c["tp"] + c["tn"], c["tp"] + c["tn"] + c["fp"] + c["fn"], empty=math.nan)


def dice(pred, ref, axis=None):
    """Dice ``2|X ∩ Y| / (|X| + |Y|)`` (Eq. 10); 1 when both masks are empty."""
    c = confusion_counts(pred, ref, axis)
    return _dice_from_counts(c["tp"], c["fp"], c["fn"])


def iou(pred, ref, axis=None):
    """Intersection over union (Jaccard) ``|X ∩ Y| / |X ∪ Y|``; 1 when both masks are empty."""
    c = confusion_counts(pred, ref, axis)
    return _iou_from_counts(c["tp"], c["fp"], c["fn"])


def voe(pred, ref, axis=None):
    """Volumetric overlap error ``1 − IoU``."""
    return 1.0 - iou(pred, ref, axis)


def rvd(pred, ref, axis=None):
    """Relative volume difference ``(|P| − |R|) / |R|``: −1 for an empty prediction, ``inf``
    for a non-empty prediction of an empty reference, 0 when both are empty."""
    pred, ref = _masks(pred, ref)
    p = np.count_nonzero(pred, axis=axis).astype(float)
    r = np.count_nonzero(ref, axis=axis).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(r > 0, (p - r) / np.where(r > 0, r, 1.0), np.where(p > 0, np.inf, 0.0))
    return float(out) if out.ndim == 0 else out


def _class_iou(pred_label, ref_label, classes, axis):
    """Per-class IoU stacked on axis 0, NaN where a class is absent from both arrays."""
    rows = []
    for c in classes:
        counts = confusion_counts(pred_label == c, ref_label == c, axis)
        union = counts["tp"] + counts["fp"] + counts["fn"]
        rows.append(_ratio(counts["tp"], union, empty=math.nan))
    return np.asarray(rows, dtype=float)


def _mean_skipping_absent(values: np.ndarray):
    present = ~np.isnan(values)
    total = np.where(present, values, 0.0).sum(axis=0)
    out = _ratio(total, present.sum(axis=0), empty=1.0)
    return out


def miou(pred_label, ref_label, classes: Sequence[int] | None = None,
         include_background: bool = True, axis=None):
    """Mean IoU over classes (Eq. 12).

    ``classes`` defaults to every value present in either array; class 0 is the background
    and is left out when ``include_background`` is False. A class absent from both arrays is
    skipped (as Keras' ``MeanIoU`` does) rather than counted as a perfect 1; if no class is
    left, the score is 1.
    """
    pred_label, ref_label = np.asarray(pred_label), np.asarray(ref_label)
    _check_same_shape(pred_label, ref_label)
    if classes is None:
        classes = np.union1d(np.unique(pred_label), np.unique(ref_label)).tolist()
    classes = [c for c in classes if include_background or c != 0]
    if not classes:
        return 1.0
    return _mean_skipping_absent(_class_iou(pred_label, ref_label, classes, axis))


class OverlapAccumulator:
    """Collects cases and reports accuracy, Dice, IoU and mIoU per case, as a mean over
    cases, and globally (counts pooled over all cases, then divided).

    ``classes`` are the label values scored (default ``(0, 1)``: a binary mask, where class
    1 is the foreground). Per case and globally it reports ``accuracy``; ``dice_<c>`` and
    ``iou_<c>`` for every class; ``dice`` and ``iou`` averaged over the foreground classes
    (for a binary mask, the foreground's own Dice and IoU); ``miou`` over all classes and
    ``miou_foreground`` without class 0, skipping absent classes as ``miou`` does.

    >>> acc = OverlapAccumulator()
    >>> for case_id, pred, ref in cases:            # doctest: +SKIP
    ...     acc.add(pred, ref, case_id)
    >>> acc.summary()["global"]["dice"]             # doctest: +SKIP
    """

    def __init__(self, classes: Sequence[int] = (0, 1)):
        self.classes = [int(c) for c in classes]
        if len(set(self.classes)) != len(self.classes) or not self.classes:
            raise ValueError(f"classes must be distinct label values, got {classes!r}")
        self.per_case: list[dict] = []
        self._counts = {c: np.zeros(3, dtype=np.int64) for c in self.classes}
        self._agree = 0
        self._voxels = 0

    def __len__(self) -> int:
        return len(self.per_case)

    def add(self, pred, ref, case_id: str | None = None) -> dict:
        """Score one case (label arrays or boolean masks of equal shape) and remember its counts."""
        pred, ref = np.asarray(pred), np.asarray(ref)
        if pred.dtype == bool:
            pred = pred.astype(np.uint8)
        if ref.dtype == bool:
            ref = ref.astype(np.uint8)
        _check_same_shape(pred, ref)
        counts = {}
        for c in self.classes:
            cc = confusion_counts(pred == c, ref == c)
            counts[c] = np.array([cc["tp"], cc["fp"], cc["fn"]], dtype=np.int64)
            self._counts[c] += counts[c]
        agree = int(np.count_nonzero(pred == ref))
        self._agree += agree
        self._voxels += pred.size
        scores = self._scores(counts, agree, pred.size)
        scores = {"case_id": case_id if case_id is not None else str(len(self.per_case)), **scores}
        self.per_case.append(scores)
        return scores

    def _scores(self, counts: Mapping[int, np.ndarray], agree: int, voxels: int) -> dict:
        scores = {"accuracy": _ratio(agree, voxels, empty=math.nan)}
        ious = {}
        for c in self.classes:
            tp, fp, fn = counts[c]
            scores[f"dice_{c}"] = _dice_from_counts(tp, fp, fn)
            scores[f"iou_{c}"] = _iou_from_counts(tp, fp, fn)
            ious[c] = _ratio(tp, tp + fp + fn, empty=math.nan)
        foreground = [c for c in self.classes if c != 0] or self.classes
        scores["dice"] = float(np.mean([scores[f"dice_{c}"] for c in foreground]))
        scores["iou"] = float(np.mean([scores[f"iou_{c}"] for c in foreground]))
        scores["miou"] = _mean_skipping_absent(np.array([ious[c] for c in self.classes]))
        scores["miou_foreground"] = _mean_skipping_absent(np.array([ious[c] for c in foreground]))
        return scores

    def mean(self) -> dict:
        """The mean over cases of every per-case score (empty before any case is added)."""
        keys = [k for k in self.per_case[0] if k != "case_id"] if self.per_case else []
        return {k: float(np.mean([case[k] for case in self.per_case])) for k in keys}

    def pooled(self) -> dict:
        """Global scores: counts summed over all cases, then turned into scores."""
        return self._scores(self._counts, self._agree, self._voxels)

    def summary(self) -> dict:
        """``{"n_cases", "per_case": [...], "mean": {...}, "global": {...}}``, JSON-serialisable."""
        return {
            "n_cases": len(self.per_case),
            "per_case": [dict(case) for case in self.per_case],
            "mean": self.mean(),
            "global": self.pooled(),
        }


# ----------------------------------------------------------------------------- surfaces


def _surface(mask: np.ndarray, connectivity: int) -> np.ndarray:
    footprint = ndimage.generate_binary_structure(mask.ndim, min(connectivity, mask.ndim))
    return mask ^ ndimage.binary_erosion(mask, structure=footprint, iterations=1)


def _joint_box(a: np.ndarray, b: np.ndarray, margin: int) -> tuple[slice, ...]:
    """Bounding box of ``a | b`` grown by ``margin`` voxels (clipped to the array); both non-empty."""
    box = ndimage.find_objects((a | b).astype(np.uint8))[0]
    return tuple(
        slice(max(s.start - margin, 0), min(s.stop + margin, n)) for s, n in zip(box, a.shape)
    )


def surface_distances(pred, ref, spacing=None, connectivity: int = 2):
    """Directed surface distances in mm: ``(pred surface → ref surface, ref → pred)``.

    Each array holds, for every surface voxel of one mask, the Euclidean distance to the
    nearest surface voxel of the other. If one mask is empty, the other's distances are all
    ``inf`` and the empty mask contributes an empty array; two empty masks give two empty arrays.
    """
    pred, ref = _masks(pred, ref)
    spacing = _as_spacing(spacing, pred.ndim)
    if connectivity < 1:
        raise ValueError(f"connectivity must be >= 1, got {connectivity}")
    has_pred, has_ref = pred.any(), ref.any()
    if not (has_pred and has_ref):
        n_pred = int(np.count_nonzero(_surface(pred, connectivity))) if has_pred else 0
        n_ref = int(np.count_nonzero(_surface(ref, connectivity))) if has_ref else 0
        return np.full(n_pred, np.inf), np.full(n_ref, np.inf)
    # Erode inside the joint bounding box grown by one voxel: the rim is background (or the
    # array's own border, which erosion also treats as background), so the surfaces are
    # those of the whole array at a fraction of the cost.
    box = _joint_box(pred, ref, margin=1)
    pred_points = np.argwhere(_surface(pred[box], connectivity)) * spacing
    ref_points = np.argwhere(_surface(ref[box], connectivity)) * spacing
    # Nearest neighbours among surface voxel centres, in mm: the same numbers as
    # distance_transform_edt(~surface, sampling=spacing) read at the other surface (as
    # medpy does), without a distance map of the whole box.
    to_ref, _ = cKDTree(ref_points).query(pred_points)
    to_pred, _ = cKDTree(pred_points).query(ref_points)
    return to_ref, to_pred


def _symmetric(pred, ref, spacing, connectivity) -> np.ndarray:
    return np.concatenate(surface_distances(pred, ref, spacing, connectivity))


def assd(pred, ref, spacing=None, connectivity: int = 2) -> float:
    """Average symmetric surface distance (mm): the mean over both directed distance sets."""
    d = _symmetric(pred, ref, spacing, connectivity)
    return float(d.mean()) if d.size else 0.0


def mssd(pred, ref, spacing=None, connectivity: int = 2) -> float:
    """Maximum symmetric surface distance (mm), i.e. the Hausdorff distance of the surfaces."""
    d = _symmetric(pred, ref, spacing, connectivity)
    return float(d.max()) if d.size else 0.0


def rmsd(pred, ref, spacing=None, connectivity: int = 2) -> float:
    """Root mean square symmetric surface distance (mm)."""
    d = _symmetric(pred, ref, spacing, connectivity)
    return float(np.sqrt(np.mean(np.square(d)))) if d.size else 0.0


# ----------------------------------------------------------------------------- detection


def lesion_detection(pred, ref, iou_threshold: float = 0.5, connectivity: int = 1) -> dict:
    """Lesion-wise detection: connected components matched one to one when IoU > threshold.

    Components come from ``scipy.ndimage.label`` (``connectivity`` 1 = face neighbours, the
    SciPy and LiTS default). Pairs are matched greedily by decreasing IoU; for thresholds of
    0.5 and above a component can exceed the threshold with at most one partner, so the
    matching is unique. Returns ``tp`` (matched pairs), ``n_pred``, ``n_ref``,
    ``precision = tp / n_pred`` and ``recall = tp / n_ref`` (NaN when undefined).
    """
    pred, ref = _masks(pred, ref)
    structure = ndimage.generate_binary_structure(pred.ndim, min(connectivity, pred.ndim))
    if pred.any() and ref.any():  # components lie inside the joint bounding box
        box = _joint_box(pred, ref, margin=0)
        pred, ref = pred[box], ref[box]
    pred_ids, n_pred = ndimage.label(pred, structure)
    ref_ids, n_ref = ndimage.label(ref, structure)
    tp = 0
    if n_pred and n_ref:
        pred_size = np.bincount(pred_ids[pred], minlength=n_pred + 1)
        ref_size = np.bincount(ref_ids[ref], minlength=n_ref + 1)
        both = pred & ref  # only overlapping pairs can match: count them sparsely
        keys = pred_ids[both].astype(np.int64) * (n_ref + 1) + ref_ids[both]
        keys, intersection = np.unique(keys, return_counts=True)
        i, j = np.divmod(keys, n_ref + 1)
        overlap = intersection / (pred_size[i] + ref_size[j] - intersection)
        used_pred, used_ref = set(), set()
        for k in np.argsort(-overlap, kind="stable"):
            if overlap[k] <= iou_threshold:
                break
            if i[k] not in used_pred and j[k] not in used_ref:
                used_pred.add(i[k])
                used_ref.add(j[k])
        tp = len(used_pred)
    return {
        "tp": tp,
        "n_pred": int(n_pred),
        "n_ref": int(n_ref),
        "precision": _ratio(tp, n_pred, empty=math.nan),
        "recall": _ratio(tp, n_ref, empty=math.nan),
    }


# ----------------------------------------------------------------------------- LiTS


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
    jaccard = _iou_from_counts(intersection, n_pred - intersection, n_ref - intersection)
    d = _symmetric(pred, ref, spacing, connectivity)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    scores = {
        "dice": _dice_from_counts(intersection, n_pred - intersection, n_ref - intersection),
        "jaccard": jaccard,
        "voe": 1.0 - jaccard,
        "rvd": rvd(pred, ref),
        "assd": float(d.mean()) if d.size else 0.0,
        "mssd": float(d.max()) if d.size else 0.0,
        "rmsd": float(np.sqrt(np.mean(np.square(d)))) if d.size else 0.0,
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
    pred_label = _as_label(pred_label, "prediction", pred_path)
    ref_label = _as_label(ref_label, "reference", ref_path)
    if pred_label.shape != ref_label.shape:
        raise ShapeError(
            f"prediction shape {pred_label.shape} differs from reference shape {ref_label.shape}",
            pred_path,
        )
    spacing = _as_spacing(spacing, ref_label.ndim)
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
        block["dice_global"] = _ratio(2 * intersection, total, empty=1.0) if rows else None
        block["empty_cases"] = {kind: sum(row.get("empty") == kind for row in rows)
                                for kind in ("both", "prediction", "reference")}
        if structure == "lesion":
            detections = [row["detection"] for row in rows if "detection" in row]
            tp = sum(d["tp"] for d in detections)
            n_pred = sum(d["n_pred"] for d in detections)
            n_ref = sum(d["n_ref"] for d in detections)
            block["detection"] = {
                "tp": tp, "n_pred": n_pred, "n_ref": n_ref,
                "precision": _finite_or_none(_ratio(tp, n_pred, empty=math.nan)),
                "recall": _finite_or_none(_ratio(tp, n_ref, empty=math.nan)),
            }
        summary[structure] = block
    return summary
