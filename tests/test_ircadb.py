"""liverseg.datasets.ircadb: 3D-IRCADb patient folders, zipped or not, as LiTS-style labels."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest
import SimpleITK as sitk

from liverseg import errors
from liverseg.datasets import ircadb
from liverseg.io import write_volume
from tests.dicom_fixtures import read_sitk_series, write_ircadb_case, zip_folder

SHAPE = (6, 20, 18)  # slices, rows, columns (standard axial: columns → patient left, rows → posterior)


def _phantom(seed=0):
    """Image and masks; the tumour sits at the patient's right-anterior-superior corner of the liver."""
    image = np.full(SHAPE, -50.0) + np.random.default_rng(seed).normal(0, 5, SHAPE).round()
    liver = np.zeros(SHAPE, bool)
    liver[1:, 2:12, 1:10] = True
    tumour = np.zeros(SHAPE, bool)
    tumour[4:, 3:6, 2:5] = True
    cyst = np.zeros(SHAPE, bool)
    cyst[2, 8:10, 6:8] = True
    vein = np.zeros(SHAPE, bool)
    vein[1:, 10:14, 4:6] = True  # partly inside the liver: must stay liver
    image[liver] = 110
    image[tumour | cyst] = 60
    masks = {"liver": liver, "livertumor01": tumour, "livercyst": cyst, "portalvein": vein}
    return image, masks, liver, tumour | cyst


def _case(folder, zipped=False, masks=None, seed=0, **kw):
    image, default_masks, liver, lesion = _phantom(seed)
    write_ircadb_case(folder, image, masks or default_masks, zipped=zipped, seed=seed, **kw)
    return image, liver, lesion


@pytest.mark.parametrize(
    "name, lesion",
    [("livertumor01", True), ("livertumor1", True), ("livertumors", True), ("tumor", True), ("LiverTumor_02", True),
     ("livercyst", True), ("liverkyst", True), ("metastasectomie", True), ("metastasis", True),
     ("liver", False), ("portalvein", False), ("venoussystem", False), ("artery", False), ("venacava", False),
     ("gallbladder", False), ("kidneycyst", False), ("hyperplasie", False), ("Stones", False)],
)
def test_lesion_rule(name, lesion):
    assert ircadb.is_lesion_mask(name) is lesion


@pytest.mark.parametrize("zipped", [False, True], ids=["folders", "zips"])
def test_load_case(tmp_path, zipped):
    folder = tmp_path / "3Dircadb1.7"
    image, liver, lesion = _case(folder, zipped=zipped)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    case = ircadb.load_case(folder)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing extracted here
    assert case.case_id == "ircadb-7"
    # standard axial IOP + files written top-to-bottom: canonical order is the physical (slice, row, column)
    np.testing.assert_allclose(case.image.array, image, atol=0.5)
    expected = np.where(lesion, 2, np.where(liver, 1, 0))
    np.testing.assert_array_equal(case.label, expected)
    z, y, x = np.argwhere(case.label == 2).mean(axis=0)
    assert z > 3 and y < 10 and x < 9  # superior, anterior (top), patient right (image left)
    assert case.image.path == folder / ("PATIENT_DICOM.zip" if zipped else "PATIENT_DICOM")


def test_mask_values_zero_one_and_odd_lesion_names(tmp_path):
    image, masks, liver, _ = _phantom()
    tumours = {"livertumors": masks.pop("livertumor01"), "metastasectomie": masks.pop("livercyst")}
    write_ircadb_case(tmp_path / "3Dircadb1.2", image, {**masks, **tumours}, mask_value=1)
    case = ircadb.load_case(tmp_path / "3Dircadb1.2")
    lesion = tumours["livertumors"] | tumours["metastasectomie"]
    np.testing.assert_array_equal(case.label, np.where(lesion, 2, np.where(liver, 1, 0)))


def test_label_overlays_patient_dicom_in_sitk(tmp_path):
    folder = tmp_path / "3Dircadb1.1"
    _case(folder, orientation=((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0)), file_order="shuffled")
    case = ircadb.load_case(folder)
    written = write_volume(case.label, tmp_path / "label.nii.gz", like=case.image)
    source, result = read_sitk_series(folder / "PATIENT_DICOM"), sitk.ReadImage(str(written))
    assert result.GetSize() == source.GetSize()
    for get in ("GetSpacing", "GetOrigin", "GetDirection"):
        np.testing.assert_allclose(getattr(result, get)(), getattr(source, get)(), atol=1e-4)
    liver = sitk.GetArrayFromImage(read_sitk_series(folder / "MASKS_DICOM" / "liver")) > 0
    tumour = sitk.GetArrayFromImage(read_sitk_series(folder / "MASKS_DICOM" / "livertumor01")) > 0
    cyst = sitk.GetArrayFromImage(read_sitk_series(folder / "MASKS_DICOM" / "livercyst")) > 0
    np.testing.assert_array_equal(sitk.GetArrayFromImage(result), np.where(tumour | cyst, 2, np.where(liver, 1, 0)))


def test_missing_liver_mask(tmp_path):
    image, masks, _, _ = _phantom()
    masks.pop("liver")
    write_ircadb_case(tmp_path / "3Dircadb1.4", image, masks)
    with pytest.raises(errors.DatasetLayoutError, match=r"3Dircadb1\.4.*no liver mask"):
        ircadb.load_case(tmp_path / "3Dircadb1.4")


def test_missing_patient_dicom(tmp_path):
    (tmp_path / "3Dircadb1.4" / "MASKS_DICOM").mkdir(parents=True)
    with pytest.raises(errors.DatasetLayoutError, match="PATIENT_DICOM"):
        ircadb.load_case(tmp_path / "3Dircadb1.4")
    with pytest.raises(errors.MissingFileError):
        ircadb.load_case(tmp_path / "3Dircadb1.5")


def test_mask_with_other_geometry(tmp_path):
    image, masks, _, _ = _phantom()
    masks["liver"] = masks["liver"][:-1]
    write_ircadb_case(tmp_path / "3Dircadb1.3", image, masks)
    with pytest.raises(errors.ShapeError, match="liver"):
        ircadb.load_case(tmp_path / "3Dircadb1.3")


def test_corrupt_slice_inside_zip_is_named(tmp_path):
    folder = tmp_path / "3Dircadb1.9"
    _case(folder)
    victim = folder / "PATIENT_DICOM" / "image_2"
    victim.write_bytes(victim.read_bytes()[:-100])
    zip_folder(folder / "PATIENT_DICOM")
    with pytest.raises(errors.CorruptFileError, match=r"PATIENT_DICOM\.zip:PATIENT_DICOM/image_2"):
        ircadb.load_case(folder)


def test_unsafe_zip_member(tmp_path):
    folder = tmp_path / "3Dircadb1.9"
    _case(folder, zipped=True)
    with zipfile.ZipFile(folder / "PATIENT_DICOM.zip", "a") as archive:
        archive.writestr("../evil", b"x")
    with pytest.raises(errors.UnsafeArchiveError, match="PATIENT_DICOM.zip"):
        ircadb.load_case(folder)
    assert not (tmp_path / "evil").exists()


def test_iter_cases_sorted_numerically_with_zip_in_zip(tmp_path):
    root = tmp_path / "3Dircadb1"
    _case(root / "3Dircadb1.10", seed=10)
    _case(root / "3Dircadb1.2", zipped=True, seed=2)
    _case(tmp_path / "download" / "3Dircadb1.3", zipped=True, seed=3)
    shutil.make_archive(str(root / "3Dircadb1.3"), "zip", tmp_path / "download", "3Dircadb1.3")
    (root / "notes.txt").write_text("not a patient")
    assert [case_id for case_id, _ in ircadb.find_cases(root)] == ["ircadb-2", "ircadb-3", "ircadb-10"]
    cases = list(ircadb.iter_cases(root, progress=False))
    assert [c.case_id for c in cases] == ["ircadb-2", "ircadb-3", "ircadb-10"]
    for case, seed in zip(cases, (2, 3, 10)):
        image, _, liver, lesion = _phantom(seed)
        np.testing.assert_allclose(case.image.array, image, atol=0.5)
        np.testing.assert_array_equal(case.label, np.where(lesion, 2, np.where(liver, 1, 0)))
    # the root of the download (one level up) works too
    assert [c for c, _ in ircadb.find_cases(tmp_path)] == ["ircadb-2", "ircadb-3", "ircadb-10"]


def test_empty_root(tmp_path):
    with pytest.raises(errors.DatasetLayoutError, match="no 3Dircadb1"):
        ircadb.find_cases(tmp_path)
