"""One synthetic abdominal CT case: anatomy → tissue map → HU image and LiTS-style label.

How the case is scanned (contrast phase, noise, slice profile, field of view, streaks, metal)
and how varied its liver is (lesions, vessels, shape) follow a
:class:`liverseg.config.PhantomConfig`; ``None`` is :meth:`PhantomConfig.classic`, the phantoms
as they were before those settings existed, bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import numpy as np

from liverseg.config import PhantomConfig
from liverseg.datasets.base import LESION, LIVER, Case
from liverseg.io import Volume

from .acquisition import Acquisition, sample_acquisition
from .anatomy import anatomy_layers, sample_frame
from .appearance import Appearance, draw_appearance, render_with
from .lesions import Lesion, lesion_count, place_lesions
from .liver import liver
from .render import Scan, paint
from .scanner import (
    Metal, Streaks, add_artefacts, draw_metal, draw_phase, draw_streaks, noise_grain, pixel_noise,
    slice_sigma,
)
from .shapes import SmoothField
from .tissues import LIVER_TISSUES, TISSUE_HU, Tissue



@dataclasses.dataclass
class Phantom:
    """A case with what generated it: the tissue map, each tissue's mean HU, the lesions, and
    what the scanner drew (:mod:`.scanner`); the appearance drawn, if the config asked for one,
    and the :class:`.render.Scan` that renders the image again
    (:func:`.appearance.randomize_appearance`)."""

    case: Case
    tissues: np.ndarray  # uint8 ids of :class:`Tissue` (lesion k: ``Tissue.LESION + k``)
    hu: dict[int, float]
    phase: str
    lesions: list[Lesion]
    acquisition: Acquisition
    noise_hu: float
    noise_correlation_mm: float = 0.0  # in-plane Gaussian that filtered the noise (0: white)
    psf_mm: float = 0.0
    slice_sigma: float = 0.0  # slice profile along z, Gaussian sigma in voxels
    table: bool = True
    streaks: Streaks | None = None
    metal: Metal | None = None
    appearance: Appearance | None = None  # drawn when the config asks (:mod:`.appearance`)
    scan: Scan | None = dataclasses.field(default=None, repr=False)  # to render it again

    @property
    def slice_thickness_mm(self) -> float:
        return self.acquisition.thickness


def _streams(seed) -> list[np.random.SeedSequence]:
    """Independent streams for anatomy, lesions, scan geometry and noise: the patient does
    not change with the grid it is sampled on."""
    return np.random.SeedSequence(seed).spawn(4)


def _scanner_streams(seed) -> list[np.random.SeedSequence]:
    """Streams for the noise grain, the table, streaks and metal: the seed's fifth child (the
    first four are :func:`_streams`), split, so none of them moves another draw."""
    return np.random.SeedSequence(seed).spawn(5)[4].spawn(4)


def _anatomy_streams(seed) -> list[np.random.SeedSequence]:
    """Streams for what the anatomy settings added (issue 10): lesion looks and the multifocal
    mode, the vessel tree, the liver's shape; the seed's sixth child, split, so the classic
    draws stay where they were."""
    return np.random.SeedSequence(seed).spawn(6)[5].spawn(3)


def _appearance_stream(seed) -> np.random.SeedSequence:
    """The stream of the appearance settings (issue 17): the seed's seventh child, so that
    drawing an appearance never moves the classic, scanner or anatomy draws."""
    return np.random.SeedSequence(seed).spawn(7)[6]


def scan_geometry(seed, shape=None, spacing=None, config: PhantomConfig | None = None) -> Acquisition:
    """The grid :func:`make_case` would use for these arguments, without rendering anything."""
    anatomy_seed, _, scan_seed, _ = _streams(seed)
    frame = sample_frame(np.random.default_rng(anatomy_seed))
    return sample_acquisition(np.random.default_rng(scan_seed), frame, shape, spacing, config)


def make_phantom(
    seed: int | Sequence[int],
    shape: tuple[int, int, int] | None = None,
    spacing: tuple[float, float, float] | None = None,
    phase: str | None = None,
    lesions: int | None = None,
    config: PhantomConfig | None = None,
) -> Phantom:
    """Generate the phantom of ``seed`` (see :func:`make_case` for the arguments)."""
    config = PhantomConfig.classic() if config is None else config
    if lesions is not None and int(lesions) < 0:
        raise ValueError(f"lesions must be a count >= 0, got {lesions}")
    if phase is not None and phase not in config.phases:
        raise ValueError(f"phase must be one of the config's phases {config.phases}, got {phase!r}")
    anatomy_seed, lesion_seed, scan_seed, noise_seed = _streams(seed)
    grain_seed, table_seed, streak_seed, metal_seed = _scanner_streams(seed)
    lesion_extra_seed, vessel_seed, shape_seed = _anatomy_streams(seed)
    rng = np.random.default_rng(anatomy_seed)
    frame = sample_frame(rng)
    liver_layers = functools.partial(liver, config=config, vessel_rng=np.random.default_rng(vessel_seed),
                                     shape_rng=np.random.default_rng(shape_seed))
    layers = anatomy_layers(frame, rng, liver_layers)
    drawn_phase = draw_phase(rng.uniform(), config)
    phase = phase or drawn_phase
    hu = {int(t): rng.uniform(*band) for t, band in TISSUE_HU[phase].items()}
    contrast, contrast_hu = SmoothField(rng, (150, 400), waves=4), rng.uniform(3, 8)

    acquisition = sample_acquisition(np.random.default_rng(scan_seed), frame, shape, spacing, config)
    scan_rng = np.random.default_rng(scan_seed.spawn(1)[0])
    lesion_rng, lesion_extra = np.random.default_rng(lesion_seed), np.random.default_rng(lesion_extra_seed)
    count = lesion_count(lesion_rng, config, lesion_extra) if lesions is None else int(lesions)
    margin = 2.0 + max(acquisition.spacing) / acquisition.scale
    liver_box = layers[next(i for i, layer in enumerate(layers) if layer.tissue == Tissue.LIVER)].box
    lesion_layers, lesion_list = place_lesions(layers, liver_box, lesion_rng, count, margin, config, lesion_extra)
    for k, lesion in enumerate(lesion_list):
        hu[int(Tissue.LESION) + k] = hu[int(Tissue.LIVER)] - lesion.contrast
    table = bool(np.random.default_rng(table_seed).uniform() < config.table_probability)
    if not table:  # a field of view cropped above the table
        layers = [layer for layer in layers if layer.tissue not in (Tissue.TABLE, Tissue.FOAM)]

    grid = acquisition.grid()
    tissues, shading = paint(grid, layers + lesion_layers)
    noise_rng = np.random.default_rng(noise_seed)
    noise_hu = pixel_noise(noise_rng.uniform(*config.noise_hu), config, acquisition)
    correlation_mm, grain = noise_grain(np.random.default_rng(grain_seed), config, acquisition.spacing)
    streaks = draw_streaks(np.random.default_rng(streak_seed), config, frame)
    metal = draw_metal(np.random.default_rng(metal_seed), config, frame, tissues, grid)
    artefacts = None
    if streaks is not None or metal is not None:
        artefacts = functools.partial(add_artefacts, grid=grid, tissues=tissues, frame=frame, streaks=streaks,
                                      metal=metal)
    psf_mm, z_sigma = scan_rng.uniform(*config.psf_mm), slice_sigma(config, acquisition)
    scan = Scan(tissues, shading, grid, acquisition.spacing, contrast, contrast_hu, noise_hu, psf_mm=psf_mm,
                slice_sigma=z_sigma, noise_grain=grain, artefacts=artefacts)
    appearance = None
    if config.draws_appearance:  # else exactly the classic rendering
        appearance = draw_appearance(_appearance_stream(seed), config, hu, lesion_list)
        hu = dict(appearance.hu)
        image = render_with(scan, appearance, noise_rng)
    else:
        image = scan.render(hu, noise_rng)
    label = np.zeros(tissues.shape, np.uint8)
    label[np.isin(tissues, LIVER_TISSUES)] = LIVER
    label[tissues >= Tissue.LESION] = LESION
    volume = Volume.from_canonical(image, acquisition.spacing, acquisition.origin())
    case_id = "phantom-" + "-".join(str(s) for s in np.atleast_1d(seed))
    return Phantom(Case(case_id, volume, label), tissues, hu, phase, lesion_list, acquisition, noise_hu,
                   correlation_mm, float(psf_mm), z_sigma, table, streaks, metal, appearance, scan)


def make_case(
    seed: int | Sequence[int],
    shape: tuple[int, int, int] | None = None,
    spacing: tuple[float, float, float] | None = None,
    phase: str | None = None,
    lesions: int | None = None,
    config: PhantomConfig | None = None,
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
        phase: one of ``config.phases`` (``"unenhanced"``, ``"arterial"``,
            ``"portal_venous"``, ``"late"``: the HU of :mod:`.tissues`; the classic config
            has unenhanced and portal-venous only); default drawn from ``config.phase_weights``.
        lesions: number of lesions; default drawn (``config.healthy_probability`` healthy,
            else 1–8, or a multifocal case of ``config.multifocal_count`` lesions and more).
        config: how the patient is scanned and how varied its anatomy is
            (:class:`liverseg.config.PhantomConfig`: phase, noise, slice thickness and profile,
            field of view, streaks, metal; lesions, vessels, liver shape; the randomized
            appearance and liver perfusion of :mod:`.appearance`). ``None``:
            :meth:`PhantomConfig.classic` (portal-venous or 20 % unenhanced, 10–20 HU noise),
            the phantoms of every chapter so far; ``PhantomConfig()`` is the realistic mixture.

    Returns:
        a :class:`~liverseg.datasets.base.Case`: float32 image of whole HU in canonical
        orientation (liver on the image's left, in the upper slices) and a 0/1/2 label.
    """
    return make_phantom(seed, shape, spacing, phase, lesions, config).case
