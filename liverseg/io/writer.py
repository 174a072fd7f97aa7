"""Writing a canonical array as NIfTI that overlays its source image, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from liverseg.errors import InvalidDataError, ShapeError, UnsupportedFormatError
from liverseg.io.atomic import atomic_path
from liverseg.io.dtypes import smallest_exact_dtype
from liverseg.io.formats import NIFTI_SUFFIXES
from liverseg.io.volume import Volume


def write_volume(array, path: str | os.PathLike, like: Volume | None = None, spacing=None, origin=None) -> Path:
    """Write a canonical ``(z, y, x)`` array as NIfTI in ``like``'s source geometry.

    The array is put back into the source file's index order and saved with the source
    affine, so the output overlays the source image exactly (in SimpleITK, 3D Slicer,
    ITK-SNAP, nibabel). Without ``like``, the array is written as canonical with the given
    ``spacing`` (default 1 mm) and ``origin`` (RAS+ mm of voxel ``[0, 0, 0]``); with ``like``
    these two are ignored. The file appears atomically
    (:func:`liverseg.io.atomic.atomic_path`). Booleans are stored as uint8, 64-bit integers in the smallest integer type
    that holds them, float64 as float32.
    """
    path = Path(path)
    if not path.name.lower().endswith(NIFTI_SUFFIXES):
        raise UnsupportedFormatError("can only write NIfTI (.nii or .nii.gz)", path)
    array = np.asarray(array)
    if like is None:
        spacing = (1.0, 1.0, 1.0) if spacing is None else spacing
        like = Volume.from_canonical(array, spacing, (0.0, 0.0, 0.0) if origin is None else origin)
    elif array.shape != like.shape:
        raise ShapeError(f"array shape {array.shape} differs from the reference shape {like.shape}", path)
    stored = like.to_source_order(_storable(array, path))
    affine = like.source_affine if like.source_affine is not None else like.affine
    image = nib.Nifti1Image(np.ascontiguousarray(stored), affine)
    image.header.set_qform(affine, code=1)
    image.header.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm")
    suffix = ".tmp.nii.gz" if path.name.lower().endswith(".gz") else ".tmp.nii"
    with atomic_path(path, suffix=suffix) as temporary:
        nib.save(image, temporary)
    return path


#: Integer types a boolean or 64-bit integer array is narrowed to (smallest first).
_NIFTI_INTEGERS = (np.uint8, np.int16, np.int32)


def _storable(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype == bool or (array.dtype.kind in "iu" and array.dtype.itemsize == 8):
        try:
            return array.astype(smallest_exact_dtype(array, _NIFTI_INTEGERS))
        except InvalidDataError as error:
            raise InvalidDataError(error.problem, path) from None
    if array.dtype == np.float64:
        return array.astype(np.float32)
    return array
