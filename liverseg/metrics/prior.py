"""How much of the structure an ROI prior covers, and how well the tuner does inside and outside it.

The cascade's tuning network refines the localizer's segmentation inside the ROI prior
(:mod:`liverseg.prior`); where the prior misses part of the liver, what the tuner does outside
the box is what decides the result (issue 17). :func:`prior_scores` measures both.
"""

from __future__ import annotations

import numpy as np

from liverseg.metrics._checks import as_mask, check_same_shape
from liverseg.metrics._counts import dice_from_counts, ratio


def prior_scores(prior, reference, prediction=None, axis=None) -> dict:
    """The reference's coverage by ``prior`` and, with a ``prediction``, its Dice inside and
    outside the prior.

    Args:
        prior, reference, prediction: masks of one shape (non-zero is foreground: threshold
            probabilities first; NaN is refused), e.g. ``(N, S, S)`` slices of one plane.
        axis: as the overlap metrics: ``None`` pools the whole array; ``(1, 2)`` on
            ``(N, S, S)`` gives one score per slice.
    Returns:
        ``{"coverage": |R ∩ B| / |R|`` (1 for an empty reference: nothing was missed),
        ``"reference_outside": |R \\ B|`` voxels, and with ``prediction``
        ``"dice_inside"``: Dice of ``P ∩ B`` against ``R ∩ B``, ``"dice_outside"``: Dice of
        ``P \\ B`` against ``R \\ B`` (1 where both are empty, as :func:`liverseg.metrics.dice`),
        ``"predicted_outside": |P \\ B|`` voxels``}``; floats (ints for the counts), or arrays
        over the axes kept.
    Raises:
        :class:`liverseg.errors.ShapeError` for masks of different shapes,
        :class:`liverseg.errors.InvalidDataError` for NaN.
    """
    box = as_mask(prior, "prior")
    ref = as_mask(reference, "reference")
    check_same_shape(box, ref)
    inside = np.count_nonzero(ref & box, axis=axis)
    outside = np.count_nonzero(ref & ~box, axis=axis)
    out = {"coverage": ratio(inside, np.asarray(inside) + outside, empty=1.0),
           "reference_outside": _count(outside)}
    if prediction is None:
        return out
    pred = as_mask(prediction, "prediction")
    check_same_shape(pred, ref)
    for name, region in (("inside", box), ("outside", ~box)):
        tp = np.count_nonzero(pred & ref & region, axis=axis)
        fp = np.count_nonzero(pred & ~ref & region, axis=axis)
        fn = np.count_nonzero(~pred & ref & region, axis=axis)
        out[f"dice_{name}"] = dice_from_counts(tp, fp, fn)
    out["predicted_outside"] = _count(np.count_nonzero(pred & ~box, axis=axis))
    return out


def _count(value):
    value = np.asarray(value)
    return int(value) if value.ndim == 0 else value
