"""The ``liverseg`` command line, in process and through the installed entry point."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from liverseg.cli import main
from liverseg.io import read_volume, write_volume


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantoms")
    assert main(["synthesize", str(root), "--cases", "2", "--seed", "3", "--shape", "16", "48", "48"]) == 0
    return root


def test_synthesize_writes_lits_style_pairs(phantoms):
    names = sorted(p.name for p in phantoms.iterdir())
    assert names == ["segmentation-0.nii.gz", "segmentation-1.nii.gz", "volume-0.nii.gz", "volume-1.nii.gz"]
    assert read_volume(phantoms / "volume-0.nii.gz").shape == (16, 48, 48)


def test_info_reports_shape_and_spacing(phantoms, capsys):
    assert main(["info", str(phantoms / "volume-1.nii.gz")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape_zyx"] == [16, 48, 48]
    assert info["min"] < -500 < info["max"]


def test_evaluate_scores_a_prediction_against_its_reference(phantoms, tmp_path, capsys):
    reference_path = phantoms / "segmentation-0.nii.gz"
    reference = read_volume(reference_path, dtype=None)
    eroded = reference.array.copy()
    liver_z = np.nonzero(eroded)[0]
    eroded[liver_z.max()] = 0  # drop the top slice of the liver
    prediction_path = write_volume(eroded.astype(np.uint8), tmp_path / "pred.nii.gz", like=reference)

    assert main(["evaluate", str(reference_path), str(reference_path)]) == 0
    perfect = json.loads(capsys.readouterr().out)
    assert perfect["liver"]["dice"] == pytest.approx(1.0)

    out = tmp_path / "scores.json"
    assert main(["evaluate", str(prediction_path), str(reference_path), "-o", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert 0.5 < scores["liver"]["dice"] < 1.0


def test_missing_file_exits_with_a_message_naming_it(tmp_path, capsys):
    missing = tmp_path / "nope.nii.gz"
    assert main(["info", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_installed_entry_point_runs():
    script = Path(sys.executable).parent / "liverseg"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    for command in ("info", "synthesize", "evaluate"):
        assert command in result.stdout


def test_train_on_a_missing_dataset_is_one_line_and_leaves_no_run_folder(tmp_path):
    # through the installed command, so that TensorFlow starts in a fresh process: its start-up
    # lines would come before the command's own
    script = Path(sys.executable).parent / "liverseg"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = tmp_path / "run"
    result = subprocess.run([str(script), "train", "--profile", "smoke", "--dataset", "lits",
                             "--data-dir", str(tmp_path / "missing"), "--out", str(run), "-q"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"liverseg train: {tmp_path / 'missing'}: dataset folder does not exist"]
    assert not run.exists()  # no settings.json of a run that never started


# --------------------------------------------------------------------------- evaluate: labels


def _label(seed: int = 0, shape=(12, 10, 8)) -> np.ndarray:
    """A 0/1/2 label: a liver block with a lesion inside, moved a little by ``seed``."""
    label = np.zeros(shape, np.uint8)
    label[2 + seed % 2 : 10, 2:8, 1:7] = 1
    label[4:7, 3 + seed % 2 : 6, 2:5] = 2
    return label


def _save(path, label, zooms=(0.8, 0.8, 2.5), origin=(0.0, 0.0, 0.0), dtype=np.uint8):
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = origin
    image = nib.Nifti1Image(np.asarray(label, dtype=dtype), affine)
    image.set_data_dtype(dtype)
    nib.save(image, path)
    return path


def test_evaluate_reads_uint8_labels_as_labels(tmp_path, capsys):
    label = _label()
    path = _save(tmp_path / "seg.nii.gz", label)
    assert nib.load(path).get_data_dtype() == np.uint8
    assert main(["evaluate", str(path), str(path)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["liver"]["dice"] == 1.0 and scores["lesion"]["dice"] == 1.0
    assert scores["liver"]["ref_voxels"] == int((label >= 1).sum())
    assert scores["lesion"]["ref_voxels"] == int((label == 2).sum())
    assert scores["spacing"] == pytest.approx([2.5, 0.8, 0.8])  # (z, y, x) of the file's own geometry


def test_evaluate_reads_a_non_ct_dicom_mask_series(tmp_path, capsys):
    from tests.dicom_fixtures import write_dicom_series

    label = _label()
    write_dicom_series(tmp_path / "mask", label, modality="OT", slope=1.0, intercept=0.0)
    assert main(["evaluate", str(tmp_path / "mask"), str(tmp_path / "mask")]) == 0  # no modality check
    scores = json.loads(capsys.readouterr().out)
    assert scores["lesion"]["dice"] == 1.0 and scores["lesion"]["ref_voxels"] == int((label == 2).sum())


def test_evaluate_names_both_files_when_shapes_differ(tmp_path, capsys):
    prediction = _save(tmp_path / "pred.nii.gz", _label(shape=(12, 10, 8)))
    reference = _save(tmp_path / "ref.nii.gz", _label(shape=(12, 10, 9)))
    out = tmp_path / "scores.json"
    assert main(["evaluate", str(prediction), str(reference), "-o", str(out)]) == 2
    message = capsys.readouterr().err
    assert str(prediction) in message and str(reference) in message and "shape" in message
    assert not out.exists()


def test_evaluate_refuses_the_same_shape_in_another_geometry(tmp_path, capsys):
    label = _label()
    reference = _save(tmp_path / "ref.nii.gz", label)
    spaced = _save(tmp_path / "spaced.nii.gz", label, zooms=(0.8, 0.8, 3.0))
    moved = _save(tmp_path / "moved.nii.gz", label, origin=(0.0, 0.0, 5.0))
    nearly = _save(tmp_path / "nearly.nii.gz", label, zooms=(0.8, 0.8, 2.5 + 1e-5))
    assert main(["evaluate", str(spaced), str(reference)]) == 2
    message = capsys.readouterr().err
    assert str(spaced) in message and str(reference) in message and "spacing" in message
    assert main(["evaluate", str(moved), str(reference)]) == 2
    message = capsys.readouterr().err
    assert str(moved) in message and str(reference) in message and "origin" in message
    assert main(["evaluate", str(nearly), str(reference)]) == 0  # within the tolerance


def test_evaluate_accepts_the_same_voxels_stored_in_another_orientation(tmp_path, capsys):
    label = _label()
    reference = _save(tmp_path / "ref.nii.gz", label)
    affine = nib.load(reference).affine.copy()
    flipped_affine = affine @ np.array([[-1, 0, 0, label.shape[0] - 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    flipped = tmp_path / "flipped.nii.gz"
    nib.save(nib.Nifti1Image(label[::-1].copy(), flipped_affine), flipped)
    assert main(["evaluate", str(flipped), str(reference)]) == 0
    assert json.loads(capsys.readouterr().out)["lesion"]["dice"] == 1.0


@pytest.fixture
def case_folders(tmp_path):
    """Two predictions and their references, matched by name (one in LiTS test naming)."""
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    pred.mkdir()
    ref.mkdir()
    _save(pred / "case1.nii.gz", _label(0))
    _save(ref / "case1.nii.gz", _label(0))
    _save(pred / "test-segmentation-2.nii", _label(1))
    _save(ref / "segmentation-2.nii", _label(0))
    return pred, ref


def test_evaluate_two_folders_gives_rows_summary_and_csv(case_folders, tmp_path, capsys):
    pred, ref = case_folders
    out, table = tmp_path / "out/scores.json", tmp_path / "out/scores.csv"
    assert main(["evaluate", str(pred), str(ref), "-o", str(out), "--csv", str(table)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed
    rows = printed["cases"]
    assert [r["case"] for r in rows] == ["case1", "segmentation-2"]
    assert rows[1]["prediction"] == str(pred / "test-segmentation-2.nii")
    assert rows[1]["reference"] == str(ref / "segmentation-2.nii")
    assert rows[0]["liver"]["dice"] == 1.0 and 0.5 < rows[1]["liver"]["dice"] < 1.0
    summary = printed["summary"]
    assert summary["n_cases"] == 2
    liver = summary["liver"]
    assert liver["dice_per_case"] == pytest.approx((rows[0]["liver"]["dice"] + rows[1]["liver"]["dice"]) / 2)
    pooled = sum(r["liver"]["intersection_voxels"] for r in rows)
    total = sum(r["liver"]["pred_voxels"] + r["liver"]["ref_voxels"] for r in rows)
    assert liver["dice_global"] == pytest.approx(2 * pooled / total)

    with table.open(newline="") as f:
        lines = list(csv.DictReader(f))
    assert [line["case"] for line in lines] == ["case1", "segmentation-2"]
    for line, row in zip(lines, rows):
        assert float(line["liver_dice"]) == pytest.approx(row["liver"]["dice"])
        assert float(line["lesion_assd"]) == pytest.approx(row["lesion"]["assd"])
        assert int(line["lesion_detection_tp"]) == row["lesion"]["detection"]["tp"]
    assert "shape" not in lines[0] and "liver_spacing" not in lines[0]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_evaluate_folders_with_unmatched_files_fail_and_write_nothing(case_folders, tmp_path, capsys):
    pred, ref = case_folders
    _save(pred / "case3.nii.gz", _label())
    _save(ref / "case4.nii.gz", _label())
    out, table = tmp_path / "scores.json", tmp_path / "scores.csv"
    assert main(["evaluate", str(pred), str(ref), "-o", str(out), "--csv", str(table)]) == 2
    message = capsys.readouterr().err
    assert "case3.nii.gz" in message and "case4.nii.gz" in message and "case1" not in message
    assert not out.exists() and not table.exists()


def test_evaluate_folder_error_in_a_later_case_writes_no_file(case_folders, tmp_path, capsys):
    pred, ref = case_folders
    _save(pred / "segmentation-2.nii", _label(shape=(12, 10, 9)))  # replaces nothing: a new key...
    (pred / "test-segmentation-2.nii").unlink()  # ...now the only prediction of case 2, wrong shape
    out = tmp_path / "scores.json"
    assert main(["evaluate", str(pred), str(ref), "-o", str(out)]) == 2
    message = capsys.readouterr().err
    assert str(pred / "segmentation-2.nii") in message and str(ref / "segmentation-2.nii") in message
    assert not out.exists()


def test_evaluate_refuses_a_folder_against_a_file(case_folders, capsys):
    pred, ref = case_folders
    assert main(["evaluate", str(pred), str(ref / "case1.nii.gz")]) == 2
    assert str(ref / "case1.nii.gz") in capsys.readouterr().err


def test_train_devices_sets_data_parallel_training_and_checks_the_batch(tmp_path):
    from liverseg.cli import _settings, build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--profile", "demo", "--out", str(tmp_path), "--devices", "2"])
    assert _settings(args).train.devices == 2
    args = parser.parse_args(["train", "--profile", "demo", "--out", str(tmp_path), "--devices", "3",
                              "--set", "train.batch_size=4"])
    with pytest.raises(SystemExit, match="multiple of train.devices=3"):
        _settings(args)


def test_train_set_takes_a_pair_as_json(tmp_path):
    from liverseg.cli import _settings, build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--profile", "smoke", "--out", str(tmp_path),
                              "--set", "preprocess.zscore_stats=[-72, 58]"])
    assert _settings(args).preprocess.zscore_stats == (-72.0, 58.0)
    args = parser.parse_args(["train", "--profile", "smoke", "--out", str(tmp_path),
                              "--set", "preprocess.zscore_stats=[-72, 0]"])
    with pytest.raises(SystemExit, match="preprocess.zscore_stats"):
        _settings(args)


def test_commands_keep_tensorflow_retracing_warnings_quiet(phantoms, capsys):
    import logging

    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    assert main(["info", str(phantoms / "volume-0.nii.gz")]) == 0
    capsys.readouterr()
    assert logging.getLogger("tensorflow").getEffectiveLevel() == logging.ERROR


def test_an_unknown_chapter_is_one_line_not_a_traceback(tmp_path, capsys):
    code = main(["reproduce", "--chapters", "nosuch", "--out", str(tmp_path / "run"), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("liverseg reproduce: unknown chapters ['nosuch']")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
