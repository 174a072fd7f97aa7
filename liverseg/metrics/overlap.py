"""Overlap scores of two masks (paper Eqs. 9-12): accuracy, Dice, IoU, VOE, RVD and mIoU.

Each takes an optional ``axis``: ``None`` scores the whole array, ``axis=(1, 2)`` on a
``(z, y, x)`` volume gives one score per axial slice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from liverseg.metrics._checks import as_masks, check_same_shape
from liverseg.metrics._counts import (
    dice_from_counts,
    iou_from_counts,
    mean_skipping_absent,
    ratio,
)


def confusion_counts(pred, ref, axis=None) -> dict[str, np.ndarray]:
    """True/false positives/negatives of two masks, summed over ``axis`` (None: all)."""
    pred, ref = as_masks(pred, ref)
    return {
        "tp": np.count_nonzero(pred & ref, axis=axis),
        "fp": np.count_nonzero(pred & ~ref, axis=axis),
        "fn": np.count_nonzero(~pred & ref, axis=axis),
        "tn": np.count_nonzero(~pred & ~ref, axis=axis),
    }


def accuracy(pred, ref, axis=None):
    """Fraction of voxels where the masks agree, ``(TP + TN) / N`` (Eq. 9)."""
    c = confusion_counts(pred, ref, axis)
    return ratio(c["tp"] + c["tn"], c["tp"] + c["tn"] + c["fp"] + c["fn"], empty=math.nan)


def dice(pred, ref, axis=None):
    """Dice ``2|X ∩ Y| / (|X| + |Y|)`` (Eq. 10); 1 when both masks are empty."""
    c = confusion_counts(pred, ref, axis)
    return dice_from_counts(c["tp"], c["fp"], c["fn"])


def iou(pred, ref, axis=None):
    """Intersection over union (Jaccard) ``|X ∩ Y| / |X ∪ Y|``; 1 when both masks are empty."""
    c = confusion_counts(pred, ref, axis)
    return iou_from_counts(c["tp"], c["fp"], c["fn"])


def voe(pred, ref, axis=None):
    """Volumetric overlap error ``1 − IoU``."""
    return 1.0 - iou(pred, ref, axis)


def rvd(pred, ref, axis=None):
    """Relative volume difference ``(|P| − |R|) / |R|``: −1 for an empty prediction, ``inf``
    for a non-empty prediction of an empty reference, 0 when both are empty."""
    pred, ref = as_masks(pred, ref)
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
        rows.append(ratio(counts["tp"], union, empty=math.nan))
    return np.asarray(rows, dtype=float)


def miou(pred_label, ref_label, classes: Sequence[int] | None = None,
         include_background: bool = True, axis=None):
    """Mean IoU over classes (Eq. 12).

    ``classes`` defaults to every value present in either array; class 0 is the background
    and is left out when ``include_background`` is False. A class absent from both arrays is
    skipped (as Keras' ``MeanIoU`` does) rather than counted as a perfect 1; if no class is
    left, the score is 1.
    """
    pred_label, ref_label = np.asarray(pred_label), np.asarray(ref_label)
    check_same_shape(pred_label, ref_label)
    if classes is None:
        classes = np.union1d(np.unique(pred_label), np.unique(ref_label)).tolist()
    classes = [c for c in classes if include_background or c != 0]
    if not classes:
        return 1.0
    return mean_skipping_absent(_class_iou(pred_label, ref_label, classes, axis))
