"""ROI prior: probability (+ Grad-CAM) -> CRF -> largest region -> box filter."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from liverseg.crf import CRFParams, dense_crf
from liverseg.errors import InvalidDataError, ShapeError
from liverseg.postprocess import largest_component
import liverseg.prior
from liverseg.prior import box_filter, cannot_pass, roi_prior, roi_priors


@pytest.fixture
def slice_():
    """A 64x64 'liver' square at rows 20-39, cols 10-29 (110 HU in -80 HU fat, 10 HU noise),
    a confident prediction of it, and a small false positive at rows 50-53, cols 50-53."""
    rng = np.random.default_rng(0)
    truth = np.zeros((64, 64), bool)
    truth[20:40, 10:30] = True
    image = np.where(truth, 110.0, -80.0) + rng.normal(0, 10, truth.shape)
    probability = np.where(truth, 0.9, 0.05)
    probability[50:54, 50:54] = 0.8
    return probability, image, truth


def test_bbox_covers_the_largest_component_plus_margin(slice_):
    probability, image, _ = slice_
    prior = roi_prior(probability, image=image, margin=3)
    assert prior.dtype == np.float32 and set(np.unique(prior)) == {0.0, 1.0}
    expected = np.zeros_like(prior)
    expected[17:43, 7:33] = 1
    np.testing.assert_array_equal(prior, expected)


def test_box_is_clipped_at_the_border_and_margin_zero_is_tight():
    mask = np.zeros((10, 12), bool)
    mask[0:3, 8:11] = True
    mask[5, 9] = True
    box = box_filter(mask, margin=2)
    assert box[0:8, 6:12].all() and box.sum() == 8 * 6
    assert box_filter(mask).sum() == 6 * 3
    assert not box_filter(np.zeros((5, 5), bool), 3).any()


def test_mask_mode_keeps_the_largest_region_or_all(slice_):
    probability, image, truth = slice_
    mask = roi_prior(probability, image=image, mode="mask")
    np.testing.assert_array_equal(mask.astype(bool), truth)
    both = roi_prior(probability, mode="mask", keep_largest=False, use_crf=False)
    assert both[50:54, 50:54].all() and both.sum() == truth.sum() + 16
    assert largest_component(both.astype(bool), connectivity=2).sum() == truth.sum()


def test_cam_confirms_or_vetoes_doubtful_pixels_but_cannot_add_a_region(slice_):
    probability, _, truth = slice_
    probability = probability.copy()
    probability[2:8, 40:60] = 0.7  # a doubtful false positive without evidence
    cam = np.zeros_like(probability)
    cam[15:45, 5:35] = 1.0  # evidence around the liver (p 0.9 inside, 0.05 around it)
    cam[55:64, 0:10] = 1.0  # evidence where the network predicts nothing (p 0.05)
    mask = roi_prior(probability, cam, mode="mask", keep_largest=False, use_crf=False)
    speck = np.zeros_like(truth)
    speck[50:54, 50:54] = True  # p 0.8: sure enough to survive without evidence
    np.testing.assert_array_equal(mask.astype(bool), truth | speck)
    plain = dict(mode="mask", keep_largest=False, use_crf=False)
    strict = roi_prior(probability, cam, combine="product", **plain)
    np.testing.assert_array_equal(strict.astype(bool), truth)
    # with the CAM's weight at zero the doubtful false positive comes back
    ignored = roi_prior(probability, cam, cam_weight=0, **plain)
    assert ignored[2:8, 40:60].all()


def test_crf_on_off_changes_a_blurred_prior(slice_):
    _, image, truth = slice_
    blurred = np.zeros(truth.shape)
    blurred[23:37, 13:27] = 0.9  # the network found only the core of the region
    blurred[20:40, 10:30] = np.maximum(blurred[20:40, 10:30], 0.4)
    without = roi_prior(blurred, mode="mask", use_crf=False)
    with_crf = roi_prior(blurred, image=image, mode="mask")
    assert without.sum() == 14 * 14
    assert (with_crf.astype(bool) == truth).mean() > 0.99
    weak = roi_prior(blurred, image=image, mode="mask", crf_params=CRFParams(bilateral_compat=0.5))
    assert weak.sum() < with_crf.sum()


def test_empty_roi_gives_an_all_zero_prior(slice_):
    _, image, _ = slice_
    for mode in ("bbox", "mask"):
        prior = roi_prior(np.full((64, 64), 0.1), np.zeros((64, 64)), image, mode=mode)
        assert prior.shape == (64, 64) and not prior.any()


@pytest.mark.parametrize("seed", range(4))
def test_the_crf_lifts_no_pixel_of_a_map_that_stays_under_one_half(seed):
    """cannot_pass rests on this: pydensecrf's mean field, even with strong pairwise terms on
    a high-contrast slice, leaves every pixel of a map at most 0.5 no higher than it was."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:48, :48]
    organ = (yy - 24) ** 2 / 15**2 + (xx - 20) ** 2 / 12**2 < 1
    image = np.where(organ, 120.0, -90.0) + rng.normal(0, 15, organ.shape)
    near_half = np.where(organ, 0.499, 0.0) * rng.uniform(0.8, 1.0, organ.shape)
    blotchy = rng.uniform(0, 0.499, organ.shape)
    strong = CRFParams(iterations=10, gaussian_compat=10.0, bilateral_compat=20.0)
    for roi in (near_half, blotchy):
        refined = dense_crf(roi, image, strong)
        assert (refined <= np.maximum(roi, strong.clip) + 1e-5).all()
        assert cannot_pass(roi, 0.5)
    # above one half the same CRF does lift the organ's doubtful pixels over the threshold
    core = (yy - 24) ** 2 / 11**2 + (xx - 20) ** 2 / 8**2 < 1
    sure = np.where(core, 0.95, near_half)
    assert not cannot_pass(sure, 0.5)
    assert (dense_crf(sure, image, strong)[organ & ~core] > 0.5).mean() > 0.9


def test_slices_that_cannot_pass_get_the_crfs_prior_without_the_crf(slice_, monkeypatch):
    probability, image, _ = slice_
    doubtful = np.where(probability > 0.5, 0.45, 0.02)  # the same shapes, never above 0.45
    faint = np.where(probability > 0.5, 0.35, 0.02)
    probabilities = np.stack([probability, doubtful, np.zeros_like(probability), faint])
    cams = np.stack([np.ones_like(probability)] * 4)
    images = np.stack([image] * 4)
    kwargs = dict(margin=2, cam_weight=0.1)  # maps up to 0.9 * 0.45 + 0.1 = 0.505, and 0.415
    expected = []
    for p, c, hu in zip(probabilities, cams, images):  # what the CRF makes of every slice
        refined = dense_crf(0.9 * p + 0.1 * c, hu)
        expected.append(box_filter(largest_component(refined > 0.5, connectivity=2), 2))
    calls = []
    monkeypatch.setattr(liverseg.prior, "dense_crf",
                        lambda *args: calls.append(1) or dense_crf(*args))
    priors = roi_priors(probabilities, cams, images, progress=False, **kwargs)
    np.testing.assert_array_equal(priors, np.stack(expected).astype(np.float32))
    assert len(calls) == 2  # the two slices whose map reaches 0.5
    assert priors[0].any() and not priors[2:].any()


def test_batch_helper_matches_single_slices(slice_):
    probability, image, _ = slice_
    probabilities = np.stack([probability, np.zeros_like(probability), probability])
    images = np.stack([image] * 3)
    priors = roi_priors(probabilities, None, images, margin=2, progress=False)
    assert priors.shape == (3, 64, 64) and priors.dtype == np.float32
    np.testing.assert_array_equal(priors[0], roi_prior(probability, image=image, margin=2))
    assert not priors[1].any()
    np.testing.assert_array_equal(priors[0], priors[2])
    with pytest.raises(ShapeError, match="images"):
        roi_priors(probabilities, None, images[:2], progress=False)


def test_worker_processes_give_the_serial_result_in_slice_order(slice_):
    probability, image, _ = slice_
    rng = np.random.default_rng(1)
    shifts = rng.integers(-8, 8, (6, 2))
    probabilities = np.stack([np.roll(probability, tuple(s), (0, 1)) for s in shifts])
    images = np.stack([np.roll(image, tuple(s), (0, 1)) for s in shifts])
    cams = rng.random(probabilities.shape).astype(np.float32)
    serial = roi_priors(probabilities, cams, images, margin=2, progress=False, workers=1)
    parallel = roi_priors(probabilities, cams, images, margin=2, progress=False, workers=2)
    np.testing.assert_array_equal(parallel, serial)
    assert len({p.tobytes() for p in serial}) > 1  # the slices differ, so the order is checked


def test_a_script_without_the_main_guard_gets_a_clear_error(tmp_path):
    # the pool's workers are spawned and import the script, which starts a pool again
    script = tmp_path / "script.py"
    script.write_text("import numpy as np\n"
                      "from liverseg.prior import roi_priors\n"
                      "p = np.zeros((4, 16, 16), np.float32); p[:, 4:12, 4:12] = 1\n"
                      "roi_priors(p, None, np.zeros_like(p), progress=False, workers=2)\n")
    root = str(Path(__file__).resolve().parents[1])  # this checkout's liverseg, in the workers too
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300, env={**os.environ, "PYTHONPATH": root})
    assert result.returncode != 0
    assert "LiversegError" in result.stderr and 'if __name__ == "__main__":' in result.stderr


def test_bad_arguments_raise_liverseg_errors(slice_):
    probability, image, _ = slice_
    with pytest.raises(InvalidDataError, match="needs the CT image"):
        roi_prior(probability)
    with pytest.raises(InvalidDataError, match="mode"):
        roi_prior(probability, mode="box", use_crf=False)
    with pytest.raises(ShapeError, match="Grad-CAM"):
        roi_prior(probability, np.zeros((32, 32)), use_crf=False)
    with pytest.raises(InvalidDataError, match="NaN"):
        roi_prior(np.full((8, 8), np.nan), use_crf=False)
    with pytest.raises(InvalidDataError, match="margin"):
        roi_prior(probability, margin=-1, use_crf=False)
    with pytest.raises(ShapeError, match="differs"):
        roi_prior(probability, image=image[:10])
    # a slice the CRF need not refine is checked as if it were
    with pytest.raises(InvalidDataError, match="CRF image has NaN"):
        roi_prior(np.zeros((8, 8)), image=np.full((8, 8), np.nan))
    with pytest.raises(ShapeError, match="differs"):
        roi_prior(np.zeros((64, 64)), image=image[:10])


def test_a_stack_whose_slices_need_no_crf_is_still_checked(slice_):
    _, image, _ = slice_
    faint = np.full((3, 64, 64), 0.2)  # no slice can pass: none reaches the CRF
    images = np.stack([image] * 3)
    assert not roi_priors(faint, None, images, progress=False).any()
    broken = images.copy()
    broken[1, 5, 5] = np.nan
    with pytest.raises(InvalidDataError, match="CRF image has NaN"):
        roi_priors(faint, None, broken, progress=False)
    above = faint.copy()
    above[2, 0, 0] = 1.5
    with pytest.raises(InvalidDataError, match="must be in"):
        roi_priors(above, None, images, progress=False)
    with pytest.raises(InvalidDataError, match="mode"):
        roi_priors(faint, None, images, progress=False, mode="box")
    with pytest.raises(InvalidDataError, match="needs the CT image"):
        roi_priors(faint, None, None, progress=False)
    with pytest.raises(TypeError, match="thresold"):
        roi_priors(faint, None, images, progress=False, thresold=0.3)
