"""The ``liverseg`` command line, in process and through the installed entry point."""

import json
import subprocess
import sys
from pathlib import Path

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
