"""One synthetic abdominal CT case: anatomy → tissue map → HU image and LiTS-style label."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from liverseg.datasets.base import LESION, LIVER, Case
from liverseg.io import Volume

from .acquisition import Acquisition, sample_acquisition
from .anatomy import anatomy_layers, sample_frame
from .lesions import Lesion, lesion_count, place_lesions
from .liver import liver
from .render import paint, render_hu
from .shapes import SmoothField
from .tissues import LIVER_TISSUES, TISSUE_HU, Tissue

PHASES = tuple(TISSUE_HU)
UNENHANCED_FRACTION = 0.2
NOISE_HU = (10.0, 20.0)


@dataclasses.dataclass
class Phantom:
    """A case with what generated it: the tissue map, each tissue's mean HU, the lesions."""

    case: Case
    tissues: np.ndarray  # uint8 ids of :class:`Tissue` (lesion k: ``Tissue.LESION + k``)
    hu: dict[int, float]
    phase: str
    lesions: list[Lesion]
    acquisition: Acquisition
    noise_hu: float


def _streams(seed) -> list[np.random.SeedSequence]:
    """Independent streams for anatomy, lesions, scan geometry and noise: the patient does
    not change with the grid it is sampled on."""
    return np.random.SeedSequence(seed).spawn(4)


def scan_geometry(seed, shape=None, spacing=None) -> Acquisition:
    """The grid :func:`make_case` would use for these arguments, without rendering anything."""
    anatomy_seed, _, scan_seed, _ = _streams(seed)
    frame = sample_frame(np.random.default_rng(anatomy_seed))
    return sample_acquisition(np.random.default_rng(scan_seed), frame, shape, spacing)


def make_phantom(
    seed: int | Sequence[int],
    shape: tuple[int, int, int] | None = None,
    spacing: tuple[float, float, float] | None = None,
    phase: str | None = None,
    lesions: int | None = None,
) -> Phantom:
    """Generate the phantom of ``seed`` (see :func:`make_case` for the arguments)."""
    if phase is not None and phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    anatomy_seed, lesion_seed, scan_seed, noise_seed = _streams(seed)
    rng = np.random.default_rng(anatomy_seed)
    frame = sample_frame(rng)
    layers = anatomy_layers(frame, rng, liver)
    drawn_phase = PHASES[1] if rng.uniform() < UNENHANCED_FRACTION else PHASES[0]
    phase = phase or drawn_phase
    hu = {int(t): rng.uniform(*band) for t, band in TISSUE_HU[phase].items()}
    contrast, contrast_hu = SmoothField(rng, (150, 400), waves=4), rng.uniform(3, 8)

    acquisition = sample_acquisition(np.random.default_rng(scan_seed), frame, shape, spacing)
    scan_rng = np.random.default_rng(scan_seed.spawn(1)[0])
    lesion_rng = np.random.default_rng(lesion_seed)
    count = lesion_count(lesion_rng) if lesions is None else int(lesions)
    margin = 2.0 + max(acquisition.spacing) / acquisition.scale
    liver_box = layers[next(i for i, layer in enumerate(layers) if layer.tissue == Tissue.LIVER)].box
    lesion_layers, lesion_list = place_lesions(layers, liver_box, lesion_rng, count, margin)
    for k, lesion in enumerate(lesion_list):
        hu[int(Tissue.LESION) + k] = hu[int(Tissue.LIVER)] - lesion.contrast

    grid = acquisition.grid()
    tissues, shading = paint(grid, layers + lesion_layers)
    noise_rng = np.random.default_rng(noise_seed)
    noise_hu = noise_rng.uniform(*NOISE_HU)
    image = render_hu(
        tissues, shading, grid, acquisition.spacing, hu, contrast, contrast_hu, noise_rng, noise_hu,
        psf_mm=scan_rng.uniform(0.5, 0.9),
    )
    label = np.zeros(tissues.shape, np.uint8)
    label[np.isin(tissues, LIVER_TISSUES)] = LIVER
    label[tissues >= Tissue.LESION] = LESION
    volume = Volume.from_canonical(image, acquisition.spacing, acquisition.origin())
    case_id = "phantom-" + "-".join(str(s) for s in np.atleast_1d(seed))
    return Phantom(Case(case_id, volume, label), tissues, hu, phase, lesion_list, acquisition, noise_hu)


def make_case(
    seed: int | Sequence[int],
    shape: tuple[int, int, int] | None = None,
    spacing: tuple[float, float, float] | None = None,
    phase: str | None = None,
    lesions: int | None = None,
) -> Case:
    """A synthetic abdominal CT case, the same for the same arguments.

    Args:
        seed: any seed ``numpy.random.default_rng`` takes. The patient (anatomy, lesions,
            HU) depends on the seed only, so the same seed at another ``shape`` is the
            same patient sampled differently (on coarse grids lesions may shrink or
            drop out, to stay wholly inside the liver).
        shape: ``(z, y, x)`` voxels. Default: a clinical 512×512 scan whose slice count
            follows the drawn slice thickness (0.7–5 mm) and coverage. Given alone, the
            same field of view is resampled to it (coarser spacing: e.g. ~3 mm at 128).
        spacing: ``(z, y, x)`` mm. Given with ``shape``, both are kept and the anatomy is
            shrunk if it would not fit in-plane.
        phase: ``"portal_venous"`` (liver 90–130 HU) or ``"unenhanced"`` (liver 50–70 HU);
            default drawn (20 % unenhanced).
        lesions: number of lesions; default drawn (30 % healthy, else 1–8).

    Returns:
        a :class:`~liverseg.datasets.base.Case`: float32 image of whole HU in canonical
        orientation (liver on the image's left, in the upper slices) and a 0/1/2 label.
    """
    return make_phantom(seed, shape, spacing, phase, lesions).case
