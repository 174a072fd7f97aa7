"""The label values of a segmentation: 0 background, 1 liver, 2 lesion.

This is the LiTS 2017 convention (``segmentation-N.nii``: 0 background, 1 liver, 2 liver
tumour), which every dataset module produces (3D-IRCADb's liver and lesion masks are mapped
onto it), the networks are trained on, the post-processing cleans and the metrics score:
the liver as a whole is ``label >= LIVER`` (a lesion lies inside the liver), the lesions
``label == LESION``. No other liverseg module is imported here, so any layer may use it.
"""

BACKGROUND, LIVER, LESION = 0, 1, 2

__all__ = ["BACKGROUND", "LESION", "LIVER"]
