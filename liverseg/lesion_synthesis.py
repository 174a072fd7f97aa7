"""Synthetic liver lesions inserted into the liver of any training volume.

After Hu et al., CVPR 2023 ("Label-free liver tumor segmentation"): a lesion is an ellipsoid
of radius class 4, 8, 16 or 32 mm with random axis ratios and orientation, elastically
deformed, with a textured interior, a border blurred over 1–2 mm and 65–145 HU darker than
the liver; some are hyperdense (brighter than the liver) or rim-enhancing (a bright shell
around a dark interior). It works on phantoms and on real CT (LiTS) alike.

The model is additive::

    hu' = hu + w · (delta + texture)

``w`` in [0, 1] is the lesion's soft mask (1 inside, 0.5 on the border, 0 an edge width
outside; a smooth ramp of the radial distance to the deformed ellipsoid) times a liver
weight (1 inside the liver, 0.5 on its border voxels, 0 outside), so nothing outside the
liver changes. ``delta`` is the drawn contrast (negative: darker), plus the rim's
brightness in a shell of the rim's width; ``texture`` is Gaussian-blurred white noise
scaled to the drawn sd. Adding rather than replacing keeps the scan's own noise, grain and
enhancement pattern inside the lesion: on real CT its noise matches the surrounding liver,
on a phantom it carries the phantom's scanner noise. The label becomes lesion (2) where the
lesion's own mask is at least 0.5 *and* the input label is liver or lesion: never outside
the liver.

Centres are liver voxels at least ``centre_depth`` × radius from the liver border (the
deepest voxels when none is that deep: a large lesion in a small liver is clipped by the
liver), away from the lesions already placed where possible. All work is done in a box
around each lesion, and the liver depth on a grid of about 2 mm: measured on 2 busy CPU
cores, one to four lesions take 0.3–0.7 s in a 200×512×512 phantom (about 0.3 s of it the
copies, checks and depth map) and 10–20 ms in a 32×64×64 one. ``synthesis_rng`` makes a
volume's lesions a function of (seed, epoch, case): the same in every rerun, new for every
epoch number. The lesion stage's training (:func:`with_synthetic_copies`) cuts draws 1 …
``copies`` in advance, as extra training volumes; every epoch learns from all of them, or,
with ``per_epoch``, epoch ``e`` from the volumes and draw ``e % copies + 1`` only
(:func:`epoch_rows`).

``keep_existing=False`` (label-free training) first paints a volume's own lesions over with
liver: the liver's median HU plus noise of the liver's amplitude and grain.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import zlib
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from liverseg.config._base import Number, Pair, Section, setting
from liverseg.errors import InvalidDataError, SettingError, ShapeError
from liverseg.labels import LESION, LIVER

if TYPE_CHECKING:  # only for the annotations: datasets may import the config, which imports us
    from liverseg.datasets.base import Case

KINDS = HYPODENSE, HYPERDENSE, RIM = ("hypodense", "hyperdense", "rim")  # SyntheticLesion.kind
DEPTH_GRID_MM = 2.0  # placement depth is computed on a grid this coarse (cheap; placement needs no more)
CANDIDATES_TRIED = 32  # centres tried per lesion when looking for one that does not overlap the others


_HU = Pair(at_least=0, floats=True)  # a (low, high) HU range
_SIZES = Pair(above=0, floats=True)  # a (low, high) range of sizes > 0


@dataclasses.dataclass
class SynthesisConfig(Section):
    """How synthetic lesions are drawn (Hu et al., CVPR 2023, unless said otherwise).

    Attributes:
        copies: how many synthetic versions of each training volume the lesion networks
            learn from beside it (:func:`with_synthetic_copies`; draw ``k`` is "epoch" ``k``
            of :func:`synthesis_rng`).
        share: probability (0–1) that a training volume gets synthetic lesions in an epoch;
            0 switches synthesis off. Hu et al. synthesise in 90 % of the samples (0.9).
        keep_existing: ``True`` keeps a volume's own lesions; ``False`` first paints them over
            with liver-like HU and relabels them liver, so that only synthetic lesions are
            labelled (Hu et al.'s label-free training). Applies only to the volumes drawn.
        radius_classes_mm: the lesion radius classes (mm, each > 0); Hu et al.: tiny, small,
            medium, large = 4, 8, 16, 32 mm. Each lesion's class is drawn uniformly.
        radius_jitter: each lesion's radius is its class radius × U(1 − j, 1 + j); 0 ≤ j < 1.
        count: (least, most) lesions per volume that gets them, inclusive; 0 ≤ least ≤ most.
        elastic: largest radial deformation of the ellipsoid, as a fraction of its radius
            (0 ≤ e < 1). Hu et al. deform the mask elastically; we perturb the radius by a
            smooth random function of direction, which is cheaper and stays one blob.
        axis_ratio: (low, high) range of each semi-axis relative to the radius (before the
            three are rescaled to a geometric mean of 1, which keeps the volume of a sphere of
            the radius). Not in the brief's list: ellipsoids rather than spheres.
        centre_depth: a centre is at least this fraction of the radius (mm) from the liver
            border where the liver is deep enough (≥ 0).
        contrast_hu: (low, high) HU by which a hypodense (and a rim-enhancing) lesion's
            interior is darker than the liver; Hu et al. 65–145 HU.
        hyperdense_fraction: share of the lesions brighter than the liver (0–1).
        hyperdense_hu: (low, high) HU by which a hyperdense lesion is brighter than the liver.
        rim_fraction: share of the lesions with an enhancing rim (0–1; with
            ``hyperdense_fraction`` at most 1 in all; the rest are hypodense).
        rim_hu: (low, high) HU by which the rim is brighter than the lesion's interior.
        rim_mm: (low, high) rim width in mm (> 0), at most 0.4 × the lesion's radius.
        edge_mm: (low, high) width in mm over which the border fades from full contrast to
            none (partial volume); Hu et al. blur the border over 1–2 mm. 0: a sharp border.
        texture_hu: (low, high) sd in HU of the interior texture (blurred noise).
        texture_mm: correlation length (Gaussian sigma, mm, > 0) of the texture.
        repaint_margin_voxels: with ``keep_existing=False``, existing lesions are grown by
            this many voxels before being painted over, to cover their blurred borders (≥ 0).
        validation: the validation volumes get synthetic copies too (with ``share``), so that
            the lesion networks' early stopping and best epoch are chosen on lesions: a few
            validation patients may hold only a handful of lesion slices. Test volumes never.
        per_epoch: ``False``: every epoch learns from the volumes and all their ``copies``.
            ``True``: epoch ``e`` (from 0) learns from the volumes and draw
            ``e % copies + 1`` only (:func:`epoch_rows`), so with ``copies`` equal to the
            epoch budget every epoch meets lesions of its own, fixed by (seed, epoch, case)
            — Hu et al.'s on-the-fly synthesis, drawn in advance so that the tuner's ROI
            priors can be made once; validation volumes then get draw 1 alone.
    """

    share: float = setting(0.0, at_least=0, at_most=1)
    copies: int = setting(1, whole=True, at_least=1)
    keep_existing: bool = setting(True, flag=True)
    radius_classes_mm: tuple[float, ...] = setting((4.0, 8.0, 16.0, 32.0), nonempty=True,
                                                   items=Number(above=0, floats=True))
    radius_jitter: float = setting(0.25, at_least=0, below=1)
    count: tuple[int, int] = setting((1, 4), pair=Pair(at_least=0, whole=True))
    elastic: float = setting(0.2, at_least=0, below=1)
    axis_ratio: tuple[float, float] = setting((0.75, 1.25), pair=_SIZES)
    centre_depth: float = setting(0.6, at_least=0)
    contrast_hu: tuple[float, float] = setting((65.0, 145.0), pair=_HU)
    hyperdense_fraction: float = setting(0.1, at_least=0, at_most=1)
    hyperdense_hu: tuple[float, float] = setting((10.0, 40.0), pair=_HU)
    rim_fraction: float = setting(0.15, at_least=0, at_most=1)
    rim_hu: tuple[float, float] = setting((20.0, 60.0), pair=_HU)
    rim_mm: tuple[float, float] = setting((1.0, 3.0), pair=_SIZES)
    edge_mm: tuple[float, float] = setting((1.0, 2.0), pair=Pair(at_least=0, floats=True))
    texture_hu: tuple[float, float] = setting((5.0, 15.0), pair=_HU)
    texture_mm: float = setting(2.0, above=0)
    repaint_margin_voxels: int = setting(2, whole=True, at_least=0)
    validation: bool = setting(False, flag=True)
    per_epoch: bool = setting(False, flag=True)

    _section = "lesion.synthesis"

    def _check_across(self):
        if self.hyperdense_fraction + self.rim_fraction > 1:
            raise SettingError(f"lesion.synthesis.hyperdense_fraction + rim_fraction must be at "
                               f"most 1, got {self.hyperdense_fraction} + {self.rim_fraction}")


@dataclasses.dataclass
class SyntheticLesion:
    """One inserted lesion, as drawn (for logs, tests and the chapter's figures)."""

    center: tuple[int, int, int]  # voxel (z, y, x)
    radius_mm: float
    kind: str  # "hypodense" | "hyperdense" | "rim"
    contrast_hu: float  # signed change of the interior vs the liver (negative: darker)
    voxels: int  # voxels labelled lesion (inside the liver)
    rim_hu: float = 0.0  # rim-enhancing only: HU the rim is brighter than the interior
    rim_mm: float = 0.0  # rim-enhancing only: rim width
    edge_mm: float = 0.0  # width over which the border fades
    texture_hu: float = 0.0  # sd of the interior texture


def synthesis_rng(seed: int, epoch: int, case_id: str) -> np.random.Generator:
    """The random stream of one case in one epoch: ``default_rng([seed, epoch, crc32(case_id)])``.

    A function of (seed, epoch, case) only — not of the order cases are visited in, nor of
    the worker that loads them — so a rerun draws the same lesions and each epoch new ones.
    ``seed`` and ``epoch`` must be integers >= 0; ``case_id`` is hashed as UTF-8 (CRC-32).
    """
    if int(seed) < 0 or int(epoch) < 0:
        raise ValueError(f"seed and epoch must be >= 0, got seed={seed}, epoch={epoch}")
    return np.random.default_rng([int(seed), int(epoch), zlib.crc32(str(case_id).encode("utf-8"))])


COPY_MARK = "~synthetic"  # case id of a synthetic copy: "{case_id}~synthetic{k}"


def with_synthetic_copies(cases, seed: int, config: SynthesisConfig) -> list:
    """``cases`` followed by their synthetic copies: for each draw ``k = 1 … config.copies``
    and each case, :func:`synthesize_case` ``(case, seed, k, config)`` when it is drawn
    (``share``), with the case id ``{case_id}~synthetic{k}`` (:func:`source_case_id` gives
    the patient back, so a copy stays in its patient's fold). With ``share`` 0, ``cases``.

    The copies are drawn in advance, not while training as Hu et al. do (their on-the-fly
    draws beat a fixed set, 52.9 vs 43.5 % Dice): the lesion cascade's ROI priors are made
    once for its training slices, and slices new to an epoch would need new priors then.
    ``config.per_epoch`` gives each epoch its own draw out of these (:func:`epoch_rows`).
    """
    cases = list(cases)
    if not config.share:
        return cases
    copies = []
    for k in range(1, int(config.copies) + 1):
        for case in cases:
            synthetic, lesions = synthesize_case(case, seed, k, config)
            if lesions:
                synthetic = copy.copy(synthetic)
                synthetic.case_id = f"{case.case_id}{COPY_MARK}{k}"
                copies.append(synthetic)
    return cases + copies


def source_case_id(case_id: str) -> str:
    """The patient a (possibly synthetic) case id belongs to."""
    return str(case_id).split(COPY_MARK)[0]


def copy_number(case_id: str) -> int:
    """``k`` of a synthetic copy's case id ``{case_id}~synthetic{k}``; 0 for a volume's own."""
    _, mark, k = str(case_id).partition(COPY_MARK)
    return int(k) if mark else 0


def epoch_rows(case_ids: np.ndarray, copies: int, epoch: int,
               originals: bool = True) -> np.ndarray:
    """The rows an epoch learns from when drawn copies are read one per epoch (sorted int64
    indices into ``case_ids``): with ``originals``, every row of a volume's own and those of
    its draw ``epoch % copies + 1`` (``per_epoch`` synthetic lesions join the volume); without,
    the rows of draw ``epoch % (copies + 1)`` alone, the volume itself being draw 0 (appearance
    draws replace it: each epoch meets each patient once, in one appearance)."""
    if int(copies) < 1 or int(epoch) < 0:
        raise ValueError(f"copies must be >= 1 and epoch >= 0, got {copies} and {epoch}")
    number = np.array([copy_number(c) for c in np.asarray(case_ids).tolist()], dtype=np.int64)
    if not originals:
        return np.flatnonzero(number == int(epoch) % (int(copies) + 1)).astype(np.int64)
    return np.flatnonzero((number == 0) | (number == int(epoch) % int(copies) + 1)).astype(np.int64)


def synthesize_case(
    case: "Case", seed: int, epoch: int, config: SynthesisConfig
) -> tuple["Case", list[SyntheticLesion]]:
    """The case with synthetic lesions for this epoch, or the same case object unchanged.

    The first draw of :func:`synthesis_rng` ``(seed, epoch, case.case_id)`` decides, with
    probability ``config.share``, whether the case gets lesions; :func:`insert_lesions` then
    draws them from the same stream. A case that is not drawn, has no label or no liver is
    returned as is, with ``[]`` (``keep_existing=False`` paints over existing lesions only in
    the volumes drawn). Otherwise a new ``Case`` (a shallow copy: ``case_id`` and any other
    field shared) with a new :class:`~liverseg.io.Volume` of the same geometry and metadata,
    float32 HU, and the new uint8 label. Errors: as :func:`insert_lesions`.
    """
    rng = synthesis_rng(seed, epoch, case.case_id)
    if rng.uniform() >= config.share or case.label is None or not (case.label >= LIVER).any():
        return case, []
    hu, label, lesions = insert_lesions(case.image.array, case.label, case.image.spacing, rng, config,
                                        source=case.image.path or case.case_id)
    # a shallow copy, not dataclasses.replace, which would re-validate the label (np.unique:
    # about 0.5 s on a 200×512×512 volume)
    synthesized = copy.copy(case)
    synthesized.image = dataclasses.replace(case.image, array=hu)
    synthesized.label = label
    return synthesized, lesions


def insert_lesions(
    hu: np.ndarray, label: np.ndarray, spacing, rng: np.random.Generator, config: SynthesisConfig,
    *, source: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, list[SyntheticLesion]]:
    """Insert ``config.count`` synthetic lesions into the liver of one volume.

    Args:
        hu: ``(z, y, x)`` HU, any real dtype, finite.
        label: same shape, 0 background / 1 liver / 2 lesion.
        spacing: ``(z, y, x)`` voxel size in mm, each finite and > 0.
        rng: the stream every draw comes from (see :func:`synthesis_rng`).
        config: the :class:`SynthesisConfig`.
        source: the file or case named in error messages.

    Returns:
        new arrays (the inputs are untouched): float32 HU, uint8 label, and the lesions drawn.
        An empty liver cannot host lesions: copies of the inputs and ``[]``.

    Raises:
        ShapeError: ``hu`` is not 3-D, ``label`` has another shape, ``spacing`` is not 3 values.
        InvalidDataError: NaN or infinite HU, label values outside {0, 1, 2}, spacing <= 0.
    """
    spacing = _checked_inputs(hu, label, spacing, source)
    hu = np.array(hu, dtype=np.float32)
    label = np.array(label, dtype=np.uint8)
    liver = label >= LIVER
    if not liver.any():
        return hu, label, []
    if not config.keep_existing:
        _paint_over_lesions(hu, label, liver, config.repaint_margin_voxels, rng)
    placement = _Placement(liver, spacing)
    lesions = []
    for _ in range(int(rng.integers(config.count[0], config.count[1] + 1))):
        lesions.append(_insert_one(hu, label, liver, spacing, placement, rng, config))
    return hu, label, lesions


def _checked_inputs(hu, label, spacing, source) -> np.ndarray:
    """Raise the project's errors for unusable inputs; return the spacing as a float array."""
    hu, label = np.asarray(hu), np.asarray(label)
    if hu.ndim != 3:
        raise ShapeError(f"hu must be a (z, y, x) volume, got shape {hu.shape}", source)
    if label.shape != hu.shape:
        raise ShapeError(f"label shape {label.shape} differs from hu shape {hu.shape}", source)
    spacing = np.asarray(spacing, dtype=float)
    if spacing.shape != (3,):
        raise ShapeError(f"spacing must be 3 values (z, y, x) in mm, got {spacing.tolist()}", source)
    if not (np.isfinite(spacing).all() and (spacing > 0).all()):
        raise InvalidDataError(f"spacing must be finite and > 0 mm, got {spacing.tolist()}", source)
    if not np.isfinite(hu).all():
        raise InvalidDataError(f"hu has {int((~np.isfinite(hu)).sum())} NaN or infinite voxels", source)
    if label.size and (label.min() < 0 or label.max() > LESION):
        values = f"{label.min()}..{label.max()}"
        raise InvalidDataError(f"label values must be within {{0, 1, 2}}, got {values}", source)
    return spacing


# --- existing lesions painted over (keep_existing=False) -------------------------------------------


def _paint_over_lesions(hu: np.ndarray, label: np.ndarray, liver: np.ndarray, margin: int, rng) -> None:
    """Give existing lesions liver-like HU and the liver label, in place.

    The lesion, grown by ``margin`` voxels (its blurred border) within the liver, gets the
    median HU of the rest of the liver plus noise with the liver's amplitude and grain
    (:func:`_liver_look`). The liver's slow changes (enhancement gradients, vessels) are not
    copied: at the lesion's scale the patch is a little flatter than the liver around it.
    """
    existing = label == LESION
    if not existing.any():
        return
    box = _bounding_box(liver, pad=1)
    liver_box, existing_box = liver[box], existing[box]
    grown = ndimage.binary_dilation(existing_box, iterations=margin) & liver_box if margin else existing_box
    clean = liver_box & ~grown
    look = _liver_look(hu[box], clean) if clean.any() else FALLBACK_LIVER
    patch = _bounding_box(grown)
    hu_patch, grown_patch = hu[box][patch], grown[patch]
    hu_patch[grown_patch] = look.level + _liver_like_noise(grown_patch.shape, look, rng)[grown_patch]
    label[box][existing_box] = LIVER


@dataclasses.dataclass(frozen=True)
class _LiverLook:
    """What a patch of liver looks like at the voxel scale."""

    level: float  # median HU
    noise_sd: float  # robust sd (HU) of the liver's in-plane high-pass (:func:`_high_pass`)
    grain: float  # in-plane Gaussian sigma (voxels) of white noise blurred to the liver's grain


FALLBACK_LIVER = _LiverLook(110.0, 10.0, 1.0)  # for a liver that is all lesion: enhanced liver, 10 HU noise
GRAINS = tuple(np.arange(0.0, 3.01, 0.25))  # the grains (voxels) :func:`_liver_look` chooses from


def _high_pass(slices: np.ndarray) -> np.ndarray:
    """Each slice minus its in-plane Gaussian blur (sigma 2 voxels): the noise, not the anatomy."""
    return slices - ndimage.gaussian_filter(slices, (0, 2, 2))


def _liver_look(hu: np.ndarray, clean: np.ndarray, slices: int = 16) -> _LiverLook:
    """The :class:`_LiverLook` of the voxels ``clean`` of ``hu``.

    From at most ``slices`` evenly spaced slices holding clean liver (plenty, and cheap), away
    from its edges: the robust sd (1.4826 × MAD) of their high-pass, and the grain whose
    blurred white noise has the same neighbour-to-neighbour correlation after the same
    high-pass (CT noise is grainy, not white: the reconstruction kernel correlates
    neighbouring voxels in-plane).
    """
    holding = np.flatnonzero(clean.any(axis=(1, 2)))
    chosen = holding[np.linspace(0, holding.size - 1, min(slices, holding.size)).astype(int)]
    high, mask = _high_pass(hu[chosen].astype(np.float32)), _away_from_edges(clean[chosen])
    values = high[mask]
    centre = np.median(values)
    sd = 1.4826 * float(np.median(np.abs(values - centre)))
    correlation = _neighbour_correlation(np.clip(high, centre - 3 * sd, centre + 3 * sd), mask)
    grain = min(GRAINS, key=lambda g: abs(_blurred_noise_statistics(g)[0] - correlation))
    return _LiverLook(float(np.median(hu[clean])), sd, float(grain))


def _away_from_edges(mask: np.ndarray, voxels: int = 4) -> np.ndarray:
    """``mask`` eroded in-plane by ``voxels`` (beyond the high-pass's reach of other tissue),
    or ``mask`` itself when nothing would be left."""
    inner = ndimage.binary_erosion(mask, structure=np.ones((1, 3, 3), bool), iterations=voxels)
    return inner if inner.sum() >= 100 else mask


def _neighbour_correlation(field: np.ndarray, mask: np.ndarray) -> float:
    """Correlation of ``field`` between in-plane neighbours (along x) that are both in ``mask``."""
    pairs = mask[..., :-1] & mask[..., 1:]
    if pairs.sum() < 3:
        return 0.0
    left, right = field[..., :-1][pairs], field[..., 1:][pairs]
    if left.std() == 0 or right.std() == 0:
        return 0.0
    return float(np.corrcoef(left, right)[0, 1])


@functools.lru_cache(maxsize=None)
def _blurred_noise_statistics(grain: float) -> tuple[float, float]:
    """(neighbour correlation, sd) of the high-pass of unit white noise blurred in-plane by
    ``grain`` voxels: measured once on a fixed sample, as the formulas are not worth it."""
    noise = np.random.default_rng(0).standard_normal((4, 96, 96)).astype(np.float32)
    high = _high_pass(ndimage.gaussian_filter(noise, (0, grain, grain)))[:, 8:-8, 8:-8]
    return _neighbour_correlation(high, np.ones(high.shape, bool)), float(high.std())


def _liver_like_noise(shape, look: _LiverLook, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean noise of ``look``'s grain whose high-pass has ``look``'s sd."""
    white = rng.standard_normal(shape, dtype=np.float32)
    noise = ndimage.gaussian_filter(white, (0, look.grain, look.grain))
    return noise * np.float32(look.noise_sd / _blurred_noise_statistics(look.grain)[1])


def _bounding_box(mask: np.ndarray, pad: int = 0) -> tuple[slice, slice, slice]:
    """The slices of ``mask``'s bounding box (non-empty mask), grown by ``pad`` voxels.

    Projections (``any`` over two axes) rather than ``ndimage.find_objects``: 30× faster on
    a 512×512 volume, as only the liver's slices are scanned in-plane.
    """
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    within = mask[slices[0]:slices[-1] + 1]
    bounds = [(slices[0], slices[-1])] + [
        (hits[0], hits[-1]) for hits in (np.flatnonzero(within.any(axis=axes)) for axes in ((0, 2), (0, 1)))
    ]
    return tuple(slice(max(int(low) - pad, 0), min(int(high) + 1 + pad, n))
                 for (low, high), n in zip(bounds, mask.shape))


# --- where lesions go -------------------------------------------------------------------------------


class _Placement:
    """Liver depth (mm to the liver border) on a ~2 mm grid, computed once per volume, and
    the centres already taken."""

    def __init__(self, liver: np.ndarray, spacing: np.ndarray):
        self.step = np.maximum(1, np.round(DEPTH_GRID_MM / spacing)).astype(int)
        box = _bounding_box(liver)
        self.origin = np.array([s.start for s in box])
        coarse = liver[tuple(slice(s.start, s.stop, k) for s, k in zip(box, self.step))]
        if not coarse.any():  # a liver so thin that the coarse grid misses it: use every voxel
            self.step[:] = 1
            coarse = liver[box]
        # padded with background, so that the edge of the scan counts as liver border too
        padded = np.pad(coarse, 1)
        self.depth = ndimage.distance_transform_edt(padded, sampling=spacing * self.step)[1:-1, 1:-1, 1:-1]
        self.spacing = spacing
        self.taken: list[tuple[np.ndarray, float]] = []  # (centre in mm, radius)

    def choose(self, radius: float, depth_fraction: float, rng: np.random.Generator) -> tuple[int, int, int]:
        """A liver voxel at least ``depth_fraction × radius`` mm deep (else among the deepest),
        clear of the lesions already placed where any tried candidate is."""
        threshold = min(depth_fraction * radius, float(self.depth.max()))
        candidates = np.flatnonzero((self.depth >= threshold) & (self.depth > 0))  # depth 0: not liver
        tried = rng.choice(candidates, size=min(CANDIDATES_TRIED, candidates.size), replace=False)
        voxels = self.origin + np.stack(np.unravel_index(tried, self.depth.shape), axis=1) * self.step
        clearance = np.full(len(voxels), np.inf)
        for centre_mm, other in self.taken:
            distance = np.linalg.norm(voxels * self.spacing - centre_mm, axis=1)
            clearance = np.minimum(clearance, distance - other - radius)
        best = int(np.argmax(clearance >= 0)) if (clearance >= 0).any() else int(np.argmax(clearance))
        self.taken.append((voxels[best] * self.spacing, radius))
        return tuple(int(v) for v in voxels[best])


# --- one lesion -------------------------------------------------------------------------------------


@dataclasses.dataclass
class _LesionLook:
    """What one lesion looks like: its drawn kind, radius and HU."""

    kind: str
    radius_mm: float
    delta_hu: float  # interior vs liver
    rim_hu: float
    rim_mm: float
    edge_mm: float
    texture_hu: float


def _draw_lesion_look(rng: np.random.Generator, config: SynthesisConfig) -> _LesionLook:
    """A radius class drawn uniformly and jittered; then the kind and its HU."""
    jitter = config.radius_jitter
    radius = float(rng.choice(config.radius_classes_mm)) * rng.uniform(1 - jitter, 1 + jitter)
    u = rng.uniform()
    if u < config.hyperdense_fraction:
        kind = HYPERDENSE
    else:
        kind = RIM if u < config.hyperdense_fraction + config.rim_fraction else HYPODENSE
    delta = rng.uniform(*config.hyperdense_hu) if kind == HYPERDENSE else -rng.uniform(*config.contrast_hu)
    rim_hu = rim_mm = 0.0
    if kind == RIM:  # the rim stays a shell: at most 0.4 × the radius wide
        rim_hu, rim_mm = rng.uniform(*config.rim_hu), min(rng.uniform(*config.rim_mm), 0.4 * radius)
    return _LesionLook(kind, float(radius), float(delta), float(rim_hu), float(rim_mm),
                       float(rng.uniform(*config.edge_mm)), float(rng.uniform(*config.texture_hu)))


def _insert_one(hu, label, liver, spacing, placement: _Placement, rng, config) -> SyntheticLesion:
    """Draw one lesion, place it, and add it to ``hu`` and ``label`` in place:
    ``hu += w · (delta + texture)`` in a box around it, label 2 where its mask is ≥ 0.5."""
    look = _draw_lesion_look(rng, config)
    shape = _Shape.draw(look.radius_mm, config, rng)
    centre = placement.choose(look.radius_mm, config.centre_depth, rng)
    box = _box_around(centre, shape.extent_mm() + look.edge_mm + 2 * spacing.max(), spacing, hu.shape)
    distance = shape.signed_distance(_offsets_mm(box, centre, spacing))
    inside_liver = liver[box]
    lesion_w = _soft_mask(distance, look.edge_mm)
    change = look.delta_hu + _texture(lesion_w.shape, spacing, config.texture_mm, look.texture_hu, rng)
    if look.rim_hu:  # brighter in the outer shell, fading into the interior over the edge width
        change += look.rim_hu * _soft_mask(-distance - look.rim_mm, look.edge_mm)
    hu[box] += lesion_w * _liver_weight(inside_liver) * change
    labelled = (distance <= 0) & inside_liver  # where lesion_w >= 0.5
    label[box][labelled] = LESION
    return SyntheticLesion(centre, look.radius_mm, look.kind, look.delta_hu, int(labelled.sum()),
                           look.rim_hu, look.rim_mm, look.edge_mm, look.texture_hu)


@dataclasses.dataclass
class _Shape:
    """A deformed ellipsoid: semi-axes (mm) along the columns of ``rotation``, whose radius in
    each direction is scaled by ``1 + elastic × f(direction)``, ``f`` a smooth random function
    in [−1, 1] (a few random plane waves on the unit sphere)."""

    axes_mm: np.ndarray  # (3,)
    rotation: np.ndarray  # (3, 3) orthonormal, world (z, y, x) → lesion frame by its transpose
    elastic: float
    wave_directions: np.ndarray  # (K, 3) unit vectors
    wave_numbers: np.ndarray  # (K,) 1 or 2: how many bumps across the sphere
    wave_phases: np.ndarray  # (K,)
    wave_weights: np.ndarray  # (K,), sum of |w| = 1, so that |f| <= 1

    @classmethod
    def draw(cls, radius: float, config: SynthesisConfig, rng, waves: int = 5) -> "_Shape":
        """Axis ratios, orientation and ``waves`` plane waves of the deformation, from ``rng``."""
        ratios = rng.uniform(*config.axis_ratio, size=3)
        ratios /= np.prod(ratios) ** (1 / 3)  # the volume of a sphere of ``radius``
        q, r = np.linalg.qr(rng.standard_normal((3, 3)))
        rotation = q * np.sign(np.diag(r))  # a uniformly random orientation
        directions = rng.standard_normal((waves, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        weights = rng.standard_normal(waves)
        numbers = rng.integers(1, 3, size=waves).astype(float)
        phases = rng.uniform(0, 2 * np.pi, size=waves)
        return cls(radius * ratios, rotation, config.elastic, directions, numbers, phases,
                   weights / np.abs(weights).sum())

    def extent_mm(self) -> np.ndarray:
        """Half-size (z, y, x) in mm of a box that holds the deformed ellipsoid."""
        return (1 + self.elastic) * np.sqrt(((self.rotation * self.axes_mm) ** 2).sum(axis=1))

    def signed_distance(self, offsets) -> np.ndarray:
        """Distance in mm along the ray from the centre to the surface: negative inside.

        ``offsets``: broadcastable (z, y, x) mm offsets from the centre. A point at
        normalised radius ρ (1 on the undeformed ellipsoid) in direction n lies
        ``|p| (1 − R(n) / ρ)`` from the surface ``ρ = R(n) = 1 + elastic · f(n)``.
        """
        local = [sum(np.float32(self.rotation[i, j]) * offsets[i] for i in range(3)) for j in range(3)]
        scaled = [local[j] / np.float32(self.axes_mm[j]) for j in range(3)]
        rho = np.sqrt(scaled[0] ** 2 + scaled[1] ** 2 + scaled[2] ** 2) + np.float32(1e-6)
        bump = np.zeros_like(rho)
        waves = zip(self.wave_directions, self.wave_numbers, self.wave_phases, self.wave_weights)
        for direction, number, phase, weight in waves:
            along = sum(np.float32(direction[j]) * scaled[j] for j in range(3)) / rho
            bump += np.float32(weight) * np.cos(np.float32(np.pi * number) * along + np.float32(phase))
        length = np.sqrt(local[0] ** 2 + local[1] ** 2 + local[2] ** 2)
        return length * (1 - (1 + np.float32(self.elastic) * bump) / rho)


def _box_around(centre, half_mm, spacing, shape) -> tuple[slice, slice, slice]:
    """The voxel box of half-size ``half_mm`` (z, y, x) around ``centre``, clipped to ``shape``."""
    half = np.ceil(np.asarray(half_mm) / spacing).astype(int)
    return tuple(slice(max(c - h, 0), min(c + h + 1, n)) for c, h, n in zip(centre, half, shape))


def _offsets_mm(box, centre, spacing) -> list[np.ndarray]:
    """Open-grid (z, y, x) offsets in mm of the box's voxels from ``centre``."""
    grids = []
    for axis, (window, c, s) in enumerate(zip(box, centre, spacing)):
        shape = [1, 1, 1]
        shape[axis] = window.stop - window.start
        grids.append(((np.arange(window.start, window.stop) - c) * s).astype(np.float32).reshape(shape))
    return grids


def _soft_mask(distance: np.ndarray, edge_mm: float) -> np.ndarray:
    """1 inside, 0.5 on the surface, 0 outside, with a smoothstep over ``edge_mm`` across it."""
    if edge_mm <= 0:
        return (distance <= 0).astype(np.float32)
    t = np.clip(np.float32(0.5) - distance / np.float32(edge_mm), 0, 1)
    return t * t * (3 - 2 * t)


def _liver_weight(liver: np.ndarray) -> np.ndarray:
    """1 inside the liver, 0.5 on its border voxels (partial volume), 0 outside."""
    interior = ndimage.binary_erosion(liver, border_value=1)
    return (np.float32(0.5) * liver + np.float32(0.5) * interior).astype(np.float32)


def _texture(shape, spacing, correlation_mm: float, sd_hu: float, rng) -> np.ndarray:
    """Zero-mean noise of sd ``sd_hu``, Gaussian-blurred to ``correlation_mm`` (sigma)."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), correlation_mm / spacing)
    noise -= noise.mean()
    spread = float(noise.std())
    return noise * np.float32(sd_hu / spread) if spread > 0 else noise
