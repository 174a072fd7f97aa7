"""The dense CRF on a bilateral grid (``prior.crf.engine="grid"``) against pydensecrf."""

import dataclasses

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from liverseg.crf import CRFParams, dense_crf

pytestmark = pytest.mark.keras  # array operations on the Keras backend: on each backend

SMALL = CRFParams(gaussian_sxy=1.0, bilateral_sxy=2.5)  # the 64-pixel profiles' distances


def _slices(n, size, seed=0):
    """``n`` noisy CT slices of an ellipse of liver (110 HU) in fat, and blurred, shifted
    probability maps of it with a doubtful rim and specks, as a localizer gives."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images, maps = [], []
    for _ in range(n):
        cy, cx = rng.uniform(0.4, 0.6, 2) * size
        organ = (yy - cy) ** 2 / (0.25 * size) ** 2 + (xx - cx) ** 2 / (0.2 * size) ** 2 < 1
        images.append(np.where(organ, 110.0, -70.0) + rng.normal(0, 12, organ.shape))
        shift = rng.integers(-size // 20, size // 20 + 1, 2)
        blurred = gaussian_filter(np.roll(organ, tuple(shift), (0, 1)).astype(float), size / 30)
        maps.append(np.clip(0.95 * blurred + rng.uniform(0, 0.3, organ.shape) ** 4, 0, 1))
    return np.stack(maps), np.stack(images)


@pytest.mark.parametrize("size, params", [(64, SMALL), (256, CRFParams(gaussian_sxy=1.5,
                                                                        bilateral_sxy=10.0))])
def test_the_grid_refines_as_pydensecrf_does_within_its_own_approximation(size, params):
    from liverseg.crf_grid import dense_crf_stack

    maps, images = _slices(6, size)
    reference = np.stack([dense_crf(m, i, params) for m, i in zip(maps, images)])
    grid = dense_crf_stack(maps, images, params)
    assert grid.shape == maps.shape and grid.dtype == np.float32
    # pydensecrf with every distance 5 % longer: how far its own lattice moves the marginals
    wider = dataclasses.replace(params, gaussian_sxy=params.gaussian_sxy * 1.05,
                                bilateral_sxy=params.bilateral_sxy * 1.05,
                                bilateral_srgb=params.bilateral_srgb * 1.05)
    itself = np.stack([dense_crf(m, i, wider) for m, i in zip(maps, images)])
    assert np.abs(grid - reference).mean() < np.abs(itself - reference).mean()
    disagree = ((grid > 0.5) != (reference > 0.5)).mean()
    assert disagree < ((itself > 0.5) != (reference > 0.5)).mean()
    # and the CRF did something: the refined masks differ from the maps thresholded
    assert ((maps > 0.5) != (reference > 0.5)).mean() > 10 * disagree


def test_the_engine_setting_refines_every_slice_that_can_pass_in_one_call(monkeypatch):
    import liverseg.crf_grid
    from liverseg.prior import roi_prior, roi_priors

    maps, images = _slices(5, 64, seed=1)
    maps[2] *= 0.4  # never above 0.4: no CRF
    grid = dataclasses.replace(SMALL, engine="grid")
    calls = []
    stack = liverseg.crf_grid.dense_crf_stack
    monkeypatch.setattr(liverseg.crf_grid, "dense_crf_stack",
                        lambda m, i, p: calls.append(len(m)) or stack(m, i, p))
    priors = roi_priors(maps, None, images, progress=False, margin=2, crf_params=grid)
    assert calls == [4]
    assert not priors[2].any()
    lattice = roi_priors(maps, None, images, progress=False, margin=2, crf_params=SMALL)
    assert (priors == lattice).mean() > 0.99  # boxes from the two engines: nearly the same
    single = roi_prior(maps[0], None, images[0], margin=2, crf_params=grid)
    np.testing.assert_array_equal(single, priors[0])
