"""A lesion's matched-footprint z: its contrast against what its liver varies by at its size."""

import math

import numpy as np
import pytest

from liverseg.errors import InvalidDataError, ShapeError
from liverseg.metrics.visibility import lesion_visibility


def _liver_with(contrasts, sigma=10.0, seed=0):
    """A 6 × 64 × 64 liver of white noise ``sigma`` with 3-slice discs of radius 3 darker by
    ``contrasts``, side by side."""
    rng = np.random.default_rng(seed)
    image = 100 + rng.normal(0, sigma, (6, 64, 64))
    liver = np.ones(image.shape, bool)
    lesions = np.zeros(image.shape, bool)
    yy, xx = np.mgrid[:64, :64]
    for i, contrast in enumerate(contrasts):
        disc = (yy - 12) ** 2 + (xx - 10 - 14 * i) ** 2 <= 9
        lesions[1:4, disc] = True
        image[1:4, disc] -= contrast
    return image, lesions, liver


def test_z_is_the_contrast_over_the_noise_of_a_footprint_mean():
    image, lesions, liver = _liver_with([0.0, 4.0, 20.0])
    rows = lesion_visibility(image, lesions, liver)
    assert [r["voxels"] for r in rows] == [3 * 29] * 3
    expected = [c * math.sqrt(87) / 10.0 for c in (0.0, 4.0, 20.0)]  # white noise: sd/sqrt(n)
    for row, z, contrast in zip(rows, expected, (0.0, 4.0, 20.0)):
        assert abs(row["contrast"] - contrast) < 2.5
        assert abs(row["z"] - z) < 2.5
    assert abs(rows[0]["z"]) < 3 < rows[1]["z"]  # an invisible lesion, a visible one
    bright = lesion_visibility(-image, lesions, liver)[2]  # hyperdense: z < 0
    assert bright["z"] < -10


def test_a_lesion_larger_than_any_other_place_in_its_liver_has_no_z():
    image, lesions, liver = _liver_with([20.0])
    liver[:] = False
    liver[1:4, 5:20, 3:18] = True  # only the lesion's surroundings
    (row,) = lesion_visibility(image, lesions, liver)
    assert math.isnan(row["z"]) and math.isnan(row["contrast"]) and row["voxels"] == 87
    assert lesion_visibility(image, np.zeros_like(lesions), liver) == []


def test_bad_input_is_refused():
    image, lesions, liver = _liver_with([10.0])
    with pytest.raises(ShapeError, match="one shape"):
        lesion_visibility(image[:3], lesions, liver)
    image[0, 0, 0] = np.nan
    with pytest.raises(InvalidDataError, match="NaN"):
        lesion_visibility(image, lesions, liver)
