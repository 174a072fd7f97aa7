"""Lesion detection (LiTS): connected components of prediction and reference, matched by IoU."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from liverseg.metrics._box import joint_box
from liverseg.metrics._checks import as_masks
from liverseg.metrics._counts import ratio


def lesion_detection(pred, ref, iou_threshold: float = 0.5, connectivity: int = 1) -> dict:
    """Lesion-wise detection: connected components matched one to one when IoU > threshold.

    Components come from ``scipy.ndimage.label`` (``connectivity`` 1 = face neighbours, the
    SciPy and LiTS default). Pairs are matched greedily by decreasing IoU; for thresholds of
    0.5 and above a component can exceed the threshold with at most one partner, so the
    matching is unique. Returns ``tp`` (matched pairs), ``n_pred``, ``n_ref``,
    ``precision = tp / n_pred`` and ``recall = tp / n_ref`` (NaN when undefined).
    """
    pred, ref = as_masks(pred, ref)
    structure = ndimage.generate_binary_structure(pred.ndim, min(connectivity, pred.ndim))
    if pred.any() and ref.any():  # components lie inside the joint bounding box
        box = joint_box(pred, ref, margin=0)
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
        "precision": ratio(tp, n_pred, empty=math.nan),
        "recall": ratio(tp, n_ref, empty=math.nan),
    }
