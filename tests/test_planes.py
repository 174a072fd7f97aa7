"""Axial / coronal / sagittal slicing of the canonical (z, y, x) array and its exact inverse."""

import numpy as np
import pytest

from liverseg.datasets.planes import PLANES, from_slices, plane_spacing, to_slices
from liverseg.errors import InvalidDataError, ShapeError

SHAPE = (5, 7, 11)  # non-cubic, so a wrong transpose cannot pass


@pytest.fixture
def volume():
    return np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE)


@pytest.mark.parametrize("plane", PLANES)
def test_round_trip_is_exact(volume, plane):
    back = from_slices(to_slices(volume, plane), plane)
    assert back.shape == volume.shape and back.dtype == volume.dtype
    np.testing.assert_array_equal(back, volume)


def test_stack_shapes(volume):
    assert to_slices(volume, "axial").shape == (5, 7, 11)
    assert to_slices(volume, "coronal").shape == (7, 5, 11)
    assert to_slices(volume, "sagittal").shape == (11, 5, 7)


def test_marker_lands_where_documented():
    nz, ny, nx = SHAPE
    z, y, x = 1, 2, 8  # an inferior, anterior, left-side voxel
    volume = np.zeros(SHAPE, dtype=np.uint8)
    volume[z, y, x] = 1

    def where(plane):
        return tuple(int(i) for i in np.argwhere(to_slices(volume, plane))[0])

    assert where("axial") == (z, y, x)
    # coronal: slice y, row 0 is the most superior z, column = x
    assert where("coronal") == (y, nz - 1 - z, x)
    # sagittal: slice x, row 0 is the most superior z, column = y (anterior on the left)
    assert where("sagittal") == (x, nz - 1 - z, y)


def test_superior_at_top_of_coronal_and_sagittal():
    volume = np.broadcast_to(np.arange(SHAPE[0])[:, None, None], SHAPE)  # value = z index
    for plane in ("coronal", "sagittal"):
        first_column = to_slices(volume, plane)[0, :, 0]
        assert first_column[0] == SHAPE[0] - 1 and first_column[-1] == 0


def test_inverse_of_edited_slices(volume):
    slices = to_slices(volume, "sagittal").copy()
    slices[3, 0, 4] = -1  # top row of sagittal slice x=3, column y=4 → the most superior z
    back = from_slices(slices, "sagittal")
    assert back[SHAPE[0] - 1, 4, 3] == -1
    assert (back == -1).sum() == 1


def test_plane_spacing():
    assert plane_spacing((2.5, 0.7, 0.8), "axial") == (2.5, 0.7, 0.8)
    assert plane_spacing((2.5, 0.7, 0.8), "coronal") == (0.7, 2.5, 0.8)
    assert plane_spacing((2.5, 0.7, 0.8), "sagittal") == (0.8, 2.5, 0.7)


def test_bad_input(volume):
    with pytest.raises(InvalidDataError, match="unknown plane 'transverse'"):
        to_slices(volume, "transverse")
    with pytest.raises(ShapeError):
        to_slices(volume[0], "axial")
    with pytest.raises(ShapeError):
        from_slices(volume[None], "coronal")
