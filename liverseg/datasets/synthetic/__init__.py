"""Synthetic abdominal CT phantoms: what every reader without LiTS learns on.

Each phantom is a patient drawn from a seed: body outline, fat, muscle, lungs above the
diaphragm, heart, spine and ribs, aorta and IVC, kidneys, spleen, stomach, pancreas,
bowel, and a liver of varied shape in the right upper abdomen with none to many lesions
(hypodense; in the mixture some hyperdense or rim-enhancing), at the CT numbers of DESIGN.md
("Synthetic phantoms"). The image is blurred by partial volume and carries noise; the label
is crisp (0 background, 1 liver, 2 lesion). Anatomy is defined in millimetres, so spacing
changes voxel counts as in real scans.

How a patient is scanned follows a :class:`liverseg.config.PhantomConfig` (``config=``; a
profile's ``phantoms`` setting): by default (``None``) the classic phantoms (portal-venous or
unenhanced, 10–20 HU noise); ``PhantomConfig()`` draws from the realistic mixture of contrast
phases, noise levels and grains, slice thicknesses, fields of view, beam-hardening streaks and
metal; ``appearance="randomized"`` draws each tissue's HU and texture from wide ranges, with a
bias field, a gamma and patchy liver enhancement (``appearance``, issue 17). One module per concern: ``anatomy`` (body and organs), ``liver``, ``lesions``,
``tissues`` (CT numbers per phase), ``acquisition`` (the grid), ``scanner`` (noise, slice
profile, streaks, metal), ``render`` (painting and the image), ``phantom`` (one case).

Example::

    case = make_case(0, shape=(40, 64, 64))   # a Case: case.image (Volume), case.label
    make_dataset("data/phantoms", 20, shape=(80, 128, 128))   # volume-N / segmentation-N.nii.gz
    make_case(0, shape=(40, 64, 64), config=PhantomConfig())   # any phase, noise, streaks, metal
"""

from liverseg.config import PhantomConfig

from .appearance import Appearance, randomize_appearance, with_appearance_draws
from .dataset import case_seed, iter_cases, make_dataset, phantom_seed
from .phantom import Phantom, make_case, make_phantom, scan_geometry
from .tissues import LESION_CONTRAST_HU, TISSUE_HU, Tissue

__all__ = [
    "Appearance", "randomize_appearance", "with_appearance_draws", "LESION_CONTRAST_HU", "TISSUE_HU", "Phantom", "PhantomConfig", "Tissue", "case_seed", "iter_cases",
    "make_case", "make_dataset", "make_phantom", "phantom_seed", "scan_geometry",
]
