"""Hypodense liver lesions: 0..several, a few mm to several cm, each wholly inside the liver."""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from .render import paint
from .shapes import Grid, Layer, SmoothField, box_around, ellipsoid, rotation
from .tissues import LESION_CONTRAST_HU, LIVER_TISSUES, MAX_LESIONS, Tissue

#: probability that a case has no lesion (LiTS has healthy livers too)
HEALTHY_FRACTION = 0.3
RADIUS_MM = (2.5, 40.0)
REFERENCE_MM = 2.5  # grid on which lesion centres are chosen, whatever the case's spacing


@dataclasses.dataclass
class Lesion:
    """Where a lesion is and how dark (its shape adds mild lumps to an ellipsoid of ``radius``)."""

    center: tuple[float, float, float]  # (X, Y, Z) mm, patient frame
    radius: float  # mm
    contrast: float  # HU below the liver mean (before the necrotic centre)
    necrosis: float  # extra HU darkening at the centre


def lesion_count(rng: np.random.Generator) -> int:
    """0 for about 30 % of cases, else 1, 2, ... (fewer more likely), at most 8."""
    if rng.uniform() < HEALTHY_FRACTION:
        return 0
    return int(min(rng.geometric(0.45), 8))


def place_lesions(
    layers: list[Layer], liver_box, rng: np.random.Generator, count: int, margin: float
) -> tuple[list[Layer], list[Lesion]]:
    """Choose lesions inside the liver that ``layers`` paint; return their layers (to paint
    after ``layers``) and descriptions. Each lesion keeps ``margin`` mm of liver around it."""
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
    out, lesions = [], []
    for k in range(count):
        radius = float(np.exp(rng.uniform(*np.log(RADIUS_MM))))
        radius = min(radius, float(depth.max() - margin) / 1.2)
        if radius < RADIUS_MM[0]:
            break
        candidates = np.flatnonzero(depth >= 1.2 * radius + margin - 1e-3)
        index = np.unravel_index(candidates[rng.integers(candidates.size)], depth.shape)
        center = np.array([grid.x[index[2]], grid.y[index[1]], grid.z[index[0]]], float)
        contrast = rng.uniform(*LESION_CONTRAST_HU)
        necrotic = radius > 12 and rng.uniform() < 0.5  # the total stays within the contrast range
        necrosis = rng.uniform(0, LESION_CONTRAST_HU[1] - contrast) if necrotic else 0.0
        lesions.append(Lesion(tuple(center), radius, contrast, necrosis))
        out.append(_lesion_layer(Tissue.LESION + k, lesions[-1], rng))
    return out, lesions


def _shaping_liver(layers: list[Layer]) -> list[Layer]:
    """The layers that decide which voxels end up liver: all up to the liver's own, then
    those that may paint over liver."""
    first = next(i for i, layer in enumerate(layers) if layer.tissue == Tissue.LIVER)
    touches = lambda layer: layer.into is None or not set(layer.into).isdisjoint(LIVER_TISSUES)  # noqa: E731
    return layers[: first + 1] + [layer for layer in layers[first + 1 :] if touches(layer)]


def _lesion_layer(tissue: int, lesion: Lesion, rng) -> Layer:
    """A lumpy ellipsoid, optionally darker in its centre, painted over liver only."""
    axes = lesion.radius * np.array([1.0, *rng.uniform(0.75, 1.0, 2)])
    turn = rotation(*rng.uniform(0, 180, 3))
    lumps = SmoothField(rng, (lesion.radius, 3 * lesion.radius))

    def distance(c):
        lumpiness = np.float32(0.1 * lesion.radius) * np.clip(lumps(c), -1.5, 1.5)
        return ellipsoid(c, lesion.center, axes, turn) + lumpiness

    def shade(c):
        depth = np.clip(-distance(c) / lesion.radius, 0, 1)  # 0 at the rim, 1 at the centre
        return -np.float32(lesion.necrosis) * depth

    box = box_around(lesion.center, 1.2 * lesion.radius)
    return Layer(tissue, lambda c: distance(c) < 0, box, into=LIVER_TISSUES, shade=shade)
