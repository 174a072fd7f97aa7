"""Overlap scores over a data set: per case, mean over cases, and pooled (global)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from liverseg.metrics._checks import check_same_shape
from liverseg.metrics._counts import (
    dice_from_counts,
    iou_from_counts,
    mean_skipping_absent,
    ratio,
)
from liverseg.metrics.overlap import confusion_counts


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
        check_same_shape(pred, ref)
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
        scores = {"accuracy": ratio(agree, voxels, empty=math.nan)}
        ious = {}
        for c in self.classes:
            tp, fp, fn = counts[c]
            scores[f"dice_{c}"] = dice_from_counts(tp, fp, fn)
            scores[f"iou_{c}"] = iou_from_counts(tp, fp, fn)
            ious[c] = ratio(tp, tp + fp + fn, empty=math.nan)
        foreground = [c for c in self.classes if c != 0] or self.classes
        scores["dice"] = float(np.mean([scores[f"dice_{c}"] for c in foreground]))
        scores["iou"] = float(np.mean([scores[f"iou_{c}"] for c in foreground]))
        scores["miou"] = mean_skipping_absent(np.array([ious[c] for c in self.classes]))
        scores["miou_foreground"] = mean_skipping_absent(np.array([ious[c] for c in foreground]))
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
