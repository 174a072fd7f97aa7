"""Reading and writing CT volumes in one array orientation.

Every reader returns a :class:`Volume` whose ``array`` is ``(z, y, x)``: axis 0 runs
inferior→superior and each axial slice ``array[k]`` is in radiological view (patient
right on the image's left, anterior at the top). In nibabel's axis codes that is
``("S", "P", "L")``; it is also the array order SimpleITK returns for an LPS image.

Each format reader yields the array in the file's own index order together with its
voxel→RAS+ affine; one function (:func:`_to_canonical`) reorients that pair, and the
:class:`Volume` remembers the source geometry so :func:`write_volume` can write a
result (e.g. a label) that overlays the source exactly in any viewer.

Supported inputs: NIfTI (``.nii``, ``.nii.gz``), DICOM series folders (files with or
without extension), NRRD (``.nrrd``, ``.nhdr``) and ANALYZE 7.5 (``.hdr``/``.img``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
import warnings
from pathlib import Path
from typing import NoReturn

import nibabel as nib
import numpy as np
from nibabel import orientations as nio

from liverseg.errors import (
    CorruptFileError,
    DicomSeriesError,
    InvalidDataError,
    MissingFileError,
    ModalityError,
    ShapeError,
    UnsupportedFormatError,
)

#: nibabel axis codes of the canonical array: axis 0 → Superior, 1 → Posterior, 2 → Left.
CANONICAL_AXCODES = ("S", "P", "L")
_CANONICAL_ORNT = nio.axcodes2ornt(CANONICAL_AXCODES)
#: DICOM's patient coordinates are LPS+; nibabel's are RAS+.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ANALYZE_SUFFIXES = (".hdr", ".img", ".img.gz", ".hdr.gz")
NRRD_SUFFIXES = (".nrrd", ".nhdr")


@dataclasses.dataclass
class Volume:
    """A CT volume in canonical orientation, with what is needed to write results back.

    Attributes:
        array: ``(z, y, x)`` voxels (HU for images), canonical orientation.
        spacing: ``(z, y, x)`` voxel size in mm.
        affine: 4×4 voxel→RAS+ (mm) matrix of ``array`` (nibabel convention).
        path: the file or folder it was read from, if any.
        source_affine: voxel→RAS+ matrix of the array as stored in the source file.
        source_ornt: nibabel orientation transform taking the canonical array back to the
            stored array order (``None`` when the source already is canonical).
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    path: Path | None = None
    source_affine: np.ndarray | None = None
    source_ornt: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)

    @property
    def source_shape(self) -> tuple[int, ...]:
        """Shape of the array in the source file's own index order."""
        if self.source_ornt is None:
            return self.shape
        return tuple(self.shape[int(axis)] for axis in _invert_ornt(self.source_ornt)[:, 0])

    @classmethod
    def from_canonical(cls, array, spacing, origin=(0.0, 0.0, 0.0), path=None) -> "Volume":
        """Wrap an array that already is in canonical ``(z, y, x)`` order.

        ``origin`` is the RAS+ position (mm) of voxel ``array[0, 0, 0]``.
        """
        sz, sy, sx = (float(s) for s in spacing)
        affine = np.eye(4)
        # columns: axis 0 → +S, axis 1 → +P (−A), axis 2 → +L (−R)
        affine[:3, :3] = [[0.0, 0.0, -sx], [0.0, -sy, 0.0], [sz, 0.0, 0.0]]
        affine[:3, 3] = origin
        return cls(np.asarray(array), (sz, sy, sx), affine, path, affine.copy(), None)

    def to_source_order(self, array: np.ndarray) -> np.ndarray:
        """Take a canonical-order array (same shape as ``self.array``) to the source's index order."""
        if array.shape != self.shape:
            raise ShapeError(f"array shape {array.shape} differs from volume shape {self.shape}", self.path)
        if self.source_ornt is None:
            return array
        return nio.apply_orientation(array, self.source_ornt)

    def from_source_order(self, array: np.ndarray) -> np.ndarray:
        """Reorient an array stored in the source's index order the way ``self.array`` was."""
        if tuple(array.shape) != self.source_shape:
            raise ShapeError(
                f"array shape {tuple(array.shape)} differs from the source shape {self.source_shape}", self.path
            )
        if self.source_ornt is None:
            return array
        return nio.apply_orientation(array, _invert_ornt(self.source_ornt))


# --------------------------------------------------------------------------- reading


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


def read_label(path: str | os.PathLike, like: Volume) -> np.ndarray:
    """Read a label file voxel-for-voxel onto ``like`` and return it in ``like``'s canonical order.

    The label's stored array must have the shape of ``like``'s source array; it is reoriented
    with ``like``'s transform (not its own header), so a label whose header differs slightly
    from its image (as happens in LiTS) still matches voxel for voxel. A header whose
    orientation differs from the image's triggers a warning. Values are returned as stored
    (integers for integer files); DICOM masks are read raw, without the modality LUT.
    """
    path = Path(path)
    stored, affine = _read_stored(path, modality=None, rescale=False)
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
    if stored.dtype.kind == "f":
        if not np.isfinite(stored).all():
            raise InvalidDataError("label has NaN or infinite voxels", path)
        if np.array_equal(stored, np.round(stored)):
            stored = stored.astype(np.int32)
    return like.from_source_order(np.asarray(stored))


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


def _to_canonical(stored: np.ndarray, affine: np.ndarray, path: Path | None, dtype=None) -> Volume:
    """Reorient a (stored array, voxel→RAS+ affine) pair to the canonical (S, P, L) order.

    The reorientation is a view (flips and transposes); the one copy made converts to ``dtype``.
    """
    source_ornt = nio.io_orientation(affine)
    to_canonical = nio.ornt_transform(source_ornt, _CANONICAL_ORNT)
    array = nio.apply_orientation(stored, to_canonical)
    canonical_affine = affine @ nio.inv_ornt_aff(to_canonical, stored.shape)
    spacing = tuple(float(s) for s in np.linalg.norm(canonical_affine[:3, :3], axis=0))
    back = nio.ornt_transform(_CANONICAL_ORNT, source_ornt)
    identity = np.array_equal(back, [[0, 1], [1, 1], [2, 1]])
    return Volume(
        array=np.ascontiguousarray(array, dtype=dtype),
        spacing=spacing,
        affine=canonical_affine,
        path=path,
        source_affine=np.asarray(affine, dtype=float),
        source_ornt=None if identity else back,
    )


def _invert_ornt(ornt: np.ndarray) -> np.ndarray:
    """Inverse of a nibabel orientation transform (axis permutation with flips)."""
    inverse = np.empty_like(ornt)
    for axis, (target, flip) in enumerate(ornt):
        inverse[int(target)] = (axis, flip)
    return inverse


# --------------------------------------------------------------------------- DICOM

#: Files in a DICOM folder that are never slices.
_NOT_DICOM_SUFFIXES = {".txt", ".json", ".xml", ".md", ".csv", ".ini", ".png", ".jpg", ".jpeg",
                       ".zip", ".pdf", ".htm", ".html", ".log", ".db"}
_NOT_DICOM_NAMES = {"dicomdir", "thumbs.db", "desktop.ini"}
_REQUIRED_TAGS = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns")


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and p.name.lower() not in _NOT_DICOM_NAMES
        and p.suffix.lower() not in _NOT_DICOM_SUFFIXES
    )


def _read_dicom_header(path: Path):
    """Parse one file's header (pixel data stays on disk until used); ``None`` if not DICOM.

    A file with the ``DICM`` marker that fails to parse is corrupt; a file without it is
    tried as a preamble-less DICOM (old exports) and otherwise is not DICOM at all.
    """
    import pydicom

    with open(path, "rb") as handle:
        marked = handle.read(132)[128:] == b"DICM"
    try:
        dataset = pydicom.dcmread(path, defer_size="64 KB", force=not marked)
    except Exception as error:
        if not marked:
            return None
        raise CorruptFileError(f"cannot read DICOM file: {error}", path) from error
    if "PixelData" not in dataset:
        if not marked:
            return None
        raise CorruptFileError("not a DICOM image (no pixel data)", path)
    return dataset


def _read_single_dicom(path: Path) -> NoReturn:
    dataset = _read_dicom_header(path)
    if dataset is None:
        raise UnsupportedFormatError("not a DICOM file, nor any format liverseg reads", path)
    if int(getattr(dataset, "NumberOfFrames", 1) or 1) > 1:
        raise UnsupportedFormatError("multi-frame DICOM is not supported; use a series of slices", path)
    raise ShapeError("a single 2D DICOM slice; pass the folder holding the whole series", path)


def _read_dicom_series(folder: Path, *, modality: str | None, rescale: bool):
    """One DICOM series → (array indexed (column, row, slice), voxel→RAS+ affine).

    Slices are ordered by their position along the slice normal (ImagePositionPatient ·
    (row × column direction)), never by file name or InstanceNumber, which is the order
    ITK/GDCM use; the affine is DICOM's LPS geometry turned into RAS+.
    """
    files, headers = [], []
    for file in _dicom_files(folder):
        header = _read_dicom_header(file)
        if header is None:
            warnings.warn(f"{file}: not a DICOM file, skipped", stacklevel=3)
        else:
            files.append(file)
            headers.append(header)
    if not files:
        raise DicomSeriesError("folder holds no DICOM files", folder)
    for f, ds in zip(files, headers):
        missing = [tag for tag in _REQUIRED_TAGS if tag not in ds]
        if missing:
            raise CorruptFileError(f"DICOM file lacks {', '.join(missing)}", f)
    series = {}
    for f, ds in zip(files, headers):
        series.setdefault(str(getattr(ds, "SeriesInstanceUID", "")), []).append(f.name)
    if len(series) > 1:
        described = "; ".join(
            f"{uid or '<none>'} ({len(names)} files, e.g. {names[0]})" for uid, names in series.items()
        )
        raise DicomSeriesError(f"folder holds {len(series)} series: {described}", folder)
    if modality is not None:
        for f, ds in zip(files, headers):
            found = str(getattr(ds, "Modality", "") or "")
            if found.upper() != modality:
                raise ModalityError(f"modality is {found or 'missing'}, expected {modality}", f)
    if len(files) < 2:
        raise ShapeError("a single 2D DICOM slice, not a volume", files[0])

    orientation = np.asarray(headers[0].ImageOrientationPatient, dtype=float)
    row_cosine, column_cosine = orientation[:3], orientation[3:]
    normal = np.cross(row_cosine, column_cosine)
    for f, ds in zip(files, headers):
        if not np.allclose(np.asarray(ds.ImageOrientationPatient, dtype=float), orientation, atol=1e-4):
            raise DicomSeriesError("slices have different ImageOrientationPatient", f)
        if (ds.Rows, ds.Columns) != (headers[0].Rows, headers[0].Columns):
            raise DicomSeriesError(
                f"slice size {ds.Rows}x{ds.Columns} differs from {headers[0].Rows}x{headers[0].Columns}", f
            )
    positions = np.array([np.asarray(ds.ImagePositionPatient, dtype=float) for ds in headers])
    distances = positions @ normal
    order = np.argsort(distances, kind="stable")
    files = [files[i] for i in order]
    headers = [headers[i] for i in order]
    positions, distances = positions[order], distances[order]
    steps = np.diff(distances)
    for i in np.flatnonzero(steps < 1e-2):
        raise DicomSeriesError(
            f"duplicate slices at position {distances[i]:.3f} mm: {files[i].name} and {files[i + 1].name}", folder
        )
    median = float(np.median(steps))
    for i in np.flatnonzero(steps > 1.5 * median):
        raise DicomSeriesError(
            f"missing slice(s) between {files[i].name} ({distances[i]:.3f} mm) and "
            f"{files[i + 1].name} ({distances[i + 1]:.3f} mm); the usual spacing is {median:.3f} mm",
            folder,
        )

    slices = [_dicom_pixels(f, ds, rescale) for f, ds in zip(files, headers)]
    dtype = functools.reduce(np.promote_types, {s.dtype for s in slices})
    volume = np.stack([s.astype(dtype, copy=False) for s in slices])  # (slice, row, column)

    row_spacing, column_spacing = (float(v) for v in headers[0].PixelSpacing)
    lps = np.eye(4)
    lps[:3, 0] = row_cosine * column_spacing  # index i: along a row, one column to the next
    lps[:3, 1] = column_cosine * row_spacing  # index j: down a column, one row to the next
    lps[:3, 2] = (positions[-1] - positions[0]) / (len(files) - 1)
    lps[:3, 3] = positions[0]
    return volume.transpose(2, 1, 0), _LPS_TO_RAS @ lps


def _dicom_pixels(path: Path, dataset, rescale: bool) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut

    try:
        pixels = dataset.pixel_array
        if rescale:
            pixels = apply_modality_lut(pixels, dataset)
            if pixels.dtype == np.float64:  # float32 keeps HU far finer than 0.01 and halves memory
                pixels = pixels.astype(np.float32)
    except Exception as error:  # truncated pixel data, unsupported compression, ...
        message = str(error)
        if "handler" in message.lower() or "plugin" in message.lower():
            raise UnsupportedFormatError(f"cannot decode pixel data: {message}", path) from error
        raise CorruptFileError(f"cannot decode pixel data: {message}", path) from error
    if pixels.ndim != 2:
        raise UnsupportedFormatError(f"expected one 2D slice per file, got pixel data of shape {pixels.shape}", path)
    return pixels


# --------------------------------------------------------------------------- writing


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


__all__ = ["CANONICAL_AXCODES", "Volume", "read_label", "read_volume", "write_volume"]
