"""Clean-up of predicted masks (paper section 3.9, Fig. 13: "removing small artifacts").

Connected-component and hole-filling operations with ``scipy.ndimage``, for binary masks
and for 0/1/2 liver/lesion labels. Conventions shared by every function:

* Input masks are boolean or integer (non-zero = foreground). Float arrays must either be
  exact 0/1 masks or come with an explicit ``threshold`` (foreground = ``value > threshold``,
  so NaN is background); a float probability map without one is refused rather than
  guessed at.
* ``connectivity`` is the neighbourhood of ``scipy.ndimage.generate_binary_structure``:
  1 = face neighbours ... ``ndim`` = all neighbours. Default ``ndim`` ("full"), as in MONAI's
  ``KeepLargestConnectedComponent``: voxels touching by an edge or corner belong to one object.
* An empty mask comes back empty (same shape) — there is nothing to keep, not an error.
* Results are new boolean arrays (``postprocess_label``: uint8 labels); inputs are not modified.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from liverseg.errors import InvalidDataError
from liverseg.labels import BACKGROUND, LESION, LIVER

__all__ = [
    "binarize",
    "fill_holes",
    "largest_component",
    "postprocess_label",
    "remove_small_components",
]


def binarize(mask, threshold: float | None = None) -> np.ndarray:
    """A boolean mask from a boolean, integer or float array (see the module conventions)."""
    mask = np.asarray(mask)
    if threshold is not None:
        if mask.dtype == bool:
            return mask.copy()
        with np.errstate(invalid="ignore"):
            return mask > threshold
    if mask.dtype == bool:
        return mask.copy()
    if mask.dtype.kind in "iu":
        return mask != 0
    if mask.dtype.kind == "f":
        if np.isnan(mask).any() or not np.isin(mask, (0.0, 1.0)).all():
            raise InvalidDataError(
                "float mask is not a 0/1 mask (probabilities or NaN); "
                "pass threshold= to binarize it"
            )
        return mask != 0
    raise InvalidDataError(f"mask has unsupported dtype {mask.dtype}")


def _structure(ndim: int, connectivity: int | None) -> np.ndarray:
    connectivity = ndim if connectivity is None else int(connectivity)
    if not 1 <= connectivity <= ndim:
        raise ValueError(f"connectivity must be in 1..{ndim}, got {connectivity}")
    return ndimage.generate_binary_structure(ndim, connectivity)


def _component_sizes(mask: np.ndarray, connectivity: int | None):
    labels, count = ndimage.label(mask, _structure(mask.ndim, connectivity))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    return labels, sizes


def largest_component(mask, connectivity: int | None = None,
                      threshold: float | None = None) -> np.ndarray:
    """Keep only the largest connected component (ties: the one with the lowest label,
    i.e. first in C order)."""
    mask = binarize(mask, threshold)
    if not mask.any():
        return mask
    labels, sizes = _component_sizes(mask, connectivity)
    return labels == int(np.argmax(sizes))


def remove_small_components(mask, min_size: float, spacing=None, connectivity: int | None = None,
                            threshold: float | None = None) -> np.ndarray:
    """Drop connected components smaller than ``min_size``.

    ``min_size`` counts voxels, or mm³ when ``spacing`` (voxel size in mm per axis) is
    given; components of exactly ``min_size`` are kept.
    """
    mask = binarize(mask, threshold)
    if not mask.any():
        return mask
    voxel_volume = 1.0
    if spacing is not None:
        spacing = np.asarray(spacing, dtype=float)
        if spacing.shape != (mask.ndim,) or not np.isfinite(spacing).all() or (spacing <= 0).any():
            raise InvalidDataError(
                f"spacing must be {mask.ndim} positive numbers, got {np.asarray(spacing).tolist()}"
            )
        voxel_volume = float(np.prod(spacing))
    labels, sizes = _component_sizes(mask, connectivity)
    keep = sizes * voxel_volume >= min_size
    keep[0] = False
    return keep[labels]


def fill_holes(mask, per_slice: bool = False, axis: int = 0,
               threshold: float | None = None) -> np.ndarray:
    """Fill enclosed background (``scipy.ndimage.binary_fill_holes``).

    In 3D a hole must be sealed on all sides; vessels entering the liver at the hilum open
    most of its "holes" to the outside, so ``per_slice=True`` fills each 2D slice along
    ``axis`` (0 = axial for ``(z, y, x)`` volumes) instead.
    """
    mask = binarize(mask, threshold)
    if not mask.any():
        return mask
    if not per_slice or mask.ndim < 3:
        return ndimage.binary_fill_holes(mask)
    moved = np.moveaxis(mask, axis, 0)
    filled = np.stack([ndimage.binary_fill_holes(plane) for plane in moved])
    return np.moveaxis(filled, 0, axis)


def postprocess_label(label, *, fill: str | None = "3d", min_lesion_size: float = 0,
                      spacing=None, connectivity: int | None = None, axis: int = 0) -> np.ndarray:
    """Clean a 0/1/2 (background/liver/lesion) label volume.

    1. the liver is every voxel labelled >= 1; keep its largest connected component;
    2. lesions outside the kept liver are dropped (set to background);
    3. holes in the liver are filled with liver (``fill``: ``"3d"``, ``"slice"`` — per 2D
       slice along ``axis`` — or ``None``), lesions inside keep their label;
    4. lesion components smaller than ``min_lesion_size`` (voxels, or mm³ with ``spacing``)
       become liver.

    An empty (all-background) label comes back empty. Returns a new uint8 array.
    """
    label = np.asarray(label)
    is_float = label.dtype.kind == "f"
    if is_float and (not np.isfinite(label).all() or (label != np.round(label)).any()):
        raise InvalidDataError("label contains non-integer or NaN values; expected 0, 1 or 2")
    if label.dtype.kind not in "biuf":
        raise InvalidDataError(f"label has unsupported dtype {label.dtype}")
    values = np.unique(label)
    if ((values < BACKGROUND) | (values > LESION)).any():
        raise InvalidDataError(f"label has values {values.tolist()[:5]}; expected 0, 1 or 2")
    if fill not in ("3d", "slice", None):
        raise ValueError(f"fill must be '3d', 'slice' or None, got {fill!r}")

    liver = largest_component(label >= LIVER, connectivity)
    lesion = (label == LESION) & liver
    if fill is not None:
        liver = fill_holes(liver, per_slice=fill == "slice", axis=axis)
    if min_lesion_size:
        lesion = remove_small_components(lesion, min_lesion_size, spacing, connectivity)
    out = np.zeros(label.shape, dtype=np.uint8)
    out[liver] = LIVER
    out[lesion] = LESION
    return out
