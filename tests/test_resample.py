"""Slices to the model's square input size and back."""

import numpy as np
import pytest
from scipy import ndimage

from liverseg.errors import InvalidDataError, ShapeError
from liverseg import resample
from liverseg.resample import from_model_size, resize_stack, to_model_size


@pytest.mark.parametrize("shape", [(20, 48), (48, 20), (7, 33), (64, 64), (100, 3)])
def test_round_trip_shapes(shape):
    stack = np.random.default_rng(0).random((5,) + shape)
    model = to_model_size(stack, 32)
    assert model.shape == (5, 32, 32) and model.dtype == np.float32
    back = from_model_size(model, shape)
    assert back.shape == (5,) + shape and back.dtype == np.float32


def test_round_trip_of_a_smooth_image_is_close():
    y, x = np.mgrid[0:40, 0:90]
    image = np.sin(y / 9.0) * np.cos(x / 13.0)
    back = from_model_size(to_model_size(image[None], 128), (40, 90))[0]
    assert np.abs(back - image).max() < 0.01


def test_same_size_is_a_no_op():
    stack = np.random.default_rng(1).random((3, 16, 16)).astype(np.float32)
    assert to_model_size(stack, 16) is stack
    labels = (stack > 0.5).astype(np.uint8)
    assert to_model_size(labels, 16, order=0) is labels
    as_float = to_model_size(stack.astype(np.float64), 16)          # only the dtype changes
    assert as_float.dtype == np.float32
    np.testing.assert_array_equal(as_float, stack)


def test_label_keeps_its_values_with_order_0():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, (4, 30, 50)).astype(np.uint8)
    for shape in [(64, 64), (17, 17), (30, 120)]:
        out = resize_stack(labels, shape, order=0)
        assert out.dtype == np.uint8 and out.shape == (4,) + shape
        assert set(np.unique(out)) <= {0, 1, 2}
    up = resize_stack(labels, (90, 200), order=0)                   # integer factors 3 and 4
    np.testing.assert_array_equal(up, labels.repeat(3, axis=1).repeat(4, axis=2))
    back = resize_stack(up, (30, 50), order=0)
    np.testing.assert_array_equal(back, labels)


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("source, target", [((20, 48), (64, 64)), ((64, 64), (20, 48)),
                                            ((9, 5), (9, 31)), ((31, 7), (4, 13)),
                                            ((16, 12), (8, 6))])
def test_same_values_as_scipy_zoom_on_pixel_grid(order, source, target):
    """The conventions of ``scipy.ndimage.zoom(grid_mode=True, mode="nearest")`` / skimage."""
    stack = np.random.default_rng(3).random((2,) + source).astype(np.float32)
    factors = (1, target[0] / source[0], target[1] / source[1])
    expected = ndimage.zoom(stack, factors, order=order, grid_mode=True, mode="nearest", prefilter=False)
    np.testing.assert_allclose(resize_stack(stack, target, order), expected, atol=1e-6)


def test_bilinear_stays_in_range_and_keeps_constants():
    stack = np.random.default_rng(4).random((2, 11, 23))
    out = resize_stack(stack, (40, 9))
    assert stack.min() <= out.min() and out.max() <= stack.max()
    constant = resize_stack(np.full((1, 5, 7), 0.25), (13, 3))
    np.testing.assert_array_equal(constant, 0.25)


def test_blocks_of_slices_give_the_same_result(monkeypatch):
    stack = np.random.default_rng(5).random((7, 10, 12)).astype(np.float32)
    whole = resize_stack(stack, (25, 8))
    monkeypatch.setattr(resample, "_CHUNK_BYTES", 1)                # one slice at a time
    np.testing.assert_array_equal(resize_stack(stack, (25, 8)), whole)


def test_empty_stack():
    assert to_model_size(np.zeros((0, 10, 20)), 8).shape == (0, 8, 8)


def test_errors():
    with pytest.raises(ShapeError, match=r"\(n, h, w\)"):
        to_model_size(np.zeros((10, 20)), 8)
    with pytest.raises(InvalidDataError, match="order"):
        to_model_size(np.zeros((1, 10, 20)), 8, order=3)
    with pytest.raises(InvalidDataError, match="positive"):
        to_model_size(np.zeros((1, 10, 20)), 0)
    with pytest.raises(InvalidDataError, match=r"\(height, width\)"):
        from_model_size(np.zeros((1, 8, 8)), (10,))
