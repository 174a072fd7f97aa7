"""Synthetic abdominal CT phantoms: what every reader without LiTS learns on.

Each phantom is a patient drawn from a seed: body outline, fat, muscle, lungs above the
diaphragm, heart, spine and ribs, aorta and IVC, kidneys, spleen, stomach, pancreas,
bowel, and a liver of varied shape in the right upper abdomen with 0..several hypodense
lesions, at the CT numbers of DESIGN.md ("Synthetic phantoms"). The image is blurred by
partial volume and carries 10–20 HU noise; the label is crisp (0 background, 1 liver,
2 lesion). Anatomy is defined in millimetres, so spacing changes voxel counts as in real
scans.

Example::

    case = make_case(0, shape=(40, 64, 64))   # a Case: case.image (Volume), case.label
    make_dataset("data/phantoms", 20, shape=(80, 128, 128))   # volume-N / segmentation-N.nii.gz
"""

from .dataset import case_seed, iter_cases, make_dataset
from .phantom import Phantom, make_case, make_phantom, scan_geometry
from .tissues import LESION_CONTRAST_HU, TISSUE_HU, Tissue

__all__ = [
    "LESION_CONTRAST_HU", "TISSUE_HU", "Phantom", "Tissue", "case_seed", "iter_cases", "make_case",
    "make_dataset", "make_phantom", "scan_geometry",
]
