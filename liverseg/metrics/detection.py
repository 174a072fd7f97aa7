"""Lesion detection (LiTS): connected components of prediction and reference, matched by IoU."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from liverseg.metrics._box import joint_box
from liverseg.metrics._checks import as_masks
from liverseg.metrics._counts import ratio


def lesion_matches(pred, ref, iou_threshold: float = 0.5,
                   connectivity: int = 1) -> tuple[np.ndarray, int]:
    """Which reference lesions a prediction finds: components matched one to one, IoU > threshold.

    Components come from ``scipy.ndimage.label`` (``connectivity`` 1 = face neighbours, the
    SciPy and LiTS default). Pairs are matched greedily by decreasing IoU; for thresholds of
    0.5 and above a component can exceed the threshold with at most one partner, so the
    matching is unique. Returns ``(found, n_pred)``: a boolean array with one entry per
    reference component, in ``ndimage.label``'s order over the whole ``ref``, and the number of
    predicted components.
    """
    pred, ref = as_masks(pred, ref)
    structure = ndimage.generate_binary_structure(pred.ndim, min(connectivity, pred.ndim))
    if pred.any() and ref.any():  # components lie inside the joint bounding box, and a
        box = joint_box(pred, ref, margin=0)  # crop keeps ndimage.label's raster order
        pred, ref = pred[box], ref[box]
    pred_ids, n_pred = ndimage.label(pred, structure)
    ref_ids, n_ref = ndimage.label(ref, structure)
    found = np.zeros(n_ref, bool)
    if n_pred and n_ref:
        pred_size = np.bincount(pred_ids[pred], minlength=n_pred + 1)
        ref_size = np.bincount(ref_ids[ref], minlength=n_ref + 1)
        both = pred & ref  # only overlapping pairs can match: count them sparsely
        keys = pred_ids[both].astype(np.int64) * (n_ref + 1) + ref_ids[both]
        keys, intersection = np.unique(keys, return_counts=True)
        i, j = np.divmod(keys, n_ref + 1)
        overlap = intersection / (pred_size[i] + ref_size[j] - intersection)
        used_pred = set()
        for k in np.argsort(-overlap, kind="stable"):
            if overlap[k] <= iou_threshold:
                break
            if i[k] not in used_pred and not found[j[k] - 1]:
                used_pred.add(i[k])
                found[j[k] - 1] = True
    return found, int(n_pred)


def lesion_detection(pred, ref, iou_threshold: float = 0.5, connectivity: int = 1) -> dict:
    """Lesion-wise detection counts of :func:`lesion_matches`: ``tp`` (matched pairs),
    ``n_pred``, ``n_ref``, ``precision = tp / n_pred`` and ``recall = tp / n_ref`` (NaN when
    undefined).
    """
    found, n_pred = lesion_matches(pred, ref, iou_threshold, connectivity)
    tp = int(found.sum())
    return {
        "tp": tp,
        "n_pred": n_pred,
        "n_ref": len(found),
        "precision": ratio(tp, n_pred, empty=math.nan),
        "recall": ratio(tp, len(found), empty=math.nan),
    }
