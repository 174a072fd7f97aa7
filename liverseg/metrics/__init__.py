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

Lesion visibility (``lesion_visibility``)
    Each reference lesion's matched-footprint z: its contrast against the means of its own
    footprint placed elsewhere in the liver, so a detection recall can say which lesions it
    counts (those a detector could tell from the liver, |z| above about 3, and the rest).

The ROI prior (``prior_scores``)
    The share of the reference covered by the tuning network's prior, and the tuner's Dice
    inside and outside the prior.
"""

from liverseg.labels import LESION, LIVER
from liverseg.metrics.accumulator import OverlapAccumulator
from liverseg.metrics.detection import lesion_detection, lesion_matches
from liverseg.metrics.lits import SURFACE_METRICS, evaluate_case, summarize_cases
from liverseg.metrics.overlap import accuracy, confusion_counts, dice, iou, miou, rvd, voe
from liverseg.metrics.prior import prior_scores
from liverseg.metrics.surface import assd, mssd, rmsd, surface_distances, surface_scores
from liverseg.metrics.visibility import lesion_visibility

__all__ = [
    "LESION",
    "LIVER",
    "OverlapAccumulator",
    "SURFACE_METRICS",
    "accuracy",
    "assd",
    "confusion_counts",
    "dice",
    "evaluate_case",
    "iou",
    "lesion_detection",
    "lesion_matches",
    "lesion_visibility",
    "miou",
    "mssd",
    "prior_scores",
    "rmsd",
    "rvd",
    "summarize_cases",
    "surface_distances",
    "surface_scores",
    "voe",
]
