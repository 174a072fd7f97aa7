"""CT preprocessing of paper section 3.2: HU window, median filter, z-score.

The paper names three steps — a global HU window of [-100, 200] "to remove irrelevant
organs and tissues", a z-score (its Eq. 1) "so all features are on the same scale", and a
median filter over a 2D region R (its Eq. 2) against noise and small holes — in that text
order, but never says in which order they are applied. :func:`preprocess` applies

    window → median filter → z-score

and here is why. The median filter commutes with the window: clipping is monotone and the
median of clipped values is the clipped median, so those two may go either way (the tests
check it). What the order does decide is which image the z-score statistics come from;
taking them last, from the filtered image, is what makes the network input exactly zero
mean, unit variance — the point of Eq. 1. Filtering on windowed HU also keeps the median's
input in physical units, where "salt" is a recognisable bright voxel.

All functions accept a 2D slice ``(h, w)`` or a ``(z, y, x)`` volume and return float32.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import scipy.ndimage as ndi

from liverseg.config._base import Pair, Section, setting
from liverseg.errors import InvalidDataError, SettingError, ShapeError

ZSCORE_SCOPES = ("volume", "slice")


@dataclasses.dataclass(frozen=True)
class PreprocessConfig(Section):
    """Settings of :func:`preprocess`; the defaults are the paper's.

    Attributes:
        window: ``(low, high)`` HU clip range (paper: -100 to 200); ``None`` skips it.
        median_size: side of the median filter's region R (paper: unstated, 3 chosen);
            1 or ``None`` skips it.
        median_dims: 2 filters each axial slice on its own (the paper's Eq. 2 is 2D);
            3 uses a cube, which mixes neighbouring slices.
        zscore_scope: ``"volume"`` (one mean / std per volume) or ``"slice"`` (per axial slice).
        zscore_stats: ``(mean, sd)`` in windowed HU: the same statistics for every volume, in
            place of its own (``zscore_scope`` then unused), as nnU-Net normalizes CT by its
            training set's; ``None`` (the default): each volume's own, the paper's reading.
            The paper's Eq. 1 does not say whose mean and sd it takes, and a volume's own
            depend on its field of view: a crop around the liver puts its liver at another z
            than a whole abdomen does (see "From phantoms to real CT").
        eps: smallest standard deviation divided by (see :func:`zscore`).
    """

    window: tuple[float, float] | None = setting((-100.0, 200.0), pair=Pair(order="<"), optional=True)
    median_size: int | None = setting(3, whole=True, at_least=1, optional=True)
    median_dims: int = setting(2, choices=(2, 3))
    zscore_scope: str = setting("volume", choices=ZSCORE_SCOPES)
    zscore_stats: tuple[float, float] | None = setting(None, pair=Pair(order="", floats=True),
                                                      optional=True)
    eps: float = setting(1e-6, above=0)

    _section = "preprocess"

    def _check_across(self):
        if self.zscore_stats is not None and not self.zscore_stats[1] > 0:
            raise SettingError(f"preprocess.zscore_stats={self.zscore_stats}: the sd (second) "
                               "must be positive")

    def slice_key(self) -> dict:
        """The settings that decide the preprocessed values, as a slice folder's index keeps
        them: ``zscore_stats`` only once set, so folders cut before it existed stay valid."""
        settings = self.to_dict()
        if settings["zscore_stats"] is None:
            del settings["zscore_stats"]
        return settings


def check_finite(x, source: str | os.PathLike | None = None) -> np.ndarray:
    """``x`` as an array; :class:`InvalidDataError` naming ``source`` if it holds NaN or inf."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise InvalidDataError(f"expected a numeric image, got dtype {x.dtype}", source)
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise InvalidDataError(f"image has {bad} NaN or infinite voxel(s)", source)
    return x


def window(hu, low: float = -100.0, high: float = 200.0) -> np.ndarray:
    """Clip HU values to ``[low, high]`` (the paper's liver window is -100 to 200 HU)."""
    _check_window(low, high)
    return np.clip(np.asarray(hu, dtype=np.float32), low, high)


def median_filter(x, size: int = 3, dims: int = 2, mode: str = "reflect") -> np.ndarray:
    """Median over a ``size``-wide square (``dims=2``, per slice) or cube (``dims=3``).

    The paper's Eq. 2 takes the median over a 2D region R of each image, so by default a
    volume is filtered slice by slice (footprint ``(1, size, size)``); ``dims=3`` uses a
    ``size³`` cube. ``mode`` is how borders are padded (``scipy.ndimage`` modes).
    """
    x = np.asarray(x, dtype=np.float32)
    _check_image(x)
    if dims not in (2, 3):
        raise InvalidDataError(f"dims must be 2 or 3, got {dims!r}")
    if dims == 3 and x.ndim != 3:
        raise ShapeError(f"a 3D median filter needs a (z, y, x) volume, got shape {x.shape}")
    footprint = (size,) * x.ndim if dims == 3 else (1,) * (x.ndim - 2) + (size, size)
    return ndi.median_filter(x, size=footprint, mode=mode)


def zscore(x, mask=None, eps: float = 1e-6, scope: str = "volume") -> np.ndarray:
    """``(x - mean) / std`` (paper Eq. 1), statistics over the voxels where ``mask`` is true.

    ``scope="volume"`` uses one mean and standard deviation for the whole array;
    ``scope="slice"`` one per axial slice ``x[k]`` (a slice whose mask is empty falls back
    to the whole-array statistics). The standard deviation is floored at ``eps``, so a
    constant input returns all zeros instead of dividing by zero.

    Raises:
        ShapeError: ``mask`` is not the shape of ``x``.
        InvalidDataError: ``mask`` selects no voxel.
    """
    x = np.asarray(x, dtype=np.float32)
    _check_image(x)
    if scope not in ZSCORE_SCOPES:
        raise InvalidDataError(f"scope must be one of {ZSCORE_SCOPES}, got {scope!r}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != x.shape:
            raise ShapeError(f"mask shape {mask.shape} differs from image shape {x.shape}")
        if not mask.any():
            raise InvalidDataError("z-score mask is empty")
    if scope == "volume" or x.ndim == 2:
        return _standardize(x, *_stats(x, mask), eps)
    out = np.empty_like(x)
    whole = None
    for k, image in enumerate(x):
        slice_mask = None if mask is None else mask[k]
        if slice_mask is not None and not slice_mask.any():
            whole = whole or _stats(x, mask)
            out[k] = _standardize(image, *whole, eps)
        else:
            out[k] = _standardize(image, *_stats(image, slice_mask), eps)
    return out


def preprocess(hu, config: PreprocessConfig | None = None, *, mask=None, source=None) -> np.ndarray:
    """Window → median filter → z-score a CT slice or volume (order: see module docstring).

    Args:
        hu: ``(h, w)`` or ``(z, y, x)`` Hounsfield units.
        config: the steps' settings (default: :class:`PreprocessConfig`, the paper's).
        mask: optional voxels the z-score statistics come from (e.g. the body); unused with
            ``config.zscore_stats``, which fixes them.
        source: file the image came from, named in error messages.

    Returns:
        float32 array of the input's shape.

    Raises:
        InvalidDataError: NaN or infinite input, bad settings, empty mask.
    """
    config = config or PreprocessConfig()
    x = _windowed_and_filtered(hu, config, source)
    if config.zscore_stats is not None:
        return _standardize(x, *config.zscore_stats, config.eps)
    return zscore(x, mask=mask, eps=config.eps, scope=config.zscore_scope)


def volume_statistics(hu, config: PreprocessConfig | None = None, *,
                      source=None) -> tuple[float, float]:
    """The ``(mean, sd)`` the paper's z-score divides a volume by: those of its windowed,
    median-filtered HU. The median of these over a training set's volumes is a choice for
    ``PreprocessConfig.zscore_stats`` (nnU-Net normalizes CT by its training set's).

    Raises:
        InvalidDataError: NaN or infinite input (naming ``source``).
    """
    return _stats(_windowed_and_filtered(hu, config or PreprocessConfig(), source), None)


def _windowed_and_filtered(hu, config: PreprocessConfig, source) -> np.ndarray:
    x = check_finite(hu, source).astype(np.float32)
    _check_image(x, source)
    if config.window is not None:
        x = window(x, *config.window)
    if config.median_size and config.median_size > 1:
        x = median_filter(x, int(config.median_size), dims=config.median_dims)
    return x


def _stats(x, mask) -> tuple[float, float]:
    values = x if mask is None else x[mask]
    return float(values.mean(dtype=np.float64)), float(values.std(dtype=np.float64))


def _standardize(x, mean, std, eps):
    return (x - np.float32(mean)) / np.float32(max(std, eps))


def _check_window(low, high):
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise InvalidDataError(f"window must be finite with low < high, got ({low}, {high})")


def _check_image(x, source=None):
    if x.ndim not in (2, 3):
        raise ShapeError(f"expected a 2D slice or a (z, y, x) volume, got shape {x.shape}", source)


def mask_outside(x, mask, fill: float | None = None) -> np.ndarray:
    """``x`` with every voxel outside ``mask`` set to ``fill`` (default: ``x``'s minimum).

    The lesion networks look only inside the liver (the two-stage cascade of Christ et al.):
    their input is the preprocessed volume with everything else set to the window's floor,
    which after :func:`preprocess` is the volume's minimum. Returns float32.
    """
    x = np.asarray(x, np.float32)
    mask = np.asarray(mask, bool)
    if mask.shape != x.shape:
        raise ShapeError(f"mask shape {mask.shape} differs from image shape {x.shape}")
    value = float(x.min()) if fill is None else float(fill)
    return np.where(mask, x, np.float32(value)).astype(np.float32, copy=False)


def liver_region(liver: np.ndarray, margin: int) -> np.ndarray:
    """The liver mask dilated by ``margin`` voxels: where the lesion networks look."""
    liver = np.asarray(liver, bool)
    if margin <= 0 or not liver.any():
        return liver
    return ndi.binary_dilation(liver, iterations=int(margin))
