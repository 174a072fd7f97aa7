"""Random zooms, turns and shifts of training slices: the same for image, prior and label.

A network trained on a few phantoms sees livers of a few sizes, always upright and near the
same place in the slice. Real scans frame the patient otherwise: a smaller field of view
makes the liver larger, a patient lies turned or off centre. SynthSeg (Billot et al., MedIA
2023) trains on every image under a random affine (scaling ±15 %, rotation ±15°) beside its
random appearance, and issue 17 asks for the same beside ours
(:mod:`liverseg.datasets.synthetic.appearance`). The paper names no augmentation, so
:class:`SpatialConfig` (``train.spatial``) is off by default.

Beside the affine, ``elastic`` bends each warped slice by a smooth random displacement (SynthSeg's
nonlinear deformation): a coarse grid of random control-point moves, upsampled with cubic
splines, so that a lobe bulges or thins rather than the whole liver scaling. Off (0) by default.

A warped row keeps its shape: ``zoom`` above 1 shows a part of the slice larger (what leaves
the slice is lost), below 1 the whole slice smaller, its border continued outwards from the
edge pixels (``scipy.ndimage``'s ``"nearest"`` mode, which keeps the image's edge tissue
rather than painting a value the z-scored slices never hold). Images are interpolated
linearly, labels and ROI priors by their nearest pixel, so they stay 0/1/2 and 0/1.

Every row of a training batch draws its own warp from ``(seed, epoch, batch)`` alone
(:func:`draw_warps`), so that a resumed run reads the same batches; validation batches are
never warped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi

from liverseg.config._base import Pair, Section, setting

#: separates these draws from the shuffle ``(seed, epoch)``, dropout ``(seed, epoch, 7)``,
#: the prior jitter ``(seed, epoch, 13, row)`` and the flips ``(seed, epoch, 17, batch)``
_STREAM = 19

#: control points per side of the elastic bend's grid (a few per slice: a lobe's scale)
ELASTIC_GRID = 5


@dataclass
class SpatialConfig(Section):
    """``train.spatial``: how training slices are zoomed, turned and shifted (issue 17).

    Args:
        share: the probability (0–1) that a training row is warped in an epoch, drawn anew for
            every row and epoch; 0 (the default): no warp, the paper.
        zoom: ``(low, high)``: the magnification, log-uniform in this range (above 1: the
            liver looks larger; SynthSeg's ±15 % is about (0.85, 1.15)).
        rotation_deg: the turn, uniform in ±this many degrees about the slice's centre.
        shift: the move, uniform in ±this fraction of the slice's side along each axis.
        elastic: the smooth bend: each of a :data:`ELASTIC_GRID` × :data:`ELASTIC_GRID` grid of
            control points moves by a normal draw of this sd (a fraction of the slice's side)
            along each axis; 0 (the default): affine only. At 64 pixels, 0.02 never folds a
            slice over itself, 0.03 in 2 % of draws, 0.04 in a fifth.

    Raises :class:`~liverseg.errors.SettingError` naming the setting for a value out of range.
    """

    share: float = setting(0.0, at_least=0, at_most=1)
    zoom: tuple[float, float] = setting((0.85, 1.15), pair=Pair(above=0, floats=True))
    rotation_deg: float = setting(15.0, at_least=0, at_most=180)
    shift: float = setting(0.0, at_least=0, at_most=0.5)
    elastic: float = setting(0.0, at_least=0, at_most=0.25)

    _section = "train.spatial"

    @property
    def active(self) -> bool:
        """Whether any row is ever warped (``share`` > 0)."""
        return self.share > 0


@dataclass(frozen=True)
class Warps:
    """What :func:`draw_warps` decided for each row, arrays ``(B,)``: ``zoom`` (1 for a row
    left as it is), ``angle`` (radians), ``shift_y``, ``shift_x`` (fractions of the side),
    ``elastic`` (the bend's sd, 0 for none) and ``bend_seed`` (the seed of the row's bend,
    :func:`elastic_field`)."""

    zoom: np.ndarray
    angle: np.ndarray
    shift_y: np.ndarray
    shift_x: np.ndarray
    elastic: np.ndarray
    bend_seed: np.ndarray

    def __len__(self) -> int:
        return len(self.zoom)


def draw_warps(n: int, settings: SpatialConfig, seed: int, epoch: int, batch: int) -> Warps:
    """The warp of each of the ``n`` rows of ``batch`` in ``epoch`` of a run with ``seed``: a
    function of its arguments alone (rows not drawn for warping get the identity)."""
    rng = np.random.default_rng((int(seed), int(epoch), _STREAM, int(batch)))
    hit, zoom_unit, angle_unit, dy, dx = rng.random((5, int(n)))
    warped = hit < settings.share
    low, high = np.log(settings.zoom)
    zoom = np.where(warped, np.exp(low + zoom_unit * (high - low)), 1.0)
    angle = np.where(warped, np.deg2rad(settings.rotation_deg) * (2 * angle_unit - 1), 0.0)
    shift_y = np.where(warped, settings.shift * (2 * dy - 1), 0.0)
    shift_x = np.where(warped, settings.shift * (2 * dx - 1), 0.0)
    bend_seed = rng.integers(0, 2 ** 31, int(n))  # drawn after the affine: those stay as before
    elastic = np.where(warped, float(settings.elastic), 0.0)
    return Warps(zoom, angle, shift_y, shift_x, elastic, bend_seed)


def elastic_field(shape: tuple[int, int], elastic: float, seed: int) -> np.ndarray:
    """The smooth displacement ``(2, H, W)`` (pixels, along y and x) of a bend of sd ``elastic``
    (a fraction of each side) drawn from ``seed``: :data:`ELASTIC_GRID` ² normal control-point
    moves, upsampled to ``shape`` with cubic splines. A function of its arguments alone, so an
    image, its prior and its label bend alike."""
    rng = np.random.default_rng(int(seed))
    grid = rng.standard_normal((2, ELASTIC_GRID, ELASTIC_GRID)) * float(elastic)
    height, width = shape
    field = np.stack([ndi.zoom(component, (height / ELASTIC_GRID, width / ELASTIC_GRID),
                               order=3, mode="nearest", grid_mode=True)
                      for component in grid])
    return field * np.array([height, width], np.float64)[:, None, None]


def warp_image(image: np.ndarray, zoom: float, angle: float = 0.0, shift_y: float = 0.0,
               shift_x: float = 0.0, order: int = 1, elastic: float = 0.0,
               bend_seed: int = 0) -> np.ndarray:
    """``image`` ``(H, W)`` or ``(H, W, C)`` magnified ``zoom`` times and turned by ``angle``
    (radians) about its centre, then moved by ``shift_y``, ``shift_x`` of its side, and bent by
    :func:`elastic_field` ``(elastic, bend_seed)`` where ``elastic`` > 0; a new array of the
    same shape and dtype. ``order``: 1 (linear, images) or 0 (nearest: labels, priors). The
    identity (zoom 1, no turn, no shift, no bend) returns an exact copy.

    Raises ``ValueError`` for an image that is not 2-D (with an optional channel axis) or a
    zoom that is not positive."""
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"a slice is (H, W) or (H, W, C), got shape {image.shape}")
    if not zoom > 0:
        raise ValueError(f"zoom must be positive, got {zoom}")
    if zoom == 1 and angle == 0 and shift_y == 0 and shift_x == 0 and not elastic > 0:
        return image.copy()
    height, width = image.shape[:2]
    centre = np.array([(height - 1) / 2, (width - 1) / 2])
    cos, sin = np.cos(angle), np.sin(angle)
    # output pixel o reads input pixel centre + R(angle) (o - centre - move) / zoom
    matrix = np.array([[cos, -sin], [sin, cos]]) / zoom
    move = np.array([shift_y * height, shift_x * width])
    offset = centre - matrix @ (centre + move)
    channels = [image] if image.ndim == 2 else [image[..., c] for c in range(image.shape[2])]
    if elastic > 0:  # read input pixel affine(o + bend(o)) for output pixel o
        bent = np.indices((height, width), np.float64) + elastic_field((height, width), elastic,
                                                                         bend_seed)
        coordinates = np.einsum("ij,jhw->ihw", matrix, bent) + offset[:, None, None]
        out = [ndi.map_coordinates(channel.astype(np.float32, copy=False), coordinates,
                                   order=order, mode="nearest") for channel in channels]
    else:
        out = [ndi.affine_transform(channel.astype(np.float32, copy=False), matrix, offset,
                                    order=order, mode="nearest") for channel in channels]
    warped = out[0] if image.ndim == 2 else np.stack(out, axis=-1)
    if order == 0 or image.dtype.kind in "biu":
        warped = np.rint(warped)
    return warped.astype(image.dtype, copy=False)


def warp_batch(batch, warps: Warps, order: int = 1):
    """Each row ``i`` of ``batch`` (an array ``(B, H, W[, C])``, or a dict or list of them, as
    :func:`~liverseg.train.flips.flip_batch` takes) under ``warps``' row ``i``; new arrays, same
    structure. In a dict, the ``"prior"`` entry (the tuning network's ROI prior) is warped by its
    nearest pixel whatever ``order`` says.

    Raises ``ValueError`` when ``batch`` and ``warps`` differ in length."""
    if isinstance(batch, dict):
        return {key: warp_batch(value, warps, 0 if key == "prior" else order)
                for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return [warp_batch(value, warps, order) for value in batch]
    array = np.asarray(batch)
    if len(array) != len(warps):
        raise ValueError(f"{len(warps)} warps for a batch of {len(array)} rows")
    if not len(array):
        return array.copy()
    return np.stack([warp_image(row, warps.zoom[i], warps.angle[i], warps.shift_y[i],
                                warps.shift_x[i], order, warps.elastic[i], warps.bend_seed[i])
                     for i, row in enumerate(array)])
