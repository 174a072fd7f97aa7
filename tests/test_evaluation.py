"""liverseg.evaluation: the library behind ``liverseg evaluate`` (the CLI tests cover the rest)."""

import csv
import io

import nibabel as nib
import numpy as np
import pytest

from liverseg import errors
from liverseg.evaluation import (
    evaluate_files,
    evaluate_folders,
    evaluate_paths,
    is_case_folder,
    paired_files,
    scores_csv,
)


def _save(path, label, dtype=np.uint8):
    nib.save(nib.Nifti1Image(np.asarray(label, dtype=dtype), np.diag([0.8, 0.8, 2.5, 1.0])), path)
    return path


def _label(shift=0):
    label = np.zeros((12, 10, 8), np.uint8)
    label[2 + shift : 10, 2:8, 1:7] = 1
    label[4:7, 3:6, 2:5] = 2
    return label


def test_evaluate_files_names_the_pair_and_reads_float_labels(tmp_path):
    reference = _save(tmp_path / "ref.nii.gz", _label())
    prediction = _save(tmp_path / "pred.nii", _label(1), dtype=np.float32)  # whole-number floats
    scores = evaluate_files(prediction, reference)
    assert scores["prediction"] == str(prediction) and scores["reference"] == str(reference)
    assert 0.5 < scores["liver"]["dice"] < 1.0 and scores["lesion"]["dice"] == 1.0
    assert evaluate_paths(prediction, reference) == scores  # two files: one pair


def test_folders_pair_in_natural_order_and_refuse_two_files_of_one_case(tmp_path):
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    pred.mkdir()
    ref.mkdir()
    for n in (10, 2, 1):
        _save(pred / f"test-segmentation-{n}.nii", _label(1))
        _save(ref / f"segmentation-{n}.nii", _label())
    (pred / ".hidden.nii").write_bytes(b"ignored")
    (pred / "notes.txt").write_text("ignored")
    pairs = paired_files(pred, ref)
    assert [case for case, _, _ in pairs] == ["segmentation-1", "segmentation-2", "segmentation-10"]
    assert pairs[0][1] == pred / "test-segmentation-1.nii"
    result = evaluate_folders(pred, ref, progress=False)
    assert [row["case"] for row in result["cases"]] == ["segmentation-1", "segmentation-2", "segmentation-10"]
    assert result["summary"]["n_cases"] == 3
    lines = list(csv.DictReader(io.StringIO(scores_csv(result["cases"]))))
    assert [line["case"] for line in lines] == ["segmentation-1", "segmentation-2", "segmentation-10"]

    _save(pred / "segmentation-2.nii", _label())
    with pytest.raises(errors.DatasetLayoutError, match="same case"):
        paired_files(pred, ref)


def test_a_dicom_series_folder_is_one_label_file_not_a_folder_of_cases(tmp_path):
    from tests.dicom_fixtures import write_dicom_series

    write_dicom_series(tmp_path / "mask", _label(), modality="OT", slope=1.0, intercept=0.0)
    assert not is_case_folder(tmp_path / "mask")
    assert evaluate_paths(tmp_path / "mask", tmp_path / "mask")["lesion"]["dice"] == 1.0
    with pytest.raises(errors.MissingFileError):
        paired_files(tmp_path / "nope", tmp_path / "mask")
