"""Scores from voxel counts, with the empty-mask rules of :mod:`liverseg.metrics`.

Per-case, per-slice and pooled (dataset) scores all go through these, so an empty
denominator is handled the same way everywhere.
"""

from __future__ import annotations

import numpy as np


def ratio(numerator, denominator, empty: float):
    """``numerator / denominator``, ``empty`` where the denominator is 0 (scalar in, float out)."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(numerator, denominator).shape, float(empty))
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return float(out) if out.ndim == 0 else out


def dice_from_counts(tp, fp, fn):
    return ratio(2 * np.asarray(tp), 2 * np.asarray(tp) + fp + fn, empty=1.0)


def iou_from_counts(tp, fp, fn):
    return ratio(tp, np.asarray(tp) + fp + fn, empty=1.0)


def mean_skipping_absent(values: np.ndarray):
    """Mean over axis 0 ignoring NaN (absent classes); 1 where every class is absent."""
    present = ~np.isnan(values)
    total = np.where(present, values, 0.0).sum(axis=0)
    out = ratio(total, present.sum(axis=0), empty=1.0)
    return out
