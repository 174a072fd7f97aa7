"""The whole system through the command line: ``liverseg train`` on phantoms, then
``liverseg segment`` of a held-out phantom (NIfTI and DICOM), scored against its label.

Runs once, on the default backend (it trains real networks for a couple of minutes); the
training loop, the fusion and the error handling are tested on both backends elsewhere.
"""

import json
import sys

import numpy as np
import pytest

from liverseg import cli, metrics
from liverseg.datasets import synthetic
from liverseg.io import read_volume, write_volume

from .dicom_fixtures import read_sitk_series, write_dicom_series

pytestmark = pytest.mark.slow


#: `liverseg train` as a user types it, at smoke's epoch budget of 10 (the localizer's
#: validation Dice is about 0.68 after ten epochs)
TRAIN = ["train", "--profile", "smoke", "--planes", "axial", "--set", "train.epochs=10", "-q"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = cli.main(TRAIN + ["--out", str(out)])
    assert code == 0
    return out


def test_train_writes_a_model_folder_and_its_report(trained):
    manifest = json.loads((trained / "model" / "liverseg-model.json").read_text())
    assert manifest["planes"] == ["axial"] and manifest["structures"] == ["liver", "lesion"]
    assert manifest["settings"]["name"] == "smoke"
    report = json.loads((trained / "training.json").read_text())
    split = json.loads((trained / "split.json").read_text())
    assert report["split"] == split and len(split["train"]) == 4 and len(split["val"]) == 1
    liver = report["cascades"]["axial/liver"]
    assert liver["localizer"]["val"]["dice"] > 0.5, liver["localizer"]["val"]
    assert [row["iteration"] for row in liver["self_training"]][:2] == [0, 1]
    assert liver["self_training"][1]["patches_added"] > 0


def test_rerunning_train_resumes_without_training_again(trained, capsys):
    before = (trained / "model" / "axial_liver_tuner.keras").stat().st_mtime_ns
    assert cli.main(TRAIN + ["--out", str(trained)]) == 0
    capsys.readouterr()
    final, = (trained / "store").glob("axial-liver/data-*/seed-0/front-*/localizer/final.keras")
    assert final.stat().st_mtime_ns < before  # loaded, not retrained


def test_other_settings_in_the_same_folder_are_refused(trained, capsys):
    code = cli.main(["train", "--profile", "smoke", "--out", str(trained), "-q"])
    assert code == 2
    assert "other settings" in capsys.readouterr().err


def test_a_chapter_on_the_run_folder_reads_back_the_networks_liverseg_train_trained(trained):
    """One training path: ``liverseg train`` keeps its networks in ``OUT/store``, the store a
    chapter run with ``run_dir=OUT`` uses, so the results chapter's system (its shared
    settings: the profile without Algorithm 1) trains no localizer and no tuner again."""
    from liverseg.config import profile
    from liverseg.experiments.chapter import SHARED_NETWORKS
    from liverseg.experiments.system_results import system_model_folder

    store = trained / "store"

    def saved():  # every network, checkpoint and prior the store holds, with its time
        return {path: path.stat().st_mtime_ns for path in store.glob("*-*/data-*/**/*")
                if path.suffix in (".keras", ".npz", ".npy")}

    def folders(kind):
        return sorted(store.glob(f"*-*/data-*/seed-*/{kind}-*"))

    before, fronts, tuners = saved(), folders("front"), folders("tuner")
    assert {path.parts[-4] for path in fronts} == {"axial-liver", "axial-lesion"}
    settings = profile("smoke").replace(planes=("axial",), **{"train.epochs": 10})  # as TRAIN
    model, _ = system_model_folder(store, settings.replace(**SHARED_NETWORKS), progress=False)
    after = saved()
    assert (model / "liverseg-model.json").is_file()
    assert folders("front") == fronts and folders("tuner") == tuners  # nothing new trained
    assert {path: after[path] for path in before} == before  # nothing trained again
    assert all("rounds-" in str(path) for path in set(after) - set(before))


def _segment(capsys, source, output, model):
    code = cli.main(["segment", str(source), "-o", str(output), "--model", str(model), "-q"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_segment_a_held_out_phantom(trained, tmp_path, capsys):
    sitk = pytest.importorskip("SimpleITK")
    case = synthetic.make_case((12345, 0), shape=(32, 64, 64))  # not one of the training seeds
    hu = case.image.array.astype(np.int16)

    nifti = write_volume(hu, tmp_path / "ct.nii.gz", like=case.image)
    summary = _segment(capsys, nifti, tmp_path / "label.nii.gz", trained)
    label = read_volume(tmp_path / "label.nii.gz").array
    liver_dice = metrics.dice(label >= 1, case.label >= 1)
    print(f"held-out phantom, smoke axial model: liver Dice {liver_dice:.3f}", file=sys.stderr)
    assert liver_dice > 0.5  # 0.855 measured (TensorFlow, CPU, one thread); untrained: ~0
    image, out = sitk.ReadImage(str(nifti)), sitk.ReadImage(str(tmp_path / "label.nii.gz"))
    assert out.GetSize() == image.GetSize()
    np.testing.assert_allclose(out.GetSpacing(), image.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(out.GetOrigin(), image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(out.GetDirection(), image.GetDirection(), atol=1e-6)
    expected_ml = np.count_nonzero(label >= 1) * np.prod(case.image.spacing) / 1000
    assert summary["liver_ml"] == pytest.approx(expected_ml, rel=1e-6)

    series = tmp_path / "dicom"
    spacing = case.image.spacing  # (z, y, x) mm
    write_dicom_series(series, hu, pixel_spacing=(spacing[1], spacing[2]), slice_step=spacing[0])
    _segment(capsys, series, tmp_path / "dicom-label.nii.gz", trained)
    image, out = read_sitk_series(series), sitk.ReadImage(str(tmp_path / "dicom-label.nii.gz"))
    assert out.GetSize() == image.GetSize()
    np.testing.assert_allclose(out.GetSpacing(), image.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(out.GetOrigin(), image.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(out.GetDirection(), image.GetDirection(), atol=1e-6)
    dicom_label = read_volume(tmp_path / "dicom-label.nii.gz").array
    assert metrics.dice(dicom_label >= 1, case.label >= 1) == pytest.approx(liver_dice, abs=0.02)
