"""The scores of Table 5 for a set of slices: accuracy, Dice, IoU and mIoU, pooled.

Pooled ("global") over every pixel of every slice given; ``iou`` is the foreground IoU and
``miou`` the mean of background and foreground IoU (Eq. 12). Per-case scores of whole volumes
come from :mod:`liverseg.metrics` in the inference and results code.
"""

from __future__ import annotations

import numpy as np

from liverseg import metrics

#: the scores :func:`overlap_scores` gives, in its order
METRICS = ("accuracy", "dice", "iou", "miou")


def overlap_scores(probability: np.ndarray, target: np.ndarray, threshold: float = 0.5) -> dict:
    """``{"accuracy", "dice", "iou", "miou"}`` of ``probability > threshold`` against ``target``."""
    pred = np.asarray(probability) > threshold
    ref = np.asarray(target) > 0.5
    return {
        "accuracy": float(metrics.accuracy(pred, ref)),
        "dice": float(metrics.dice(pred, ref)),
        "iou": float(metrics.iou(pred, ref)),
        "miou": float(metrics.miou(pred.astype(np.uint8), ref.astype(np.uint8), classes=(0, 1))),
    }
