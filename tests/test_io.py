"""liverseg.io: readers for every format, the canonical orientation contract, write-back, errors."""

from __future__ import annotations

import gzip
import os
import shutil

import nibabel as nib
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from liverseg import errors
from liverseg.io import Volume, read_label, read_volume, write_volume
from liverseg.io.atomic import atomic_folder, atomic_path, atomic_write_bytes, atomic_write_text
from tests.dicom_fixtures import read_sitk_series, ras_affine, slices_from_world, write_dicom_series

# A marker blob at the patient's right-anterior-superior, in RAS+ mm (the grids are centred on 0).
MARKER = np.array([9.0, 8.0, 7.0])
DIRECTIONS = {"R": (1, 0, 0), "L": (-1, 0, 0), "A": (0, 1, 0), "P": (0, -1, 0), "S": (0, 0, 1), "I": (0, 0, -1)}


def phantom(x, y, z):
    """Body-ish HU field with the marker blob: 400 HU in the blob, 40 HU elsewhere."""
    inside = (x - MARKER[0]) ** 2 + (y - MARKER[1]) ** 2 + (z - MARKER[2]) ** 2 < 4.0**2
    return np.where(inside, 400.0, 40.0)


def centred_affine(axcodes, shape, zooms, rotation_deg=0.0):
    """voxel→RAS+ affine whose stored axis i points towards ``axcodes[i]``, grid centred on 0."""
    directions = np.array([DIRECTIONS[c] for c in axcodes], float).T * np.asarray(zooms, float)
    angle = np.deg2rad(rotation_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ directions
    affine[:3, 3] = -affine[:3, :3] @ ((np.asarray(shape) - 1) / 2)
    return affine


def sample(affine, shape):
    index = np.indices(shape).reshape(3, -1)
    xyz = affine[:3, :3] @ index + affine[:3, 3:]
    return phantom(*xyz).reshape(shape)


def write_nifti(path, axcodes, shape=(22, 26, 18), zooms=(1.5, 1.2, 2.0), rotation_deg=0.0, dtype=np.int16):
    affine = centred_affine(axcodes, shape, zooms, rotation_deg)
    nib.save(nib.Nifti1Image(sample(affine, shape).astype(dtype), affine), path)
    return path


def assert_marker_is_right_anterior_superior(volume: Volume):
    """Right → small x (image left), anterior → small y (top), superior → large z."""
    blob = np.argwhere(volume.array > 200).mean(axis=0)
    nz, ny, nx = volume.shape
    assert blob[0] > nz / 2 + 1, f"marker z {blob[0]} not superior in {volume.shape}"
    assert blob[1] < ny / 2 - 1, f"marker y {blob[1]} not anterior in {volume.shape}"
    assert blob[2] < nx / 2 - 1, f"marker x {blob[2]} not on the image's left in {volume.shape}"
    # the canonical affine maps the blob back to where it is in the world
    world = volume.affine[:3, :3] @ blob + volume.affine[:3, 3]
    np.testing.assert_allclose(world, MARKER, atol=1.5)


def sitk_lps_array(image):
    return sitk.GetArrayFromImage(sitk.DICOMOrient(image, "LPS"))


# ----------------------------------------------------------------- the orientation contract


@pytest.mark.parametrize(
    "axcodes", [("R", "A", "S"), ("L", "P", "S"), ("L", "A", "S"), ("A", "I", "R"), ("S", "P", "L")]
)
def test_nifti_marker_lands_right_anterior_superior(tmp_path, axcodes):
    path = write_nifti(tmp_path / "ct.nii.gz", axcodes)
    volume = read_volume(path)
    assert_marker_is_right_anterior_superior(volume)
    assert volume.array.dtype == np.float32
    # the same array SimpleITK gives for the image reoriented to LPS
    np.testing.assert_array_equal(volume.array, sitk_lps_array(sitk.ReadImage(str(path))))
    zooms = dict(zip(axcodes, (1.5, 1.2, 2.0)))
    expected = tuple(zooms.get(a, zooms.get(b)) for a, b in (("S", "I"), ("P", "A"), ("L", "R")))
    np.testing.assert_allclose(volume.spacing, expected, rtol=1e-6)


def test_sitk_lps_direction_is_identity_for_canonical_arrays(tmp_path):
    """Our reading of 'LPS' in DICOMOrient: identity direction, array axes (z→S, y→P, x→L)."""
    path = write_nifti(tmp_path / "ct.nii", ("R", "A", "S"))
    image = sitk.DICOMOrient(sitk.ReadImage(str(path)), "LPS")
    np.testing.assert_allclose(image.GetDirection(), np.eye(3).ravel(), atol=1e-6)


def test_oblique_nifti_keeps_the_contract(tmp_path):
    path = write_nifti(tmp_path / "ct.nii.gz", ("L", "P", "S"), rotation_deg=20.0)
    assert_marker_is_right_anterior_superior(read_volume(path))


GEOMETRIES = {
    "axial, files top to bottom": dict(file_order="descending"),
    "axial, mirrored rows, descending normal": dict(orientation=((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0))),
    "coronal acquisition": dict(orientation=((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)), file_order="shuffled"),
}


@pytest.mark.parametrize("geometry", GEOMETRIES.values(), ids=GEOMETRIES.keys())
def test_dicom_marker_and_sitk_agree(tmp_path, geometry):
    shape = (12, 30, 28)  # slices, rows, columns
    grid = dict(pixel_spacing=(1.3, 1.1), slice_step=2.0, **{k: v for k, v in geometry.items() if k == "orientation"})
    centre = ras_affine(shape, **grid)[:3, :3] @ ((np.array(shape[::-1]) - 1) / 2)
    origin = np.diag([-1, -1, 1]) @ -centre  # LPS origin that centres the grid on 0
    slices = slices_from_world(phantom, shape, origin=origin, **grid)
    write_dicom_series(tmp_path / "series", slices, origin=origin, **grid,
                       **{k: v for k, v in geometry.items() if k == "file_order"})
    volume = read_volume(tmp_path / "series")
    assert_marker_is_right_anterior_superior(volume)
    reference = read_sitk_series(tmp_path / "series")
    np.testing.assert_array_equal(volume.array, sitk_lps_array(reference))
    # voxel [k, j, i] of our array is where SimpleITK says that voxel is
    lps = sitk.DICOMOrient(reference, "LPS")
    k, j, i = 3, 5, 7
    expected = np.array(lps.TransformIndexToPhysicalPoint((i, j, k))) * [-1, -1, 1]
    np.testing.assert_allclose(volume.affine[:3, :3] @ [k, j, i] + volume.affine[:3, 3], expected, atol=1e-4)


def test_dicom_hu_comes_from_rescale_tags(tmp_path):
    hu = np.tile(np.linspace(-1000, 1200, 24), (4, 20, 1)).round()
    write_dicom_series(tmp_path / "s", hu, slope=2.0, intercept=-1024.0, file_order="ascending")
    volume = read_volume(tmp_path / "s")
    # standard axial IOP: columns run right→left, rows anterior→posterior, slices ascend, so the
    # written (slice, row, column) array already is canonical
    np.testing.assert_allclose(volume.array, hu, atol=1.0)
    assert volume.array.min() <= -999


# ----------------------------------------------------------------- other formats


def test_nrrd_matches_sitk(tmp_path):
    shape, zooms = (20, 24, 16), (1.2, 0.9, 2.5)
    affine = centred_affine(("L", "P", "S"), shape, zooms)
    header = {
        "space": "left-posterior-superior",
        "space directions": (np.diag([-1, -1, 1]) @ affine[:3, :3]).T,
        "space origin": np.diag([-1, -1, 1]) @ affine[:3, 3],
    }
    path = tmp_path / "ct.nrrd"
    nrrd.write(str(path), sample(affine, shape).astype(np.int16), header)
    volume = read_volume(path)
    assert_marker_is_right_anterior_superior(volume)
    np.testing.assert_array_equal(volume.array, sitk_lps_array(sitk.ReadImage(str(path))))
    np.testing.assert_allclose(volume.spacing, (2.5, 0.9, 1.2))


def test_analyze_pair(tmp_path):
    shape, zooms = (20, 24, 16), (1.2, 0.9, 2.5)
    header = nib.AnalyzeHeader()
    header.set_data_shape(shape)
    header.set_zooms(zooms)
    affine = header.get_base_affine()  # ANALYZE stores only zooms; nibabel's convention is LAS, centred
    assert nib.aff2axcodes(affine) == ("L", "A", "S")
    data = sample(affine, shape).astype(np.int16)
    nib.AnalyzeImage(data, affine, header).to_filename(tmp_path / "ct.img")
    for name in ("ct.hdr", "ct.img"):
        volume = read_volume(tmp_path / name)
        np.testing.assert_array_equal(np.sort(volume.array.ravel()), np.sort(data.ravel()))
        assert_marker_is_right_anterior_superior(volume)


# ----------------------------------------------------------------- writing back


def _assert_same_geometry(a, b):
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-4)


@pytest.mark.parametrize("geometry", GEOMETRIES.values(), ids=GEOMETRIES.keys())
def test_label_for_dicom_overlays_in_sitk(tmp_path, geometry):
    slices = slices_from_world(phantom, (10, 24, 20), **{k: v for k, v in geometry.items() if k == "orientation"},
                               origin=(-10.0, -10.0, 0.0))
    write_dicom_series(tmp_path / "series", slices, origin=(-10.0, -10.0, 0.0), **geometry)
    volume = read_volume(tmp_path / "series")
    label = (volume.array > 200).astype(np.uint8)
    written = write_volume(label, tmp_path / "out" / "label.nii.gz", like=volume)
    source, result = read_sitk_series(tmp_path / "series"), sitk.ReadImage(str(written))
    _assert_same_geometry(result, source)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(result), sitk.GetArrayFromImage(source) > 200)
    assert sitk.GetArrayFromImage(result).dtype == np.uint8


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("axcodes, rotation", [(("A", "I", "R"), 0.0), (("L", "P", "S"), 25.0), (("R", "A", "S"), 0.0)])
def test_label_for_nifti_overlays_in_sitk_and_nibabel(tmp_path, suffix, axcodes, rotation):
    source_path = write_nifti(tmp_path / f"ct{suffix}", axcodes, rotation_deg=rotation)
    volume = read_volume(source_path)
    written = write_volume(volume.array > 200, tmp_path / f"label{suffix}", like=volume)
    source, result = sitk.ReadImage(str(source_path)), sitk.ReadImage(str(written))
    _assert_same_geometry(result, source)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(result), sitk.GetArrayFromImage(source) > 200)
    stored = nib.load(written)
    np.testing.assert_allclose(stored.affine, nib.load(source_path).affine, atol=1e-4)
    # and it reads back onto the image, voxel for voxel
    np.testing.assert_array_equal(read_label(written, like=volume), volume.array > 200)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_write_without_like_is_canonical(tmp_path):
    array = np.zeros((4, 5, 6), np.float64)
    array[3, 0, 0] = 1
    path = write_volume(array, tmp_path / "x.nii", spacing=(2.0, 1.0, 0.5))
    volume = read_volume(path)
    np.testing.assert_array_equal(volume.array, array)
    assert volume.spacing == (2.0, 1.0, 0.5)
    assert nib.load(path).get_data_dtype() == np.float32


def test_from_canonical_round_trip(tmp_path):
    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    like = Volume.from_canonical(array, (2.0, 0.8, 0.7), origin=(10.0, -5.0, 3.0))
    volume = read_volume(write_volume(array, tmp_path / "x.nii.gz", like=like))
    np.testing.assert_array_equal(volume.array, array)
    np.testing.assert_allclose(volume.affine, like.affine, atol=1e-5)


def test_write_is_atomic(tmp_path, monkeypatch):
    like = Volume.from_canonical(np.zeros((3, 4, 5)), (1, 1, 1))

    def broken_save(image, filename):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(nib, "save", broken_save)
    with pytest.raises(OSError):
        write_volume(like.array, tmp_path / "label.nii.gz", like=like)
    assert list(tmp_path.iterdir()) == []


def test_write_rejects_bad_requests(tmp_path):
    like = Volume.from_canonical(np.zeros((3, 4, 5)), (1, 1, 1))
    with pytest.raises(errors.UnsupportedFormatError, match="label.png"):
        write_volume(like.array, tmp_path / "label.png", like=like)
    with pytest.raises(errors.ShapeError):
        write_volume(np.zeros((3, 4, 6)), tmp_path / "label.nii", like=like)


# ----------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(errors.MissingFileError, match="nope.nii.gz"):
        read_volume(tmp_path / "nope.nii.gz")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_truncated_nifti(tmp_path, suffix):
    path = write_nifti(tmp_path / f"ct{suffix}", ("R", "A", "S"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(errors.CorruptFileError, match=f"ct{suffix}"):
        read_volume(path)


def test_garbage_nifti(tmp_path):
    path = tmp_path / "ct.nii.gz"
    path.write_bytes(gzip.compress(b"not an image at all" * 10))
    with pytest.raises(errors.CorruptFileError, match="ct.nii.gz"):
        read_volume(path)


def _series(tmp_path, n=6, **kw):
    slices = np.full((n, 8, 9), 40.0)
    write_dicom_series(tmp_path / "s", slices, **kw)
    return tmp_path / "s"


def test_truncated_dicom_slice(tmp_path):
    folder = _series(tmp_path)
    victim = folder / "image_3"
    victim.write_bytes(victim.read_bytes()[:-60])
    with pytest.raises(errors.CorruptFileError, match="image_3"):
        read_volume(folder)


def test_two_series(tmp_path):
    folder = _series(tmp_path)
    write_dicom_series(folder, np.zeros((2, 8, 9)), name="other_{}", origin=(0, 0, -50))
    with pytest.raises(errors.DicomSeriesError, match="2 series"):
        read_volume(folder)


def test_missing_slice(tmp_path):
    folder = _series(tmp_path, file_order="ascending")
    (folder / "image_2").unlink()
    with pytest.raises(errors.DicomSeriesError, match="missing slice"):
        read_volume(folder)


def test_duplicate_slice(tmp_path):
    folder = _series(tmp_path)
    shutil.copy(folder / "image_2", folder / "image_2_copy")
    with pytest.raises(errors.DicomSeriesError, match="duplicate"):
        read_volume(folder)


def test_non_ct_modality(tmp_path):
    folder = _series(tmp_path, modality="MR")
    with pytest.raises(errors.ModalityError, match="MR"):
        read_volume(folder)


def test_2d_inputs(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((8, 9), np.int16), np.eye(4)), tmp_path / "flat.nii")
    with pytest.raises(errors.ShapeError, match="flat.nii"):
        read_volume(tmp_path / "flat.nii")
    nib.save(nib.Nifti1Image(np.zeros((8, 9, 1), np.int16), np.eye(4)), tmp_path / "one.nii.gz")
    with pytest.raises(errors.ShapeError, match="one.nii.gz"):
        read_volume(tmp_path / "one.nii.gz")
    folder = _series(tmp_path, n=1)
    with pytest.raises(errors.ShapeError, match="image_0"):
        read_volume(folder / "image_0")
    with pytest.raises(errors.ShapeError):
        read_volume(folder)


def test_nan_voxels(tmp_path):
    data = np.zeros((6, 7, 8), np.float32)
    data[1, 2, 3] = np.nan
    data[2, 2, 3] = np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(errors.InvalidDataError, match="2 voxels.*NaN"):
        read_volume(tmp_path / "nan.nii.gz")


@pytest.mark.parametrize("name", ["ct.png", "ct.mha", "notes.txt"])
def test_unsupported_extension(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x89PNG....")
    with pytest.raises(errors.UnsupportedFormatError, match=name):
        read_volume(tmp_path / name)


def test_non_dicom_files_in_a_series_folder_are_skipped(tmp_path):
    folder = _series(tmp_path)
    (folder / "README").write_text("exported by a scanner")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    with pytest.warns(UserWarning, match="README"):
        volume = read_volume(folder)
    assert volume.shape == (6, 8, 9)


def test_preamble_less_dicom(tmp_path):
    folder = _series(tmp_path)
    for file in folder.iterdir():
        file.write_bytes(file.read_bytes()[132:])  # strip preamble and DICM marker, as old exports do
    np.testing.assert_allclose(read_volume(folder).array, 40.0)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.DicomSeriesError, match="empty"):
        read_volume(tmp_path / "empty")


def test_label_shape_mismatch(tmp_path):
    volume = read_volume(write_nifti(tmp_path / "ct.nii.gz", ("R", "A", "S")))
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.uint8), np.eye(4)), tmp_path / "seg.nii.gz")
    with pytest.raises(errors.ShapeError, match="seg.nii.gz"):
        read_label(tmp_path / "seg.nii.gz", like=volume)


def test_no_stray_files_left_by_reading(tmp_path):
    path = write_nifti(tmp_path / "ct.nii.gz", ("R", "A", "S"))
    read_volume(path)
    assert sorted(os.listdir(tmp_path)) == ["ct.nii.gz"]


# ----------------------------------------------------------------- labels in their own geometry


def test_label_without_like_keeps_its_own_geometry(tmp_path):
    shape, zooms = (22, 26, 18), (1.5, 1.2, 2.0)
    affine = centred_affine(("A", "I", "R"), shape, zooms)
    affine[:3, 3] += (4.0, -7.0, 12.5)  # a non-identity affine: permuted, flipped, shifted
    stored = np.where(sample(centred_affine(("A", "I", "R"), shape, zooms), shape) > 200, 2, 0)
    stored[:, :3, :] = 1
    path = tmp_path / "seg.nii.gz"
    image = nib.Nifti1Image(stored.astype(np.uint8), affine)
    image.set_data_dtype(np.uint8)
    nib.save(image, path)

    label = read_label(path)
    assert isinstance(label, Volume)
    assert label.array.dtype == np.uint8  # as a label: no float cast, no HU rescale
    np.testing.assert_allclose(label.source_affine, affine, atol=1e-5)
    # the same canonical array and geometry as reading the file as an image
    image_volume = read_volume(path, dtype=None)
    np.testing.assert_array_equal(label.array, image_volume.array)
    np.testing.assert_allclose(label.affine, image_volume.affine, atol=1e-6)
    assert label.spacing == pytest.approx((1.2, 1.5, 2.0))  # (z, y, x) ← stored axes I, A, R
    np.testing.assert_array_equal(label.array, sitk_lps_array(sitk.ReadImage(str(path))))
    # and written back, it overlays the file it came from
    written = write_volume(label.array, tmp_path / "back.nii.gz", like=label)
    np.testing.assert_allclose(nib.load(written).affine, affine, atol=1e-5)
    np.testing.assert_array_equal(np.asanyarray(nib.load(written).dataobj), stored)


def test_label_without_like_reads_a_dicom_mask_series(tmp_path):
    mask = np.zeros((6, 10, 8), np.uint8)
    mask[1:5, 2:8, 1:6] = 1
    mask[2:4, 4:6, 2:4] = 2
    write_dicom_series(tmp_path / "mask", mask, modality="SEG", slope=1.0, intercept=0.0,
                       file_order="shuffled")
    label = read_label(tmp_path / "mask")  # no modality check, no rescale
    assert isinstance(label, Volume)
    assert label.array.dtype.kind in "iu"
    np.testing.assert_array_equal(label.array, mask)  # standard axial IOP: already canonical
    assert label.spacing == pytest.approx((2.5, 0.8, 0.7))
    k, j, i = 4, 7, 5  # voxel [k, j, i] is where the series puts (column i, row j, slice k)
    expected = ras_affine(mask.shape[::-1]) @ [i, j, k, 1.0]
    np.testing.assert_allclose(label.affine @ [k, j, i, 1.0], expected, atol=1e-4)
    with pytest.raises(errors.ModalityError):
        read_volume(tmp_path / "mask")  # as an image it is refused: not CT


def test_label_without_like_refuses_nan(tmp_path):
    stored = np.zeros((4, 5, 6), np.float32)
    stored[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(stored, np.eye(4)), tmp_path / "seg.nii")
    with pytest.raises(errors.InvalidDataError, match="seg.nii"):
        read_label(tmp_path / "seg.nii")
    whole = np.ones((4, 5, 6), np.float32)
    nib.save(nib.Nifti1Image(whole, np.eye(4)), tmp_path / "float.nii")
    assert read_label(tmp_path / "float.nii").array.dtype == np.int32


# ----------------------------------------------------------------- atomic writes


def _hidden(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_atomic_writes_appear_complete(tmp_path):
    text = "a,b\r\n1,2\n" * 1000
    assert atomic_write_text(tmp_path / "new" / "t.csv", text) == tmp_path / "new" / "t.csv"
    assert (tmp_path / "new" / "t.csv").read_bytes() == text.encode()  # as given, parent made
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01" * 5000)
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01" * 5000
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    with atomic_path(tmp_path / "a.npy") as temporary:
        assert temporary.parent == tmp_path and temporary.name.endswith(".tmp.npy")
        assert not temporary.exists() and not (tmp_path / "a.npy").exists()
        np.save(temporary, array)  # keeps the name: it already ends in .npy
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), array)
    with atomic_path(tmp_path / "seg.nii.gz") as temporary:
        nib.save(nib.Nifti1Image(array.astype(np.uint8), np.eye(4)), temporary)
    assert nib.load(tmp_path / "seg.nii.gz").shape == (2, 3, 4)
    with gzip.open(tmp_path / "seg.nii.gz") as f:  # compressed, as the name says
        f.read(1)
    assert _hidden(tmp_path) == [] and _hidden(tmp_path / "new") == []
    if os.name == "posix":  # created with the usual permissions, not mkstemp's 0600
        umask = os.umask(0)
        os.umask(umask)
        assert (tmp_path / "a.npy").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_atomic_path_failure_leaves_no_target_and_no_temporary(tmp_path, error):
    with pytest.raises(type(error)):
        with atomic_path(tmp_path / "out.nii.gz") as temporary:
            temporary.write_bytes(b"half a file")
            raise error
    assert list(tmp_path.iterdir()) == []


def test_atomic_failure_leaves_an_existing_target_untouched(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    target.write_text('{"epoch": 3}')
    with pytest.raises(ValueError, match="boom"):
        with atomic_path(target) as temporary:
            temporary.write_text('{"ep')
            raise ValueError("boom")
    with monkeypatch.context() as patch:  # the disk fails after the bytes were written
        patch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("I/O error")))
        with pytest.raises(OSError, match="I/O error"):
            atomic_write_text(target, '{"epoch": 4}')
    assert target.read_text() == '{"epoch": 3}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    atomic_write_text(target, '{"epoch": 5}')  # and a write that succeeds replaces it
    assert target.read_text() == '{"epoch": 5}'


def test_atomic_folder_swaps_in_whole_or_not_at_all(tmp_path):
    target = tmp_path / "case"
    with atomic_folder(target) as temporary:
        (temporary / "a.txt").write_text("one")
        assert not target.exists()
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as temporary:
            (temporary / "b.txt").write_text("half")
            raise RuntimeError("killed")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]  # the old folder is untouched
    with atomic_folder(target) as temporary:
        (temporary / "c.txt").write_text("two")
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]  # replaced as a whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]
