"""Post-processing on synthetic blobs."""

import numpy as np
import pytest

from liverseg import postprocess as pp
from liverseg.errors import InvalidDataError


def ball(shape, centre, radius):
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius ** 2


def test_largest_component_keeps_biggest_blob():
    big = ball((20, 30, 30), (10, 10, 10), 6)
    small = ball((20, 30, 30), (10, 24, 24), 3)
    result = pp.largest_component(big | small)
    np.testing.assert_array_equal(result, big)
    assert result.dtype == bool


def test_largest_component_connectivity():
    mask = np.zeros((5, 5), bool)
    mask[0:2, 0:2] = True                       # 4 pixels
    mask[2, 2] = mask[3, 3] = mask[4, 4] = True  # diagonal chain touching the square
    assert pp.largest_component(mask).sum() == 7           # full connectivity: one object
    assert pp.largest_component(mask, connectivity=1).sum() == 4


def test_empty_masks_come_back_empty():
    empty = np.zeros((4, 6, 6), np.uint8)
    assert not pp.largest_component(empty).any()
    assert not pp.remove_small_components(empty, 5).any()
    assert not pp.fill_holes(empty, per_slice=True).any()
    out = pp.postprocess_label(empty)
    assert out.shape == empty.shape and out.dtype == np.uint8 and not out.any()


def test_remove_small_components_in_voxels_and_mm3():
    mask = np.zeros((10, 10, 10), bool)
    mask[0:2, 0:2, 0:2] = True    # 8 voxels
    mask[5:8, 5:8, 5:8] = True    # 27 voxels
    assert pp.remove_small_components(mask, 8).sum() == 35        # exactly min_size is kept
    assert pp.remove_small_components(mask, 9).sum() == 27
    spacing = (2.0, 1.0, 1.0)    # 2 mm^3 per voxel: 16 and 54 mm^3
    assert pp.remove_small_components(mask, 20, spacing=spacing).sum() == 27
    assert pp.remove_small_components(mask, 16, spacing=spacing).sum() == 35


def test_fill_holes_3d_and_per_slice():
    solid = ball((16, 20, 20), (8, 10, 10), 7)
    cavity = ball((16, 20, 20), (8, 10, 10), 3)
    closed = solid & ~cavity
    np.testing.assert_array_equal(pp.fill_holes(closed), solid)
    # a tunnel along z opens the cavity to the outside in 3D but not within a slice
    tunnel = closed.copy()
    tunnel[:, 10, 10] = False
    assert not pp.fill_holes(tunnel)[8, 10, 10]
    assert pp.fill_holes(tunnel, per_slice=True, axis=0)[8, 10, 10]
    # along another axis the tunnel is cut lengthwise: slices through it are open
    assert not pp.fill_holes(tunnel, per_slice=True, axis=1)[8, 10, 10]


def test_float_probabilities_need_threshold():
    probs = np.zeros((8, 8), np.float32)
    probs[1:4, 1:4] = 0.9
    probs[6, 6] = 0.7
    probs[0, 7] = np.nan
    with pytest.raises(InvalidDataError, match="threshold"):
        pp.largest_component(probs)
    result = pp.largest_component(probs, threshold=0.5)
    assert result.sum() == 9 and not result[0, 7]
    assert pp.remove_small_components(probs, 2, threshold=0.8).sum() == 9
    # exact 0/1 floats (as nibabel's get_fdata returns) need no threshold
    assert pp.largest_component((probs > 0.5).astype(np.float64)).sum() == 9


def test_postprocess_label_cleans_liver_and_lesions():
    shape = (20, 32, 32)
    liver = ball(shape, (10, 14, 14), 8)
    stray = ball(shape, (10, 28, 28), 2)          # false-positive island, with a "lesion"
    lesion = ball(shape, (10, 10, 14), 2)
    hole = ball(shape, (10, 17, 16), 1)            # enclosed background inside the liver
    label = np.zeros(shape, np.uint8)
    label[liver | stray] = 1
    label[lesion] = 2
    label[stray & ball(shape, (10, 28, 28), 1)] = 2
    label[hole] = 0
    out = pp.postprocess_label(label)
    assert out.dtype == np.uint8 and set(np.unique(out)) == {0, 1, 2}
    assert not out[stray].any()                    # island and its lesion dropped
    np.testing.assert_array_equal(out == 2, lesion)  # lesion in the liver kept
    assert (out[hole] == 1).all()                  # hole filled with liver
    np.testing.assert_array_equal(out >= 1, liver)
    assert (pp.postprocess_label(label, fill=None)[hole] == 0).all()  # hole left open


def test_postprocess_label_removes_small_lesions():
    shape = (12, 24, 24)
    label = np.zeros(shape, np.uint8)
    label[ball(shape, (6, 12, 12), 7)] = 1
    label[ball(shape, (6, 9, 12), 2)] = 2   # 33 voxels
    label[6, 16, 12] = 2                    # one-voxel speck
    out = pp.postprocess_label(label, min_lesion_size=5)
    assert out[6, 16, 12] == 1 and (out == 2).sum() == (label == 2).sum() - 1
    spacing = (2.0, 0.5, 0.5)  # 0.5 mm^3 per voxel: the speck is 0.5 mm^3, the lesion 16.5
    in_mm3 = pp.postprocess_label(label, min_lesion_size=10, spacing=spacing)
    assert (in_mm3 == 2).sum() == (label == 2).sum() - 1
    assert not (pp.postprocess_label(label, min_lesion_size=40) == 2).any()


def test_postprocess_label_rejects_bad_labels():
    with pytest.raises(InvalidDataError, match="expected 0, 1 or 2"):
        pp.postprocess_label(np.full((3, 3, 3), 4, np.uint8))
    with pytest.raises(InvalidDataError, match="NaN"):
        pp.postprocess_label(np.full((3, 3, 3), np.nan))
