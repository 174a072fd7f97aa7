"""Reading an image or label file into canonical orientation, whatever its format."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations as nio

from liverseg.errors import (
    CorruptFileError,
    InvalidDataError,
    MissingFileError,
    ShapeError,
    UnsupportedFormatError,
)
from liverseg.io.dicom import _read_dicom_series, _read_single_dicom
from liverseg.io.formats import ANALYZE_SUFFIXES, NIFTI_SUFFIXES, NRRD_SUFFIXES
from liverseg.io.volume import Volume, _to_canonical


def read_volume(path: str | os.PathLike, dtype=np.float32) -> Volume:
    """Read a CT volume (NIfTI, DICOM series folder, NRRD or ANALYZE) in canonical orientation.

    Args:
        path: a ``.nii``/``.nii.gz``/``.nrrd``/``.nhdr``/``.hdr``/``.img`` file, or a folder
            holding one DICOM series (files with or without extension).
        dtype: dtype of the returned array; ``None`` keeps the file's own dtype (after the
            rescale slope/intercept or modality LUT, which give HU).

    Raises:
        MissingFileError, CorruptFileError, UnsupportedFormatError, DicomSeriesError,
        ModalityError, ShapeError, InvalidDataError — each naming the file.
    """
    path = Path(path)
    stored, affine = _read_stored(path, modality="CT", rescale=True)
    volume = _to_canonical(stored, affine, path, dtype=dtype)
    if volume.array.dtype.kind == "f" and not np.isfinite(volume.array).all():
        count = int(volume.array.size - np.count_nonzero(np.isfinite(volume.array)))
        raise InvalidDataError(f"{count} voxels are NaN or infinite", path)
    return volume


def read_label(path: str | os.PathLike, like: Volume | None = None) -> np.ndarray | Volume:
    """Read a label file (NIfTI, NRRD, ANALYZE or DICOM series folder) as a label.

    Labels are read as stored: no modality check, no rescale slope/intercept or modality
    LUT, no float cast — integers stay integers (a uint8 mask stays uint8), and a float file
    holding only whole numbers becomes int32.

    With ``like`` (the image the label belongs to) the label is mapped voxel for voxel onto
    ``like`` and the ``(z, y, x)`` array is returned in ``like``'s canonical order. The
    label's stored array must have the shape of ``like``'s source array; it is reoriented
    with ``like``'s transform (not its own header), so a label whose header differs slightly
    from its image (as happens in LiTS) still matches voxel for voxel. A header whose
    orientation differs from the image's triggers a warning.

    With ``like=None`` the label is read in its own geometry and returned as a
    :class:`Volume` in canonical orientation (``array``, ``spacing`` and ``affine`` from the
    file's own header), e.g. to compare a prediction with a reference file
    (:mod:`liverseg.evaluation`).

    Raises:
        MissingFileError, CorruptFileError, UnsupportedFormatError, DicomSeriesError,
        ShapeError (not a 3D volume, or not the shape of ``like``), InvalidDataError (NaN or
        infinite voxels) — each naming the file.
    """
    path = Path(path)
    stored, affine = _read_stored(path, modality=None, rescale=False)
    if like is not None:
        source_shape = like.source_shape
        if tuple(stored.shape) != tuple(source_shape):
            raise ShapeError(
                f"label shape {tuple(stored.shape)} differs from image shape {tuple(source_shape)}"
                f" ({like.path})",
                path,
            )
        if like.source_affine is not None and not np.allclose(
            nio.io_orientation(affine), nio.io_orientation(like.source_affine)
        ):
            warnings.warn(
                f"{path}: label header orientation {nio.aff2axcodes(affine)} differs from the image's "
                f"{nio.aff2axcodes(like.source_affine)}; using the image's",
                stacklevel=2,
            )
    stored = _label_values(np.asarray(stored), path)
    if like is None:
        return _to_canonical(stored, affine, path, dtype=None)
    return like.from_source_order(stored)


def _label_values(stored: np.ndarray, path: Path) -> np.ndarray:
    """Refuse NaN/inf labels; whole-number float labels become int32, others stay as stored."""
    if stored.dtype.kind == "f":
        if not np.isfinite(stored).all():
            raise InvalidDataError("label has NaN or infinite voxels", path)
        if np.array_equal(stored, np.round(stored)):
            stored = stored.astype(np.int32)
    return stored


def _read_stored(path: Path, *, modality: str | None, rescale: bool) -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on the path: (array in the file's index order, voxel→RAS+ affine)."""
    if not path.exists():
        raise MissingFileError("no such file or folder", path)
    name = path.name.lower()
    if path.is_dir():
        array, affine = _read_dicom_series(path, modality=modality, rescale=rescale)
    elif name.endswith(NIFTI_SUFFIXES) or name.endswith(ANALYZE_SUFFIXES):
        array, affine = _read_nibabel(path)
    elif name.endswith(NRRD_SUFFIXES):
        array, affine = _read_nrrd(path)
    elif name.endswith(".dcm") or "." not in name:
        _read_single_dicom(path)  # always raises: one slice is not a volume
    else:
        raise UnsupportedFormatError(
            "unsupported format; expected NIfTI (.nii, .nii.gz), NRRD (.nrrd), ANALYZE (.hdr/.img) "
            "or a folder holding one DICOM series",
            path,
        )
    return _as_volume_array(array, path), affine


def _as_volume_array(array: np.ndarray, path: Path) -> np.ndarray:
    """Drop trailing singleton axes (4D files with one frame); insist on a real 3D volume."""
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise ShapeError(f"expected a 3D volume, got an array of shape {array.shape}", path)
    if min(array.shape) < 2:
        raise ShapeError(f"expected a 3D volume, got a single slice of shape {array.shape}", path)
    return array


def _read_nibabel(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """NIfTI-1/2 and ANALYZE 7.5 via nibabel (ANALYZE orientation per nibabel's convention)."""
    try:
        image = nib.load(path)
        array = np.asanyarray(image.dataobj)
        affine = np.asarray(image.affine, dtype=float)
    except Exception as error:  # nibabel raises many types for truncated or garbled files
        raise CorruptFileError(f"cannot read image: {error}", path) from error
    if array.ndim > 3 and any(n != 1 for n in array.shape[3:]):
        raise ShapeError(f"expected a 3D volume, got a 4D series of shape {array.shape}", path)
    return np.asarray(array), affine


def _read_nrrd(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """NRRD via pynrrd; a header without ``space`` is taken as LPS, as ITK does."""
    import nrrd

    try:
        array, header = nrrd.read(str(path))
    except Exception as error:
        raise CorruptFileError(f"cannot read NRRD: {error}", path) from error
    if array.ndim != 3:
        raise ShapeError(f"expected a 3D volume, got an array of shape {array.shape}", path)
    directions = header.get("space directions")
    if directions is None:
        spacings = header.get("spacings", [1.0, 1.0, 1.0])
        directions = np.diag([float(s) if np.isfinite(s) else 1.0 for s in spacings])
    directions = np.asarray(directions, dtype=float)
    if directions.shape != (3, 3) or not np.isfinite(directions).all():
        raise ShapeError("expected three spatial axes in 'space directions'", path)
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
    space = str(header.get("space", "left-posterior-superior")).lower()
    signs = {
        "left-posterior-superior": (-1, -1, 1),
        "lps": (-1, -1, 1),
        "right-anterior-superior": (1, 1, 1),
        "ras": (1, 1, 1),
        "left-anterior-superior": (-1, 1, 1),
        "las": (-1, 1, 1),
    }.get(space)
    if signs is None:
        raise UnsupportedFormatError(f"NRRD space {space!r} is not a patient space (RAS, LAS, LPS)", path)
    affine = np.eye(4)
    affine[:3, :3] = directions.T  # row i of 'space directions' is the step of axis i
    affine[:3, 3] = origin
    return array, np.diag([*signs, 1.0]) @ affine
