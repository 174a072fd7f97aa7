"""Dense-CRF refinement on a synthetic CT disc."""

import numpy as np
import pytest
from scipy import ndimage

from liverseg.crf import CRFParams, dense_crf, grey_levels
from liverseg.errors import InvalidDataError, SettingError, ShapeError


def dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


@pytest.fixture
def disc():
    """A liver-like disc (110 HU) in fat (-80 HU) with 12 HU noise, and a poor prediction:
    the disc shifted by a few pixels, blurred and noisy."""
    rng = np.random.default_rng(0)
    yy, xx = np.indices((64, 64))
    truth = (yy - 30) ** 2 + (xx - 34) ** 2 < 16**2
    image = np.where(truth, 110.0, -80.0) + rng.normal(0, 12, truth.shape)
    shifted = ndimage.shift(truth.astype(float), (2, -3), order=0)
    noise = rng.normal(0, 0.15, truth.shape)
    probability = np.clip(ndimage.gaussian_filter(shifted, 4) + noise, 0, 1)
    return probability, image, truth


def test_crf_pulls_a_shifted_blurred_prediction_onto_the_edges(disc):
    probability, image, truth = disc
    refined = dense_crf(probability, image)
    assert refined.shape == probability.shape and refined.dtype == np.float32
    assert 0 <= refined.min() and refined.max() <= 1
    assert dice(probability > 0.5, truth) < 0.85
    assert dice(refined > 0.5, truth) > 0.97


def test_without_pairwise_terms_the_crf_returns_the_probability(disc):
    probability, image, _ = disc
    plain = dense_crf(probability, image, gaussian_compat=0, bilateral_compat=0)
    np.testing.assert_allclose(plain, np.clip(probability, 1e-5, 1 - 1e-5), atol=1e-4)


def test_the_grey_level_term_is_what_finds_the_edge(disc):
    probability, image, truth = disc
    colour_blind = dense_crf(probability, image, CRFParams(bilateral_srgb=1000))
    smooth_only = dense_crf(probability, image, bilateral_compat=0, gaussian_compat=10)
    for refined in (colour_blind, smooth_only):
        assert dice(refined > 0.5, truth) < 0.9
    one_step = dense_crf(probability, image, iterations=1)
    assert np.abs(one_step - dense_crf(probability, image)).max() > 0.1


def test_grey_levels_window_and_self_range():
    image = np.array([[-1000.0, -100.0], [50.0, 3000.0]])
    np.testing.assert_allclose(grey_levels(image, (-100, 200)), [[0, 0], [127.5, 255]])
    own_range = [[0, 900 * 255 / 4000], [1050 * 255 / 4000, 255]]
    np.testing.assert_allclose(grey_levels(image, None), own_range)
    assert not grey_levels(np.full((2, 2), 7.0), None).any()


def test_bad_inputs_raise_liverseg_errors(disc):
    probability, image, _ = disc
    with pytest.raises(ShapeError, match="differs"):
        dense_crf(probability, image[:-1])
    with pytest.raises(ShapeError, match="one"):
        dense_crf(probability[None], image[None])
    broken = probability.copy()
    broken[3, 3] = np.nan
    with pytest.raises(InvalidDataError, match="NaN"):
        dense_crf(broken, image)
    with pytest.raises(InvalidDataError, match="NaN"):
        dense_crf(probability, np.where(image > 0, np.inf, image))
    with pytest.raises(InvalidDataError, match=r"\[0, 1\]"):
        dense_crf(probability * 2, image)
    with pytest.raises(SettingError, match=r"prior\.crf\.iterations"):
        dense_crf(probability, image, iterations=0)
    with pytest.raises(SettingError, match=r"prior\.crf\.window"):
        CRFParams(window=(200, -100))
