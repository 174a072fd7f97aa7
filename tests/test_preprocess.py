"""Section 3.2 preprocessing: HU window, median filter, z-score, and their composition."""

import numpy as np
import pytest

from liverseg.errors import InvalidDataError, SettingError, ShapeError
from liverseg.preprocess import (PreprocessConfig, median_filter, preprocess, volume_statistics,
                                 window, zscore)

RNG = np.random.default_rng(0)


def ct(shape=(4, 32, 32)):
    return RNG.normal(60, 150, size=shape).round().astype(np.int16)


def test_window_clips_to_the_paper_range():
    hu = np.array([-1000, -101, -100, 0, 200, 201, 3000], dtype=np.int16)
    out = window(hu)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [-100, -100, -100, 0, 200, 200, 200])
    np.testing.assert_array_equal(window(hu, 0, 100), [0, 0, 0, 0, 100, 100, 100])
    with pytest.raises(InvalidDataError, match="low < high"):
        window(hu, 200, -100)


def test_zscore_volume_and_slice_scope():
    x = ct().astype(np.float32) + np.arange(4)[:, None, None] * 100
    z = zscore(x)
    assert z.dtype == np.float32
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-5
    assert abs(z[0].mean()) > 0.3  # one statistic for the whole volume
    zs = zscore(x, scope="slice")
    for k in range(4):
        assert abs(zs[k].mean()) < 1e-5 and abs(zs[k].std() - 1) < 1e-5


def test_zscore_with_mask_uses_only_masked_voxels():
    x = np.zeros((2, 8, 8), np.float32)
    x[:, :4] = RNG.normal(100, 10, size=(2, 4, 8))
    mask = np.zeros(x.shape, bool)
    mask[:, :4] = True
    z = zscore(x, mask=mask)
    assert abs(z[mask].mean()) < 1e-5 and abs(z[mask].std() - 1) < 1e-5
    mask[1] = False  # slice 1 has no mask voxel: whole-mask statistics are used there
    zs = zscore(x, mask=mask, scope="slice")
    masked = x[mask]
    np.testing.assert_allclose(zs[1], (x[1] - masked.mean()) / masked.std(), atol=1e-4)
    np.testing.assert_allclose(zs[0], (x[0] - masked.mean()) / masked.std(), atol=1e-4)
    with pytest.raises(InvalidDataError, match="empty"):
        zscore(x, mask=np.zeros(x.shape, bool))
    with pytest.raises(ShapeError):
        zscore(x, mask=mask[0])


def test_zscore_of_constant_input_is_zeros():
    for x in (np.full((3, 8, 8), 200.0), np.full((8, 8), -100, np.int16)):
        z = zscore(x)
        assert np.isfinite(z).all()
        np.testing.assert_array_equal(z, 0)
    np.testing.assert_array_equal(zscore(np.full((3, 8, 8), 7.0), scope="slice"), 0)


def test_median_removes_salt_noise_per_slice():
    clean = np.full((3, 32, 32), 100, np.float32)
    clean[:, :, 16:] = 150  # an edge the filter must keep
    noisy = clean.copy()
    idx = RNG.choice(clean.size, size=clean.size // 50, replace=False)
    noisy.flat[idx] = 1000  # isolated salt voxels
    out = median_filter(noisy)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, clean)


def test_median_2d_does_not_mix_slices_but_3d_does():
    x = np.zeros((3, 8, 8), np.float32)
    x[1] = 10  # a single bright slice
    np.testing.assert_array_equal(median_filter(x), x)
    np.testing.assert_array_equal(median_filter(x, dims=3), 0)
    with pytest.raises(ShapeError):
        median_filter(x[0], dims=3)


def test_median_commutes_with_window():
    hu = ct()
    np.testing.assert_array_equal(window(median_filter(hu)), median_filter(window(hu)))


def test_preprocess_composes_window_median_zscore():
    hu = ct()
    out = preprocess(hu)
    assert out.dtype == np.float32 and out.shape == hu.shape
    np.testing.assert_allclose(out, zscore(median_filter(window(hu, -100, 200), 3)), atol=1e-6)
    assert abs(out.mean()) < 1e-5 and abs(out.std() - 1) < 1e-5
    plain = preprocess(hu, PreprocessConfig(window=None, median_size=None))
    np.testing.assert_allclose(plain, zscore(hu), atol=1e-6)
    assert preprocess(hu[0]).shape == hu[0].shape


def test_preprocess_rejects_nan_and_inf():
    hu = ct().astype(np.float32)
    hu[1, 2, 3] = np.nan
    with pytest.raises(InvalidDataError, match="volume-3.nii: image has 1 NaN"):
        preprocess(hu, source="volume-3.nii")
    hu[1, 2, 3] = np.inf
    with pytest.raises(InvalidDataError, match="infinite"):
        preprocess(hu)


def test_config_validation():
    assert PreprocessConfig() == PreprocessConfig((-100.0, 200.0), 3, 2, "volume")
    with pytest.raises(SettingError, match=r"preprocess\.window"):
        PreprocessConfig(window=(200, -100))
    with pytest.raises(SettingError, match=r"preprocess\.zscore_scope"):
        PreprocessConfig(zscore_scope="patient")
    with pytest.raises(SettingError, match=r"preprocess\.median_dims"):
        PreprocessConfig(median_dims=4)


def test_fixed_statistics_do_not_depend_on_the_field_of_view():
    # the paper's volume z-score moves a liver with what else the scan holds; fixed
    # statistics give the same voxel the same value in a crop as in the whole volume
    hu = ct((3, 48, 48)).astype(np.float32)
    hu[:, 16:32, 16:32] = 120.0  # a bright organ
    crop = hu[:, 12:36, 12:36]
    fixed = PreprocessConfig(zscore_stats=(-72.0, 58.0))
    whole, cropped = preprocess(hu, fixed), preprocess(crop, fixed)
    np.testing.assert_allclose(cropped[:, 4:20, 4:20], whole[:, 16:32, 16:32])
    np.testing.assert_allclose(whole, (median_filter(window(hu)) + 72.0) / 58.0, rtol=1e-5)
    own_whole, own_crop = preprocess(hu), preprocess(crop)
    assert abs(own_crop[:, 8, 8].mean() - own_whole[:, 20, 20].mean()) > 0.1  # the paper's moves
    mean, sd = volume_statistics(hu)  # what the paper's z-score divides by
    np.testing.assert_allclose(preprocess(hu, PreprocessConfig(zscore_stats=(mean, sd))),
                               own_whole, atol=1e-5)
    with pytest.raises(InvalidDataError, match="a.nii: image has .* NaN"):
        volume_statistics(np.where(hu == hu[0, 1, 1], np.nan, hu), source="a.nii")


def test_fixed_statistics_are_checked_and_keyed_only_once_set():
    from liverseg.config import profile, stage_tree

    with pytest.raises(SettingError, match=r"preprocess\.zscore_stats.*sd"):
        PreprocessConfig(zscore_stats=(0.0, 0.0))
    with pytest.raises(SettingError, match=r"preprocess\.zscore_stats"):
        PreprocessConfig(zscore_stats=(0.0,))
    assert "zscore_stats" not in PreprocessConfig().slice_key()  # old slice folders stay valid
    assert PreprocessConfig(zscore_stats=(1, 2)).slice_key()["zscore_stats"] == (1.0, 2.0)
    smoke = profile("smoke")
    assert "zscore_stats" not in stage_tree(smoke, "localizer")["preprocess"]
    fixed = smoke.replace(**{"preprocess.zscore_stats": (-72.0, 58.0)})
    assert stage_tree(fixed, "localizer")["preprocess"]["zscore_stats"] == (-72.0, 58.0)
