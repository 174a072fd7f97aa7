"""Liver lesions: 0..many, a few mm to 10+ cm, each wholly inside the liver.

How many, how large and how dark follows a :class:`liverseg.config.PhantomConfig`; its
:meth:`~liverseg.config.PhantomConfig.classic` preset is the generator as it was (30 % healthy,
else 1–8 hypodense lesions of 2.5–40 mm radius, log-uniform, 10–60 HU below the liver, half of
those over 12 mm with a necrotic centre), drawn from ``rng`` in the order it always was. The
realistic defaults follow one real LiTS liver crop (volume 117, measured for issue 10): every
lesion 27–67 HU darker than the liver (median 47), darkening from rim to core (about 83 HU at
the rim, 63 five voxels in: a 10–25 HU darker core in most lesions of 5 mm radius or more), 79
lesion components of equivalent radius median 2.6 voxels (about 4 mm), IQR 2.0–3.7, p90 6.2,
max 23. Hence a contrast ~ normal(45, 12) HU clipped to 10–75; a multifocal mode (15 % of the
cases with lesions: 15–80 small lesions, radius log-normal of median 4 mm and sigma_log 0.6
within 2.5–10 mm, plus 1–5 of 15–35 mm); and, after the issue's "hypodense and some hyperdense
or rim-enhancing, a few mm to 10+ cm, one to many, some cases without, borders from sharp to
diffuse", some hyperdense lesions (10 %, 10–40 HU above the liver), some with a bright rim
(15 %, 20–60 HU above the lesion, 1–3 mm wide) and borders blurred over 0–3 mm — those four
ranges are our estimates, not measurements. The multifocal ranges reproduce the crop's lesion
sizes (rendered at 1.5 mm: equivalent radius median 3.5 mm, IQR 2.4–5.2, p90 8.5), but the
lesions then fill 7–10 % of the liver rather than the recommended 10–25 %: large lesions must
keep a margin of liver around them, so they crowd into the thick middle of the liver.
Every draw the classic generator did not make comes from ``extra`` (a stream of its own).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from liverseg.config import PhantomConfig

from .render import paint
from .shapes import Grid, Layer, SmoothField, box_around, ellipsoid, rotation
from .tissues import LIVER_TISSUES, MAX_LESIONS, Tissue

#: probability that a case has no lesion (LiTS has healthy livers too): the classic value
HEALTHY_FRACTION = 0.3
RADIUS_MM = (2.5, 40.0)  # the classic radii
REFERENCE_MM = 2.5  # grid on which lesion centres are chosen, whatever the case's spacing
CORE_MIN_RADIUS_MM = 5.0  # lesions from this radius on have a darker core (realistic defaults)
CORE_PROBABILITY = 0.8  # "most" of them
MULTIFOCAL = -1  # the count :func:`lesion_count` gives a multifocal case (its radii say how many)


@dataclasses.dataclass
class Lesion:
    """Where a lesion is and how dark (its shape adds mild lumps to an ellipsoid of ``radius``)."""

    center: tuple[float, float, float]  # (X, Y, Z) mm, patient frame
    radius: float  # mm
    contrast: float  # HU below the liver mean (before the necrotic centre); < 0: hyperdense
    necrosis: float  # extra HU darkening at the centre
    rim: float = 0.0  # HU brighter than the lesion in a rim of ``rim_mm`` (rim-enhancing)
    rim_mm: float = 0.0
    blur: float = 0.0  # mm over which the border fades (half inside the label, half outside)
    multifocal: bool = False


def lesion_count(rng: np.random.Generator, config: PhantomConfig | None = None,
                 extra: np.random.Generator | None = None) -> int:
    """0 for ``healthy_probability`` of the cases (30 %), else 1, 2, ... (fewer more likely,
    at most 8) or, for ``multifocal_probability`` of those, :data:`MULTIFOCAL` (many: as many
    as :func:`multifocal_radii` draws)."""
    healthy = HEALTHY_FRACTION if config is None else config.healthy_probability
    if rng.uniform() < healthy:
        return 0
    count = int(min(rng.geometric(0.45), 8))
    if config is not None and config.multifocal_probability > 0 and extra is not None:
        if extra.uniform() < config.multifocal_probability:
            return MULTIFOCAL  # place_lesions draws the count with the radii
    return count


def multifocal_radii(config: PhantomConfig, extra: np.random.Generator) -> list[float]:
    """Radii (mm, largest first) of a multifocal case: ``multifocal_large_count`` lesions of
    ``multifocal_large_radius_mm`` and ``multifocal_count`` small ones, log-normal."""
    large = extra.integers(config.multifocal_large_count[0], config.multifocal_large_count[1] + 1)
    small = extra.integers(config.multifocal_count[0], config.multifocal_count[1] + 1)
    radii = list(extra.uniform(*config.multifocal_large_radius_mm, size=large))
    log_radii = extra.normal(np.log(config.multifocal_radius_median_mm), config.multifocal_radius_sigma_log, small)
    radii += list(np.clip(np.exp(log_radii), *config.multifocal_radius_mm))
    return sorted((float(r) for r in radii), reverse=True)


def place_lesions(
    layers: list[Layer], liver_box, rng: np.random.Generator, count: int, margin: float,
    config: PhantomConfig | None = None, extra: np.random.Generator | None = None,
) -> tuple[list[Layer], list[Lesion]]:
    """Choose lesions inside the liver that ``layers`` paint; return their layers (to paint
    after ``layers``) and descriptions. Each lesion keeps ``margin`` mm of liver around it.
    ``count`` :data:`MULTIFOCAL`: a multifocal case (``config``'s ranges, drawn from ``extra``)."""
    config = PhantomConfig.classic() if config is None else config
    extra = np.random.default_rng(0) if extra is None else extra
    radii = multifocal_radii(config, extra) if count == MULTIFOCAL else None
    if radii is not None:
        count = len(radii)
    if count > MAX_LESIONS:
        raise ValueError(f"at most {MAX_LESIONS} lesions, got {count}")
    if count == 0:
        return [], []
    axes = (np.arange(low, high + REFERENCE_MM, REFERENCE_MM, dtype=np.float32) for low, high in liver_box)
    grid = Grid(*axes)
    tissues, _ = paint(grid, _shaping_liver(layers))
    liver = np.isin(tissues, LIVER_TISSUES)
    if not liver.any():
        return [], []
    bounds = ndimage.find_objects(liver.astype(np.uint8))[0]
    crop = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in bounds)
    grid = Grid(grid.z[crop[0]], grid.y[crop[1]], grid.x[crop[2]])
    depth = ndimage.distance_transform_edt(liver[crop], sampling=REFERENCE_MM)
    smallest = config.lesion_radius_mm[0]
    if radii is not None:
        smallest = min(smallest, config.multifocal_radius_mm[0])
    out, lesions = [], []
    for k in range(count):
        if radii is None:
            radius = float(np.exp(rng.uniform(*np.log(config.lesion_radius_mm))))
        else:
            radius = radii[k]
        radius = min(radius, float(depth.max() - margin) / 1.2)
        if radius < smallest:
            if radii is None:
                break
            continue
        candidates = np.flatnonzero(depth >= 1.2 * radius + margin - 1e-3)
        index = np.unravel_index(candidates[rng.integers(candidates.size)], depth.shape)
        center = np.array([grid.x[index[2]], grid.y[index[1]], grid.z[index[0]]], float)
        lesion = _draw_looks(Lesion(tuple(center), radius, 0.0, 0.0, multifocal=radii is not None),
                             rng, config, extra)
        lesions.append(lesion)
        out += _lesion_layers(Tissue.LESION + len(lesions) - 1, lesion, rng)
    return out, lesions


def _draw_looks(lesion: Lesion, rng, config: PhantomConfig, extra) -> Lesion:
    """Contrast, dark core, rim and border of ``lesion``: the classic draws from ``rng``, the
    others from ``extra``."""
    low, high = config.lesion_contrast_hu
    if config.lesion_contrast_normal_hu is None:
        contrast = rng.uniform(low, high)
    else:
        contrast = float(np.clip(extra.normal(*config.lesion_contrast_normal_hu), low, high))
    if config.core_darkening_hu is None:  # classic: half the lesions over 12 mm, within the range
        necrotic = lesion.radius > 12 and rng.uniform() < 0.5
        necrosis = rng.uniform(0, high - contrast) if necrotic else 0.0
    else:
        cored = lesion.radius >= CORE_MIN_RADIUS_MM and extra.uniform() < CORE_PROBABILITY
        necrosis = extra.uniform(*config.core_darkening_hu) if cored else 0.0
    hyperdense = extra.uniform() < config.hyperdense_probability
    rimmed = extra.uniform() < config.rim_probability
    blur = extra.uniform(*config.border_blur_mm)
    if hyperdense:  # e.g. haemorrhage or a hypervascular lesion: brighter than liver, no dark core
        contrast, necrosis = -extra.uniform(*config.hyperdense_hu), 0.0
    rim = rim_mm = 0.0
    if rimmed and not hyperdense and lesion.radius >= 3.0:
        rim, rim_mm = extra.uniform(*config.rim_hu), min(extra.uniform(1.0, 3.0), 0.4 * lesion.radius)
    return dataclasses.replace(lesion, contrast=float(contrast), necrosis=float(necrosis), rim=float(rim),
                               rim_mm=float(rim_mm), blur=float(blur))


def _shaping_liver(layers: list[Layer]) -> list[Layer]:
    """The layers that decide which voxels end up liver: all up to the liver's own, then
    those that may paint over liver."""
    first = next(i for i, layer in enumerate(layers) if layer.tissue == Tissue.LIVER)
    touches = lambda layer: layer.into is None or not set(layer.into).isdisjoint(LIVER_TISSUES)  # noqa: E731
    return layers[: first + 1] + [layer for layer in layers[first + 1 :] if touches(layer)]


def _lesion_layers(tissue: int, lesion: Lesion, rng) -> list[Layer]:
    """A lumpy ellipsoid, optionally darker in its centre, brighter at its rim, painted over
    liver only; a blurred border adds a halo of liver shaded towards the lesion around it."""
    axes = lesion.radius * np.array([1.0, *rng.uniform(0.75, 1.0, 2)])
    turn = rotation(*rng.uniform(0, 180, 3))
    lumps = SmoothField(rng, (lesion.radius, 3 * lesion.radius))

    def distance(c):
        lumpiness = np.float32(0.1 * lesion.radius) * np.clip(lumps(c), -1.5, 1.5)
        return ellipsoid(c, lesion.center, axes, turn) + lumpiness

    if lesion.rim == 0 and lesion.blur == 0:  # the classic lesion

        def shade(c):
            depth = np.clip(-distance(c) / lesion.radius, 0, 1)  # 0 at the rim, 1 at the centre
            return -np.float32(lesion.necrosis) * depth

    else:

        def shade(c):
            inside = -distance(c)  # mm from the border
            offset = -np.float32(lesion.necrosis) * np.clip(inside / lesion.radius, 0, 1)
            if lesion.rim:
                offset = offset + np.float32(lesion.rim) * (inside < lesion.rim_mm)
            if lesion.blur:  # half the contrast back at the border, none from ``blur`` mm in
                offset = offset + np.float32(0.5 * lesion.contrast) * np.clip(1 - inside / lesion.blur, 0, 1)
            return offset

    box = box_around(lesion.center, 1.2 * lesion.radius)
    layers = [Layer(tissue, lambda c: distance(c) < 0, box, into=LIVER_TISSUES, shade=shade)]
    if lesion.blur:

        def halo(c):
            return -np.float32(0.5 * lesion.contrast) * np.clip(1 - distance(c) / lesion.blur, 0, 1)

        outer = box_around(lesion.center, 1.2 * lesion.radius + lesion.blur)
        layers.append(Layer(Tissue.LIVER, lambda c: (distance(c) >= 0) & (distance(c) < lesion.blur), outer,
                            into=(Tissue.LIVER,), shade=halo))
    return layers
