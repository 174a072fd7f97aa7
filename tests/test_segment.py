"""``liverseg segment``: geometry of the output, plane fusion, and every kind of bad input.

These tests use a model folder of *untrained* networks (built and saved in a second), which is
all that geometry, fusion and error handling need; learning is checked by test_system.py.
"""

import json

import nibabel as nib
import numpy as np
import pytest

from liverseg import cli
from liverseg.inference import fuse
from liverseg.model_folder import network_file, write_manifest

from .conftest import tiny_profile
from .dicom_fixtures import read_sitk_series, write_dicom_series

SIZE = 32  # runs on the default backend; the first test runs on every backend (`-m keras`)


def _settings(size=SIZE):
    return tiny_profile(size, **{"inference.min_lesion_size": 0.0})


def _write_model_folder(root, settings, size=None):
    import keras

    from liverseg import models

    keras.utils.set_random_seed(0)
    root.mkdir(parents=True, exist_ok=True)
    built = settings if size is None else _settings(size)
    for plane in settings.planes:
        for structure in ("liver", "lesion"):
            stage = built.stage(structure)  # the lesion networks may have their own size
            models.build_localization_net(stage).save(root / network_file(plane, structure, "localizer"))
            models.build_tuning_net(stage).save(root / network_file(plane, structure, "tuner"))
    write_manifest(root, settings, settings.planes, ("liver", "lesion"))
    return root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return _write_model_folder(tmp_path_factory.mktemp("model"), _settings())


def _ct(shape=(12, 40, 28), seed=0):
    """HU volume: a bright ellipsoid 'liver' in soft tissue, air around."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    body = ((y - shape[1] / 2) / (shape[1] / 2.2)) ** 2 + ((x - shape[2] / 2) / (shape[2] / 2.2)) ** 2 < 1
    liver = ((y - shape[1] / 2.5) / 8) ** 2 + ((x - shape[2] / 3) / 6) ** 2 + ((z - shape[0] / 2) / 5) ** 2 < 1
    hu = np.where(body, 40.0, -1000.0) + np.where(liver, 70.0, 0.0) + rng.normal(0, 10, shape)
    return np.round(hu).astype(np.int16)


def _segment(capsys, *args):
    code = cli.main(["segment", *map(str, args), "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


def test_nifti_output_overlays_the_input(tmp_path, model_dir, capsys):
    sitk = pytest.importorskip("SimpleITK")
    affine = np.array([[0.0, -0.7, 0.0, 40.0], [-0.8, 0.0, 0.0, 25.0], [0.0, 0.0, 2.5, -60.0],
                       [0.0, 0.0, 0.0, 1.0]])  # stored in another axis order than canonical
    stored = np.transpose(_ct(), (2, 1, 0))
    source = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(stored, affine), source)
    output = tmp_path / "label.nii.gz"
    code, out, err = _segment(capsys, source, "-o", output, "--model", model_dir)
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary["seconds"]) >= {"read", "preprocess", "liver_axial", "liver_coronal",
                                       "liver_sagittal", "postprocess", "write"}
    assert summary["liver_ml"] >= 0 and summary["lesion_ml"] >= 0
    image, label = sitk.ReadImage(str(source)), sitk.ReadImage(str(output))
    assert label.GetSize() == image.GetSize()
    np.testing.assert_allclose(label.GetSpacing(), image.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(label.GetOrigin(), image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(label.GetDirection(), image.GetDirection(), atol=1e-6)
    assert set(np.unique(sitk.GetArrayFromImage(label))) <= {0, 1, 2}


def test_dicom_series_output_overlays_the_series(tmp_path, model_dir, capsys):
    sitk = pytest.importorskip("SimpleITK")
    series = tmp_path / "series"
    write_dicom_series(series, _ct((10, 36, 30)), pixel_spacing=(0.9, 0.75), slice_step=3.0)
    output = tmp_path / "label.nii"
    code, _, err = _segment(capsys, series, "-o", output, "--model", model_dir)
    assert code == 0, err
    image, label = read_sitk_series(series), sitk.ReadImage(str(output))
    assert label.GetSize() == image.GetSize()
    np.testing.assert_allclose(label.GetSpacing(), image.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(label.GetOrigin(), image.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(label.GetDirection(), image.GetDirection(), atol=1e-6)


@pytest.mark.parametrize("method", ["soft", "union", "intersection", "majority"])
def test_segmenter_fuses_the_planes_as_the_fusion_functions(model_dir, method):
    from liverseg.inference.volume import Segmenter
    from liverseg.preprocess import preprocess

    segmenter = Segmenter(model_dir, fusion=method, progress=False)
    hu = _ct((14, 32, 24)).astype(np.float32)
    image = preprocess(hu)
    planes = [segmenter.predict_plane(image, hu, plane) for plane in ("axial", "coronal", "sagittal")]
    assert all(p.shape == hu.shape and p.dtype == np.float16 for p in planes)
    fused = segmenter._fused(image, hu, "liver", {})
    np.testing.assert_array_equal(fused.result(), fuse(planes, method))


def test_the_threshold_cuts_the_fused_liver_and_leaves_the_lesion_stage_alone(model_dir):
    from liverseg.inference.volume import Segmenter
    from liverseg.preprocess import preprocess

    hu = _ct((14, 32, 24)).astype(np.float32)
    image = preprocess(hu)
    planes = [Segmenter(model_dir, progress=False).predict_plane(image, hu, plane)
              for plane in ("axial", "coronal", "sagittal")]
    mean = np.mean([p.astype(np.float32) for p in planes], axis=0)
    threshold = round(float(np.quantile(mean, 0.3)), 4)  # untrained: the mean lies near 0.5
    assert threshold != 0.5 and 0.1 < (mean > threshold).mean() < 0.9
    segmenter = Segmenter(model_dir, progress=False, threshold=threshold)
    assert segmenter.threshold == threshold
    assert segmenter._stages["lesion"].inference.threshold == 0.5
    np.testing.assert_array_equal(segmenter._fused(image, hu, "liver", {}).result(),
                                  fuse(planes, "soft", threshold))
    assert segmenter._fused(image, hu, "lesion", {}).threshold == 0.5


def test_the_threshold_from_the_command_line_is_reported_and_checked(tmp_path, model_dir, capsys):
    source = _nifti(tmp_path)
    code, out, err = _segment(capsys, source, "-o", tmp_path / "l.nii.gz", "--model", model_dir,
                              "--planes", "axial", "--threshold", "0.35")
    assert code == 0, err
    assert json.loads(out)["threshold"] == 0.35
    output = tmp_path / "bad.nii.gz"
    code, _, err = _segment(capsys, source, "-o", output, "--model", model_dir, "--threshold", "1.5")
    assert code == 2 and "threshold" in err and "1.5" in err
    assert not output.exists()


def test_one_plane_and_a_hard_vote_from_the_command_line(tmp_path, model_dir, capsys):
    source = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.transpose(_ct(), (2, 1, 0)), np.diag([0.8, 0.8, 2.0, 1.0])), source)
    code, out, err = _segment(capsys, source, "-o", tmp_path / "l.nii.gz", "--model", model_dir,
                              "--planes", "coronal", "--fusion", "majority")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["planes"] == ["coronal"] and summary["fusion"] == "majority"
    assert "liver_axial" not in summary["seconds"]


def _two_series(folder):
    write_dicom_series(folder, _ct((4, 16, 16)), name="a_{}")
    write_dicom_series(folder, _ct((4, 16, 16)), name="b_{}")


def _incomplete_model(root, model_dir):
    import shutil

    shutil.copytree(model_dir, root)
    (root / network_file("coronal", "lesion", "tuner")).unlink()
    return root


BAD_INPUTS = {
    "missing input": (lambda tmp, model: (tmp / "nope.nii.gz", model), "no such file"),
    "corrupt NIfTI": (lambda tmp, model: (_write(tmp / "bad.nii.gz", b"\x1f\x8b garbage"), model), "cannot read"),
    "not an image": (lambda tmp, model: (_write(tmp / "notes.txt", b"hello"), model), "unsupported format"),
    "empty folder": (lambda tmp, model: (_mkdir(tmp / "empty"), model), "no DICOM files"),
    "two series": (lambda tmp, model: (_two(tmp / "two"), model), "series"),
    "model folder missing": (lambda tmp, model: (_nifti(tmp), tmp / "no-model"), "model folder"),
    "model folder incomplete": (lambda tmp, model: (_nifti(tmp), _incomplete_model(tmp / "inc", model)),
                                "coronal_lesion_tuner.keras"),
    "model for another image size": (lambda tmp, model: (_nifti(tmp), _other_size(tmp / "other")),
                                     "slices"),
}


def _write(path, data):
    path.write_bytes(data)
    return path


def _mkdir(path):
    path.mkdir()
    return path


def _two(path):
    _two_series(path)
    return path


def _nifti(tmp):
    path = tmp / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.transpose(_ct(), (2, 1, 0)), np.eye(4)), path)
    return path


def _other_size(root):
    settings = _settings().replace(planes=("axial",))
    return _write_model_folder(root, settings, size=2 * SIZE)


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_a_clear_error_and_no_output(tmp_path, model_dir, capsys, case):
    make, expected = BAD_INPUTS[case]
    source, model = make(tmp_path, model_dir)
    output = tmp_path / "out" / "label.nii.gz"
    code, out, err = _segment(capsys, source, "-o", output, "--model", model)
    assert code == 2
    assert err.startswith("liverseg segment: ") and expected in err
    assert not output.exists()
    assert not list(tmp_path.glob("out/.*")), "a temporary file was left behind"


def test_output_must_be_nifti(tmp_path, model_dir, capsys):
    code, _, err = _segment(capsys, _nifti(tmp_path), "-o", tmp_path / "label.png", "--model", model_dir)
    assert code == 2 and "NIfTI" in err
    assert not (tmp_path / "label.png").exists()


def test_a_region_limits_prediction_to_the_slices_that_cut_it(model_dir):
    from liverseg.inference.volume import Segmenter
    from liverseg.preprocess import preprocess

    segmenter = Segmenter(model_dir, progress=False)
    hu = _ct((14, 32, 24)).astype(np.float32)
    image = preprocess(hu)
    region = np.zeros(hu.shape, bool)
    region[4:7, 10:20, 5:15] = True
    for plane, axis, inside in (("axial", 0, slice(4, 7)), ("sagittal", 2, slice(5, 15))):
        full = segmenter.predict_plane(image, hu, plane, "lesion")
        limited = segmenter.predict_plane(image, hu, plane, "lesion", region)
        moved_full, moved = np.moveaxis(full, axis, 0), np.moveaxis(limited, axis, 0)
        np.testing.assert_array_equal(moved[inside], moved_full[inside])
        outside = np.ones(len(moved), bool)
        outside[inside] = False
        assert not moved[outside].any()


def test_the_lesion_networks_look_at_the_liver_box(model_dir):
    from liverseg.inference.volume import Segmenter
    from liverseg.lesion_view import lesion_view
    from liverseg.preprocess import preprocess

    segmenter = Segmenter(model_dir, progress=False)
    s = segmenter.settings
    assert s.inference.lesion_view == "liver_box"
    hu = _ct((14, 32, 24)).astype(np.float32)
    image = preprocess(hu)
    liver = np.zeros(hu.shape, bool)
    liver[4:9, 8:20, 6:16] = True
    found, probability = segmenter.find_lesions(image, hu, liver, keep_probability=True)
    view = lesion_view(image, hu, liver, s.inference.liver_margin)
    assert view.image.shape == (9, 16, 14)  # the liver grown by two voxels
    expected = np.mean([segmenter.predict_plane(view.image, view.hu, plane, "lesion", view.region)
                        for plane in segmenter.planes], axis=0, dtype=np.float32)
    np.testing.assert_allclose(view.crop(probability), expected, atol=2e-3)
    outside = np.ones(hu.shape, bool)
    outside[view.box] = False
    assert not probability[outside].any()
    np.testing.assert_array_equal(found, (probability > s.inference.threshold) & liver)
