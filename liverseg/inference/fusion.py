"""Fuse the per-plane probability volumes into one mask (paper section 3.10, Eq. 8).

One network per plane (axial, coronal, sagittal) predicts a foreground probability for
every voxel; after :func:`liverseg.datasets.planes.from_slices` the planes' volumes are
aligned ``(z, y, x)`` arrays of the same shape. The paper fuses them by **soft voting**,
the mean probability ``P = (1/3) Σ_i P_i`` (Eq. 8), thresholded; it names the hard votes it
improves on — **union**, **intersection** and **majority** of the per-plane masks — which
are here for comparison (``InferenceConfig.fusion``).

Conventions:

* A plane's mask is ``probability > threshold`` (default 0.5), as in
  :func:`liverseg.postprocess.binarize`; the soft vote's mask is ``mean > threshold``.
* ``majority`` keeps voxels found by more than half of the planes (2 of 3, 3 of 4).
* Probabilities are real arrays with values in ``[0, 1]`` (float16, float32, float64,
  or boolean / 0-1 integer masks); NaN or values outside ``[0, 1]`` are refused.
* Masks come back as new boolean arrays, the soft vote's probability as float32 (the
  running sum is kept in float32, whatever the inputs' precision).

Volumes reach 512 × 512 × 800 voxels (800 MB of float32 per plane), so every function
accepts any iterable of planes — a generator that predicts one plane at a time keeps only
that plane alive — and :class:`FusionAccumulator` does the same one ``add`` at a time.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from liverseg.config import FUSIONS
from liverseg.errors import InvalidDataError, ShapeError

__all__ = [
    "METHODS",
    "FusionAccumulator",
    "fuse",
    "intersection",
    "majority",
    "soft_vote",
    "union",
]

METHODS = FUSIONS  # the settings tree's names (``InferenceConfig.fusion``)


class FusionAccumulator:
    """Fuse planes one at a time: ``add`` each plane's probability, then ``result()``.

    ``method`` is one of :data:`METHODS`, ``shape`` the ``(z, y, x)`` shape every plane
    must have, ``threshold`` the foreground cut (module conventions). The state is one
    array of ``shape``: a float32 running sum (``soft``), a boolean mask (``union``,
    ``intersection``) or a uint16 vote count (``majority``).

    >>> acc = FusionAccumulator("soft", volume_shape)          # doctest: +SKIP
    >>> for plane in ("axial", "coronal", "sagittal"):         # doctest: +SKIP
    ...     acc.add(predict_plane(volume, plane))
    >>> mask = acc.result()                                    # doctest: +SKIP

    Raises :class:`InvalidDataError` for an unknown method, a threshold outside
    ``[0, 1]``, a plane with NaN or values outside ``[0, 1]``, and ``result()`` before any
    ``add``; :class:`ShapeError` for a plane whose shape is not ``shape``.
    """

    def __init__(self, method: str, shape: tuple[int, int, int], threshold: float = 0.5):
        self.method = _check_method(method)
        self.shape = _check_volume_shape(shape)
        self.threshold = _check_threshold(threshold)
        self.n_planes = 0
        dtype = {"soft": np.float32, "majority": np.uint16}.get(method, bool)
        fill = method == "intersection"  # the intersection starts full, everything else empty
        self._state = np.full(self.shape, fill, dtype)

    def __repr__(self) -> str:
        return (f"FusionAccumulator(method={self.method!r}, shape={self.shape}, "
                f"threshold={self.threshold}, n_planes={self.n_planes})")

    def add(self, probability) -> None:
        """Add one plane's ``(z, y, x)`` probability volume (any real dtype, values in [0, 1])."""
        index = self.n_planes
        probability = _check_plane(probability, self.shape, index)
        if self.method == "soft":
            np.add(self._state, probability, out=self._state)
        else:
            mask = probability > self.threshold
            if self.method == "union":
                self._state |= mask
            elif self.method == "intersection":
                self._state &= mask
            else:
                if self.n_planes == np.iinfo(np.uint16).max:
                    raise InvalidDataError(f"majority vote counts at most {self.n_planes} planes")
                self._state += mask
        self.n_planes += 1

    def probability(self) -> np.ndarray:
        """The soft vote, Eq. 8: the mean of the planes added so far (new float32 array).

        Only for ``method="soft"`` (a hard vote keeps no probabilities).
        """
        if self.method != "soft":
            raise InvalidDataError(
                f"probability() needs method 'soft'; a {self.method!r} vote keeps only masks"
            )
        self._check_not_empty()
        return self._state / np.float32(self.n_planes)

    def result(self) -> np.ndarray:
        """The fused foreground mask of the planes added so far (new boolean array)."""
        self._check_not_empty()
        if self.method == "soft":
            return self.probability() > self.threshold
        if self.method == "majority":
            return self._state > self.n_planes / 2
        return self._state.copy()

    def _check_not_empty(self) -> None:
        if self.n_planes == 0:
            raise InvalidDataError("no planes to fuse: add() at least one probability volume")


def fuse(probabilities: Iterable, method: str = "soft", threshold: float = 0.5) -> np.ndarray:
    """The fused boolean ``(z, y, x)`` mask of the planes' probability volumes.

    ``probabilities``: a list (or any iterable, e.g. a generator) of equally shaped
    ``(z, y, x)`` arrays; ``method``: one of :data:`METHODS`. Errors as
    :class:`FusionAccumulator`, plus :class:`InvalidDataError` when there are no planes.
    """
    return _accumulate(probabilities, method, threshold).result()


def soft_vote(probabilities: Iterable) -> np.ndarray:
    """Eq. 8: the voxel-wise mean of the planes' probability volumes, float32 ``(z, y, x)``.

    Threshold it (``> 0.5``) for the mask, or call ``fuse(probabilities, "soft")``.
    """
    return _accumulate(probabilities, "soft").probability()


def union(probabilities: Iterable, threshold: float = 0.5) -> np.ndarray:
    """Voxels that at least one plane finds (``probability > threshold``)."""
    return fuse(probabilities, "union", threshold)


def intersection(probabilities: Iterable, threshold: float = 0.5) -> np.ndarray:
    """Voxels that every plane finds (``probability > threshold``)."""
    return fuse(probabilities, "intersection", threshold)


def majority(probabilities: Iterable, threshold: float = 0.5) -> np.ndarray:
    """Voxels that more than half of the planes find (``probability > threshold``)."""
    return fuse(probabilities, "majority", threshold)


def _accumulate(probabilities: Iterable, method: str, threshold: float = 0.5) -> FusionAccumulator:
    _check_method(method)
    if isinstance(probabilities, np.ndarray) and probabilities.ndim == 3:
        raise ShapeError(
            "expected a list of (z, y, x) probability volumes, one per plane, "
            f"got a single array of shape {probabilities.shape}"
        )
    planes = iter(probabilities)
    first = next(planes, None)
    if first is None:
        raise InvalidDataError("no planes to fuse: got an empty list of probability volumes")
    first = np.asarray(first)
    accumulator = FusionAccumulator(method, _plane_shape(first, 0), threshold)
    accumulator.add(first)
    del first
    for plane in planes:
        accumulator.add(plane)
    return accumulator


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise InvalidDataError(
            f"unknown fusion method {method!r}; expected one of {', '.join(METHODS)}"
        )
    return method


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:  # also refuses NaN
        raise InvalidDataError(f"fusion threshold must be in [0, 1], got {threshold}")
    return threshold


def _check_volume_shape(shape) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 0:
        raise ShapeError(f"fusion needs a (z, y, x) volume shape, got {shape}")
    return shape


def _plane_shape(probability: np.ndarray, index: int) -> tuple[int, int, int]:
    if probability.ndim != 3:
        raise ShapeError(
            f"plane {index}: expected a (z, y, x) probability volume, got shape {probability.shape}"
        )
    return probability.shape


def _check_plane(probability, shape: tuple[int, int, int], index: int) -> np.ndarray:
    """Plane ``index`` as an array, checked for shape, dtype, NaN and range."""
    probability = np.asarray(probability)
    if _plane_shape(probability, index) != shape:
        raise ShapeError(
            f"plane {index} has shape {probability.shape}, expected {shape} like the others"
        )
    if probability.dtype.kind not in "biuf":
        raise InvalidDataError(
            f"plane {index}: probabilities must be real numbers, got dtype {probability.dtype}"
        )
    if probability.size == 0 or probability.dtype == bool:
        return probability
    low, high = probability.min(), probability.max()
    if np.isnan(low) or np.isnan(high):
        raise InvalidDataError(f"plane {index}: probability volume contains NaN")
    if low < 0 or high > 1:
        raise InvalidDataError(
            f"plane {index}: probabilities must lie in [0, 1], got values in [{low}, {high}]"
        )
    return probability
