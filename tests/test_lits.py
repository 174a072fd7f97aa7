"""liverseg.datasets.lits: finding and loading LiTS / Decathlon Task03_Liver cases."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from liverseg import errors
from liverseg.datasets import lits

SHAPE = (20, 18, 12)  # stored (i, j, k)
AFFINE = np.array([[-0.8, 0, 0, 10.0], [0, 0.8, 0, -20.0], [0, 0, 2.5, -300.0], [0, 0, 0, 1]])  # LAS, like LiTS


def _pair(folder, number, *, gz=False, affine=AFFINE, segmentation_affine=None, seg_shape=SHAPE, names=None):
    """A volume whose right-anterior-superior corner holds a 'lesion' and the liver next to it."""
    folder.mkdir(parents=True, exist_ok=True)
    volume = np.full(SHAPE, -100, np.int16)
    label = np.zeros(seg_shape, np.uint8)
    # stored axis 0 runs towards L (index 0 = right), axis 1 towards A, axis 2 towards S
    volume[:6, -6:, -4:] = 100 + number
    label[:6, -6:, -4:] = 1
    label[1:3, -3:-1, -2:] = 2
    suffix = ".nii.gz" if gz else ".nii"
    volume_name, seg_name = names or (f"volume-{number}{suffix}", f"segmentation-{number}{suffix}")
    nib.save(nib.Nifti1Image(volume, affine), folder / volume_name)
    nib.save(nib.Nifti1Image(label, affine if segmentation_affine is None else segmentation_affine), folder / seg_name)
    return folder / volume_name, folder / seg_name


def test_load_case_reorients_label_with_the_volume(tmp_path):
    volume_path, seg_path = _pair(tmp_path, 7)
    case = lits.load_case(volume_path, seg_path)
    assert case.case_id == "lits-7"
    assert case.label.dtype == np.uint8 and case.label.shape == case.image.shape == (12, 18, 20)
    liver = case.label > 0
    np.testing.assert_array_equal(liver, case.image.array > 0)
    # the patient's right-anterior-superior corner is at the image's left, top, last slice
    z, y, x = np.argwhere(case.label == 2).mean(axis=0)
    assert z > 9 and y < 3 and x < 6
    assert set(np.unique(case.label)) == {0, 1, 2}


def test_segmentation_header_is_not_trusted_over_the_volume(tmp_path):
    """A LiTS-style label whose header disagrees still matches voxel for voxel (with a warning)."""
    volume_path, seg_path = _pair(tmp_path, 3, segmentation_affine=np.eye(4))
    with pytest.warns(UserWarning, match="orientation"):
        case = lits.load_case(volume_path, seg_path)
    np.testing.assert_array_equal(case.label > 0, case.image.array > 0)


def test_shape_mismatch_names_both_files(tmp_path):
    volume_path, seg_path = _pair(tmp_path, 1, seg_shape=(20, 18, 11))
    with pytest.raises(errors.ShapeError) as raised:
        lits.load_case(volume_path, seg_path)
    assert "segmentation-1.nii" in str(raised.value) and "volume-1.nii" in str(raised.value)


def test_bad_label_values(tmp_path):
    volume_path, seg_path = _pair(tmp_path, 1)
    nib.save(nib.Nifti1Image(np.full(SHAPE, 3, np.uint8), AFFINE), seg_path)
    with pytest.raises(errors.InvalidDataError, match="segmentation-1.nii"):
        lits.load_case(volume_path, seg_path)


def test_float_labels_are_accepted(tmp_path):
    volume_path, seg_path = _pair(tmp_path, 1)
    label = np.asanyarray(nib.load(seg_path).dataobj).astype(np.float32)
    nib.save(nib.Nifti1Image(label, AFFINE), seg_path)
    case = lits.load_case(volume_path, seg_path)
    assert case.label.dtype == np.uint8 and case.label.max() == 2


def test_find_cases_in_batches_and_nested_folders(tmp_path):
    _pair(tmp_path / "Training Batch 1", 0)
    _pair(tmp_path / "Training Batch 1", 2, gz=True)
    _pair(tmp_path / "Training Batch 2" / "more" / "deep", 10)
    _pair(tmp_path / "Training Batch 2", 100)
    (tmp_path / "Training Batch 1" / "._volume-0.nii").write_bytes(b"\0\5\26\7 mac resource fork")
    (tmp_path / "test-volume-5.nii").write_bytes(b"")  # challenge test volumes have no labels
    found = lits.find_cases(tmp_path)
    assert [case_id for case_id, _, _ in found] == ["lits-0", "lits-2", "lits-10", "lits-100"]
    for case_id, volume_path, seg_path in found:
        number = case_id.split("-")[1]
        assert volume_path.name.startswith(f"volume-{number}.nii")
        assert seg_path.name.startswith(f"segmentation-{number}.nii")


def test_find_cases_in_decathlon_layout(tmp_path):
    task = tmp_path / "Task03_Liver"
    for n in (4, 1):
        volume_path, _ = _pair(task / "imagesTr", n, gz=True, names=(f"liver_{n}.nii.gz", f"._liver_{n}.nii.gz"))
        _pair(task / "labelsTr", n, gz=True, names=(f"._liver_{n}.nii.gz", f"liver_{n}.nii.gz"))
    _pair(task / "imagesTs", 9, gz=True, names=("liver_9.nii.gz", "._liver_9.nii.gz"))
    found = lits.find_cases(tmp_path)
    assert [(c, v.parent.name, s.parent.name) for c, v, s in found] == [
        ("msd-1", "imagesTr", "labelsTr"),
        ("msd-4", "imagesTr", "labelsTr"),
    ]
    cases = list(lits.iter_cases(tmp_path, progress=False))
    assert [c.case_id for c in cases] == ["msd-1", "msd-4"]
    assert all(c.label.max() == 2 for c in cases)


def test_iter_cases_loads_each_pair(tmp_path):
    _pair(tmp_path / "a", 5)
    _pair(tmp_path / "b", 6, gz=True)
    cases = list(lits.iter_cases(tmp_path))
    assert [c.case_id for c in cases] == ["lits-5", "lits-6"]
    assert [int(c.image.array.max()) for c in cases] == [105, 106]


def test_unpaired_files(tmp_path):
    _pair(tmp_path, 1)
    (tmp_path / "segmentation-1.nii").unlink()
    with pytest.raises(errors.DatasetLayoutError, match="volume-1.nii"):
        lits.find_cases(tmp_path)


def test_same_case_twice(tmp_path):
    _pair(tmp_path / "a", 1)
    _pair(tmp_path / "b", 1, gz=True)
    with pytest.raises(errors.DatasetLayoutError, match="twice"):
        lits.find_cases(tmp_path)


def test_empty_or_missing_root(tmp_path):
    with pytest.raises(errors.DatasetLayoutError, match="no LiTS cases"):
        lits.find_cases(tmp_path)
    with pytest.raises(errors.MissingFileError):
        lits.find_cases(tmp_path / "nowhere")
