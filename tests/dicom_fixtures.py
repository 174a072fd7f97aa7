"""Write small DICOM series (and 3D-IRCADb-style patient folders) from arrays, for tests.

Geometry follows DICOM: patient coordinates are LPS+ (mm); in a slice, pixel ``[r, c]`` lies
at ``origin + c * column_spacing * row_cosine + r * row_spacing * column_cosine`` and slice
``k`` of ``slices`` is shifted by ``k * slice_step`` mm along ``row_cosine × column_cosine``.
``ras_affine`` gives the matching voxel→RAS+ matrix for index ``(c, r, k)`` so a test can
sample a world-space phantom on the grid (``slices_from_world``).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

AXIAL = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))  # the usual supine axial IOP (LPS)


def ras_affine(shape, *, pixel_spacing=(0.8, 0.7), slice_step=2.5, origin=(-20.0, -30.0, 100.0),
               orientation=AXIAL) -> np.ndarray:
    """Voxel (column, row, slice) → RAS+ matrix of the series ``write_dicom_series`` writes."""
    row_cosine, column_cosine = (np.asarray(v, float) for v in orientation)
    normal = np.cross(row_cosine, column_cosine)
    lps = np.eye(4)
    lps[:3, 0] = row_cosine * pixel_spacing[1]
    lps[:3, 1] = column_cosine * pixel_spacing[0]
    lps[:3, 2] = normal * slice_step
    lps[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def slices_from_world(field, shape, **geometry) -> np.ndarray:
    """Sample ``field(x, y, z)`` (RAS+ mm arrays → values) on a series grid; returns (slice, row, column)."""
    n, rows, columns = shape
    affine = ras_affine(shape, **geometry)
    c, r, k = np.meshgrid(np.arange(columns), np.arange(rows), np.arange(n), indexing="ij")
    xyz = affine[:3, :3] @ np.stack([c.ravel(), r.ravel(), k.ravel()]) + affine[:3, 3:]
    values = field(*xyz).reshape(columns, rows, n)
    return values.transpose(2, 1, 0)


def write_dicom_series(folder, slices, *, pixel_spacing=(0.8, 0.7), slice_step=2.5,
                       origin=(-20.0, -30.0, 100.0), orientation=AXIAL, file_order="descending",
                       shuffle_instances=True, name="image_{}", modality="CT", series_uid=None,
                       slope=1.0, intercept=-1024.0, unsigned=False, seed=0) -> list[Path]:
    """Write ``slices`` (slice, row, column) as one DICOM series in ``folder``.

    Files are named ``name.format(i)`` (no extension by default, like 3D-IRCADb) and
    numbered in ``file_order`` of position ("ascending", "descending" or "shuffled");
    InstanceNumbers are shuffled independently so neither can be trusted for ordering.
    Values are stored as ``(value - intercept) / slope`` (16-bit).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    slices = np.asarray(slices, dtype=float)
    n, rows, columns = slices.shape
    rng = np.random.default_rng(seed)
    row_cosine, column_cosine = (np.asarray(v, float) for v in orientation)
    normal = np.cross(row_cosine, column_cosine)
    series_uid = series_uid or generate_uid()
    study_uid, frame_uid = generate_uid(), generate_uid()
    order = {"ascending": np.arange(n), "descending": np.arange(n)[::-1], "shuffled": rng.permutation(n)}[file_order]
    instances = rng.permutation(n) + 1 if shuffle_instances else np.arange(n) + 1
    paths = []
    for file_index, k in enumerate(order):
        stored = np.round((slices[k] - intercept) / slope)
        stored = stored.astype(np.uint16 if unsigned else np.int16)
        position = np.asarray(origin, float) + k * slice_step * normal
        path = folder / name.format(file_index)
        _write_slice(path, stored, position, row_cosine, column_cosine, pixel_spacing, slice_step,
                     modality, series_uid, study_uid, frame_uid, int(instances[file_index]), slope, intercept)
        paths.append(path)
    return paths


def _write_slice(path, stored, position, row_cosine, column_cosine, pixel_spacing, thickness, modality,
                 series_uid, study_uid, frame_uid, instance, slope, intercept):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientID = "phantom"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row_cosine, *column_cosine)]
    ds.PixelSpacing = [f"{v:.6f}" for v in pixel_spacing]
    ds.SliceThickness = f"{abs(thickness):.6f}"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
    ds.RescaleType = "HU"
    ds.PixelData = stored.tobytes()
    ds.save_as(path, enforce_file_format=True)


def zip_folder(folder, zip_path=None) -> Path:
    """Zip ``folder`` with its own name as the top folder (as 3D-IRCADb ships), then delete it."""
    folder = Path(folder)
    zip_path = Path(zip_path or folder.with_suffix(".zip"))
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(folder.name + "/", "")
        for file in sorted(folder.rglob("*")):
            archive.write(file, Path(folder.name) / file.relative_to(folder))
    shutil.rmtree(folder)
    return zip_path


def write_ircadb_case(folder, image, masks: dict, *, zipped=False, mask_value=255, **geometry) -> Path:
    """A ``3Dircadb1.N`` patient folder: PATIENT_DICOM/image_K and MASKS_DICOM/<name>/image_K.

    ``masks`` maps a mask folder name (``"liver"``, ``"livertumor01"``, ``"portalvein"``...) to
    a boolean (slice, row, column) array, stored as 0/``mask_value``. With ``zipped`` the two
    folders become ``PATIENT_DICOM.zip`` and ``MASKS_DICOM.zip``, each holding its own top folder.
    """
    folder = Path(folder)
    geometry.setdefault("seed", 0)
    write_dicom_series(folder / "PATIENT_DICOM", image, **geometry)
    for index, (name, mask) in enumerate(masks.items()):
        mask_geometry = {**geometry, "seed": geometry["seed"] + index + 1}
        write_dicom_series(folder / "MASKS_DICOM" / name, np.asarray(mask, float) * mask_value,
                           intercept=0.0, unsigned=True, **mask_geometry)
    if zipped:
        zip_folder(folder / "PATIENT_DICOM")
        zip_folder(folder / "MASKS_DICOM")
    return folder


def read_sitk_series(folder):
    """The series as SimpleITK reads it (ImageSeriesReader, GDCM's ordering)."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


__all__ = ["AXIAL", "ras_affine", "slices_from_world", "write_dicom_series", "write_ircadb_case",
           "zip_folder", "read_sitk_series"]
