"""Reading one DICOM series folder into a stored array and its voxel→RAS+ affine."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import NoReturn

import numpy as np

from liverseg.errors import (
    CorruptFileError,
    DicomSeriesError,
    ModalityError,
    ShapeError,
    UnsupportedFormatError,
)

#: DICOM's patient coordinates are LPS+; nibabel's are RAS+.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

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
