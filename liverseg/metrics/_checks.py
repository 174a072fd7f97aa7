"""Input checks shared by the metrics: masks, label volumes and voxel spacing.

Bad input is refused with a :mod:`liverseg.errors` exception rather than guessed at.
"""

from __future__ import annotations

import numpy as np

from liverseg.errors import InvalidDataError, ShapeError
from liverseg.labels import BACKGROUND, LESION


def check_same_shape(pred: np.ndarray, ref: np.ndarray) -> None:
    if pred.shape != ref.shape:
        raise ShapeError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")


def as_mask(x, what: str = "mask") -> np.ndarray:
    """A boolean view of a mask: non-zero is foreground; NaN is refused, not guessed."""
    x = np.asarray(x)
    if x.dtype == bool:
        return x
    if x.dtype.kind == "f" and np.isnan(x).any():
        raise InvalidDataError(f"{what} contains NaN; threshold probabilities before scoring")
    return x != 0


def as_masks(pred, ref) -> tuple[np.ndarray, np.ndarray]:
    pred, ref = as_mask(pred, "prediction"), as_mask(ref, "reference")
    check_same_shape(pred, ref)
    return pred, ref


def as_label(x, what: str, path=None) -> np.ndarray:
    """A uint8 0/1/2 label; float input (e.g. nibabel's ``get_fdata``) must hold integers."""
    x = np.asarray(x)
    if x.dtype == bool:
        return x.astype(np.uint8)
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise InvalidDataError(f"{what} label contains NaN or infinite values", path)
        if (x != np.round(x)).any():
            raise InvalidDataError(f"{what} label contains non-integer values", path)
    elif x.dtype.kind not in "iu":
        raise InvalidDataError(f"{what} label has unsupported dtype {x.dtype}", path)
    values = np.unique(x)
    bad = values[(values < BACKGROUND) | (values > LESION)]
    if bad.size:
        raise InvalidDataError(
            f"{what} label has values {bad.tolist()[:5]} outside 0 (background), 1 (liver), "
            f"2 (lesion)",
            path,
        )
    return x.astype(np.uint8)


def as_spacing(spacing, ndim: int) -> np.ndarray:
    if spacing is None:
        return np.ones(ndim)
    values = np.atleast_1d(np.asarray(spacing, dtype=float))
    if values.size == 1:
        values = np.repeat(values, ndim)
    if values.shape != (ndim,) or not np.isfinite(values).all() or (values <= 0).any():
        raise InvalidDataError(
            f"voxel spacing must be {ndim} positive finite numbers, "
            f"got {np.asarray(spacing).tolist()}"
        )
    return values
