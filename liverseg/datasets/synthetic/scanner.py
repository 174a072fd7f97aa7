"""The scanner's side of a phantom: contrast phase, noise, slice profile, streaks and metal.

What a scan looks like beyond its grid (:mod:`.acquisition`) and its tissues' CT numbers
(:mod:`.tissues`), drawn per case within the ranges of :class:`liverseg.config.PhantomConfig`,
each concern from its own random stream, so that switching one on or off changes neither the
patient nor the other draws:

- noise: white Gaussian noise filtered in-plane by a Gaussian of the drawn correlation length
  (mm, turned into voxels by the spacing) and rescaled to the drawn sigma
  (:func:`.render.unit_noise`), or to the sigma of a clinical matrix averaged to the phantom's
  (:func:`pixel_noise`); successive slices are uncorrelated, as non-overlapping
  reconstructions are;
- slice profile (partial volume along z): a Gaussian whose FWHM is the drawn slice thickness;
- beam-hardening streaks: a few thin straight bands through the vertebral body, mostly dark,
  fading with the distance, in the slices that hold dense bone;
- metal: a surgical clip beside the liver or a pair of pedicle screws in a vertebra, at a
  saturating CT number (2500 HU up to the 3071 ceiling of 12-bit CT), blooming over its
  neighbours, with strong bright and dark streaks in its own slices.

Streaks and metal are drawn into the image only: the tissue map and the label never change.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from scipy import ndimage

from liverseg.config import PhantomConfig

from .acquisition import Acquisition
from .anatomy import Frame
from .shapes import Grid, segment_distance, tube_box
from .tissues import LIVER_TISSUES, Tissue

FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))
CLASSIC_GRAIN_VOXELS = 0.6  # in-plane noise grain of the classic phantoms, whatever the spacing
CLASSIC_SLICE_SIGMA = 0.45  # their slice profile: about one slice spacing (FWHM 1.06 voxels)
METAL_HU = (2500.0, 3071.0)
DENSE_BONE = (Tissue.CORTEX, Tissue.BONE)


def draw_phase(u: float, config: PhantomConfig) -> str:
    """The contrast phase for ``u`` (uniform in [0, 1)): the first whose cumulative weight exceeds it."""
    for phase, edge in zip(config.phases, np.cumsum(config.phase_weights)):
        if u < edge:
            return phase
    return config.phases[-1]


def noise_grain(rng: np.random.Generator, config: PhantomConfig, spacing) -> tuple[float, tuple]:
    """The noise's correlation length (mm) and the Gaussian (voxels per axis) that filters it."""
    _, sy, sx = spacing
    if config.noise_correlation_mm is None:
        return CLASSIC_GRAIN_VOXELS * sy, (0.0, CLASSIC_GRAIN_VOXELS, CLASSIC_GRAIN_VOXELS)
    length = float(rng.uniform(*config.noise_correlation_mm))
    return length, (0.0, length / sy, length / sx)


def pixel_noise(noise_hu: float, config: PhantomConfig, acquisition: Acquisition) -> float:
    """The noise sd (HU) of one of the phantom's pixels for a drawn ``noise_hu``: the same with
    ``config.noise_matrix`` unset, else that of a ``noise_matrix`` scan averaged (or split) to the
    phantom's in-plane matrix, ``noise_hu × matrix / noise_matrix``."""
    if config.noise_matrix is None:
        return noise_hu
    return noise_hu * acquisition.shape[2] / config.noise_matrix


def slice_sigma(config: PhantomConfig, acquisition: Acquisition) -> float:
    """The slice profile along z as a Gaussian sigma in voxels (:func:`.render.render_hu`)."""
    if config.slice_profile == "spacing":
        return CLASSIC_SLICE_SIGMA
    if config.slice_profile == "none":
        return 0.0
    return acquisition.thickness / FWHM_PER_SIGMA / acquisition.spacing[0]


@dataclasses.dataclass(frozen=True)
class Streaks:
    """Thin straight bands through a dense source, the same in each affected axial slice."""

    center: tuple[float, float]  # (X, Y) mm, patient frame
    angles: tuple[float, ...]  # radians, in the axial plane
    amplitudes: tuple[float, ...]  # HU of each band before it fades (negative: dark)
    width_mm: float  # Gaussian sigma of a band's cross-section
    start_mm: float  # the bands rise over the source's own size...
    reach_mm: float  # ... and fade by 1/e over this distance

    def pattern(self, grid: Grid) -> np.ndarray:
        """The bands on an axial slice of ``grid``: float32 ``(y, x)`` HU offsets."""
        dx = (grid.x - np.float32(self.center[0]))[None, :]
        dy = (grid.y - np.float32(self.center[1]))[:, None]
        width = np.float32(max(self.width_mm, 0.5 * _step(grid.x, self.width_mm)))  # visible on coarse grids
        total = np.zeros((grid.y.size, grid.x.size), np.float32)
        for angle, amplitude in zip(self.angles, self.amplitudes):
            across = dx * np.float32(math.sin(angle)) - dy * np.float32(math.cos(angle))
            total += np.float32(amplitude) * np.exp(-0.5 * (across / width) ** 2)
        r2 = dx**2 + dy**2
        rise = -np.expm1(-r2 / np.float32(self.start_mm**2))
        return total * rise * np.exp(-np.sqrt(r2) / np.float32(self.reach_mm))


@dataclasses.dataclass(frozen=True)
class Metal:
    """Rods of metal: a surgical ``"clip"`` beside the liver or two pedicle ``"screws"``."""

    kind: str
    pieces: tuple  # ((X, Y, Z), (X, Y, Z)) mm ends of each rod
    radius_mm: float
    hu: float
    streaks: Streaks


def draw_streaks(rng: np.random.Generator, config: PhantomConfig, frame: Frame) -> Streaks | None:
    """Beam-hardening streaks through the vertebral body, with ``config.streak_probability``."""
    if not rng.uniform() < config.streak_probability:
        return None
    count = int(rng.integers(2, 7))
    signs = np.where(rng.uniform(size=count) < 0.75, -1.0, 1.0)  # beam hardening darkens, mostly
    return Streaks(
        center=(0.0, float(frame.spine_y)),
        angles=tuple(float(a) for a in rng.uniform(0, np.pi, count)),
        amplitudes=tuple(float(a) for a in signs * rng.uniform(*config.streak_hu, count)),
        width_mm=float(rng.uniform(0.6, 2.0)),
        start_mm=22.0 * frame.size,
        reach_mm=float(rng.uniform(80, 250)),
    )


def draw_metal(
    rng: np.random.Generator, config: PhantomConfig, frame: Frame, tissues: np.ndarray, grid: Grid
) -> Metal | None:
    """Metal in the scanned slab, with ``config.metal_probability``: half the time a clip (2–5 mm
    wide, 4–9 mm long) in the fat against the liver, else pedicle screws (5–7 mm wide) converging
    from the vertebral arch into the vertebral body; a clip falls back to screws when no fat
    touches the liver."""
    if not rng.uniform() < config.metal_probability:
        return None
    spot = _beside_liver(rng, tissues, grid) if rng.uniform() < 0.5 else None
    if spot is not None:
        direction = rng.normal(size=3)
        direction *= rng.uniform(2.0, 4.5) / np.linalg.norm(direction)
        pieces = ((tuple(spot - direction), tuple(spot + direction)),)
        kind, radius = "clip", float(rng.uniform(1.0, 2.5))
    else:
        s, y0, z = frame.size, frame.spine_y, float(rng.uniform(grid.z[0], grid.z[-1]))
        pieces = tuple(((side * 20 * s, y0 + 30 * s, z), (side * 6 * s, y0 - 10 * s, z + rng.uniform(-3, 3)))
                       for side in (-1, 1))  # from the vertebral arch into the body, converging
        kind, radius = "screws", float(rng.uniform(2.5, 3.5))
    pieces = tuple(tuple(tuple(float(v) for v in end) for end in piece) for piece in pieces)
    center = np.mean([end for piece in pieces for end in piece], axis=0)
    count = int(rng.integers(6, 16))
    signs = np.where(rng.uniform(size=count) < 0.5, -1.0, 1.0)
    streaks = Streaks(
        center=(float(center[0]), float(center[1])),
        angles=tuple(float(a) for a in rng.uniform(0, np.pi, count)),
        amplitudes=tuple(float(a) for a in signs * rng.uniform(*config.metal_streak_hu, count)),
        width_mm=float(rng.uniform(0.8, 2.5)),
        start_mm=radius + 2.0,
        reach_mm=float(rng.uniform(60, 200)),
    )
    return Metal(kind, pieces, radius, float(rng.uniform(*METAL_HU)), streaks)


def add_artefacts(
    image: np.ndarray, grid: Grid, tissues: np.ndarray, frame: Frame,
    streaks: Streaks | None, metal: Metal | None,
) -> None:
    """Add beam-hardening ``streaks`` and ``metal`` (with its streaks) to ``image``, in place."""
    if streaks is not None:
        add_streaks(image, streaks.pattern(grid), _bone_per_slice(tissues, grid, frame))
    if metal is not None:
        add_streaks(image, metal.streaks.pattern(grid), add_metal(image, grid, tissues, metal))


def add_streaks(image: np.ndarray, pattern: np.ndarray, weights: np.ndarray) -> None:
    """Add ``pattern`` (``(y, x)``) to each slice ``k`` of ``image``, times ``weights[k]``."""
    for k in np.flatnonzero(weights > 0.01):
        image[k] += np.float32(weights[k]) * pattern


def add_metal(image: np.ndarray, grid: Grid, tissues: np.ndarray, metal: Metal) -> np.ndarray:
    """Paint ``metal`` into ``image`` (never over liver or lesion voxels; at least one voxel),
    blooming over its neighbours; return how much of it each slice holds (0..1)."""
    ends = [end for piece in metal.pieces for end in piece]
    pad = metal.radius_mm + 2 * max(_step(grid.y, 1.0), _step(grid.x, 1.0), _step(grid.z, 1.0))
    weights = np.zeros(grid.z.size, np.float32)
    window = grid.window(tube_box(ends, [pad]))
    if window is None:
        return weights
    c = grid.coords(window)
    distance = functools.reduce(np.minimum, (segment_distance(c, p0, p1)[0] for p0, p1 in metal.pieces))
    distance = np.broadcast_to(distance, image[window].shape)
    mask = (distance < metal.radius_mm) & ~_liver_like(tissues[window])
    if not mask.any():  # thinner than a voxel: the nearest voxel reads as metal
        mask = np.zeros(distance.shape, bool)
        mask.flat[np.argmin(distance)] = True
    bloom = np.minimum(np.maximum(mask, 2 * ndimage.gaussian_filter(mask.astype(np.float32), 1.0)), 1)
    region = image[window]
    np.maximum(region, np.float32(metal.hu) * bloom, out=region)
    per_slice = mask.sum(axis=(1, 2)).astype(np.float32)
    weights[window[0]] = per_slice / per_slice.max()
    return weights


def _bone_per_slice(tissues: np.ndarray, grid: Grid, frame: Frame) -> np.ndarray:
    """How much dense spine each slice holds (0..1): where the beam hardens."""
    s, y0 = frame.size, frame.spine_y
    window = grid.window(((-np.inf, np.inf), (y0 - 25 * s, y0 + 60 * s), (-45 * s, 45 * s)))
    weights = np.zeros(grid.z.size, np.float32)
    if window is not None:
        counts = np.isin(tissues[window], DENSE_BONE).sum(axis=(1, 2)).astype(np.float32)
        weights[window[0]] = counts / max(float(counts.max()), 1.0)
    return weights


def _beside_liver(rng: np.random.Generator, tissues: np.ndarray, grid: Grid) -> np.ndarray | None:
    """(X, Y, Z) mm of a random fat voxel touching the liver, looked for every ~4 mm; ``None`` if none."""
    steps = np.array([max(1, int(round(4.0 / _step(axis, 4.0)))) for axis in (grid.z, grid.y, grid.x)])
    sub = tissues[:: steps[0], :: steps[1], :: steps[2]]
    spots = np.argwhere(ndimage.binary_dilation(_liver_like(sub)) & (sub == Tissue.VISCERAL_FAT))
    if not len(spots):
        return None
    k, j, i = spots[rng.integers(len(spots))] * steps
    return np.array([grid.x[i], grid.y[j], grid.z[k]], float)


def _liver_like(tissues: np.ndarray) -> np.ndarray:
    return np.isin(tissues, LIVER_TISSUES) | (tissues >= Tissue.LESION)


def _step(axis: np.ndarray, default: float) -> float:
    """Spacing (mm) of a grid axis; ``default`` for a single voxel."""
    return float(axis[1] - axis[0]) if axis.size > 1 else default
