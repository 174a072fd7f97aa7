"""Writing a canonical array as NIfTI that overlays its source image, atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from liverseg.errors import InvalidDataError, ShapeError, UnsupportedFormatError
from liverseg.io.formats import NIFTI_SUFFIXES
from liverseg.io.volume import Volume


def write_volume(array, path: str | os.PathLike, like: Volume | None = None, spacing=None, origin=None) -> Path:
    """Write a canonical ``(z, y, x)`` array as NIfTI in ``like``'s source geometry.

    The array is put back into the source file's index order and saved with the source
    affine, so the output overlays the source image exactly (in SimpleITK, 3D Slicer,
    ITK-SNAP, nibabel). Without ``like``, the array is written as canonical with the given
    ``spacing`` (default 1 mm) and ``origin`` (RAS+ mm of voxel ``[0, 0, 0]``); with ``like``
    these two are ignored. The file appears atomically (temp file, then
    rename). Booleans are stored as uint8, 64-bit integers in the smallest integer type
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
    stored = like.to_source_order(_storable(array))
    affine = like.source_affine if like.source_affine is not None else like.affine
    image = nib.Nifti1Image(np.ascontiguousarray(stored), affine)
    image.header.set_qform(affine, code=1)
    image.header.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".nii.gz" if path.name.lower().endswith(".gz") else ".nii"
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    try:
        nib.save(image, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _storable(array: np.ndarray) -> np.ndarray:
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype.kind in "iu" and array.dtype.itemsize == 8:
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        for candidate in (np.uint8, np.int16, np.int32):
            info = np.iinfo(candidate)
            if info.min <= low and high <= info.max:
                return array.astype(candidate)
        raise InvalidDataError(f"values {low}..{high} do not fit in 32 bits")
    if array.dtype == np.float64:
        return array.astype(np.float32)
    return array
