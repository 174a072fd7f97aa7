"""Multi-plane fusion (Eq. 8) against plain NumPy."""

import numpy as np
import pytest

from liverseg.errors import InvalidDataError, ShapeError
from liverseg.inference import (
    METHODS,
    FusionAccumulator,
    fuse,
    intersection,
    majority,
    soft_vote,
    union,
)


def random_planes(seed, n=3, dtype=np.float32):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 13, size=3))
    return [rng.random(shape).astype(dtype) for _ in range(n)]


def reference(planes, method, threshold=0.5):
    stack = np.stack(planes).astype(np.float64)
    votes = (stack > threshold).sum(axis=0)
    return {
        "soft": stack.mean(axis=0) > threshold,
        "union": votes >= 1,
        "intersection": votes == len(planes),
        "majority": votes > len(planes) / 2,
    }[method]


def near_threshold(planes, threshold):
    """Voxels whose mean lies within float32 rounding of the threshold (either answer is fine)."""
    return np.abs(np.mean(np.stack(planes).astype(np.float64), axis=0) - threshold) < 1e-6


SEEDS = range(5)


@pytest.mark.parametrize("seed", SEEDS)
def test_soft_vote_is_the_mean(seed):
    planes = random_planes(seed)
    mean = soft_vote(planes)
    assert mean.dtype == np.float32 and mean.shape == planes[0].shape
    np.testing.assert_allclose(mean, np.mean(np.stack(planes).astype(np.float64), axis=0), atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("threshold", [0.5, 0.3])
@pytest.mark.parametrize("method", METHODS)
def test_fuse_matches_numpy(seed, threshold, method):
    planes = random_planes(seed)
    mask = fuse(planes, method, threshold)
    expected = reference(planes, method, threshold)
    assert mask.dtype == bool and mask.shape == planes[0].shape
    if method == "soft":
        settled = ~near_threshold(planes, threshold)
        np.testing.assert_array_equal(mask[settled], expected[settled])
    else:
        np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_named_hard_votes(seed):
    planes = random_planes(seed)
    np.testing.assert_array_equal(union(planes), reference(planes, "union"))
    np.testing.assert_array_equal(intersection(planes), reference(planes, "intersection"))
    np.testing.assert_array_equal(majority(planes), reference(planes, "majority"))
    assert (intersection(planes) <= majority(planes)).all() and (majority(planes) <= union(planes)).all()


def test_majority_needs_more_than_half():
    yes, no = np.ones((1, 1, 1)), np.zeros((1, 1, 1))
    assert majority([yes, yes, no])[0, 0, 0] and not majority([yes, no, no])[0, 0, 0]
    assert not majority([yes, yes, no, no])[0, 0, 0]     # 2 of 4 is not a majority
    assert majority([yes, yes, yes, no])[0, 0, 0]
    assert not majority([yes, no])[0, 0, 0]


def test_threshold_is_strict():
    half = np.full((2, 2, 2), 0.5, np.float32)
    for method in METHODS:
        assert not fuse([half, half, half], method).any()
        assert fuse([half, half, half], method, threshold=0.49).all()


def test_soft_vote_lets_one_plane_fail():
    good, failed = np.full((1, 1, 2), 0.9), np.array([[[0.0, 0.9]]])
    np.testing.assert_array_equal(fuse([good, good, failed], "soft")[0, 0], [True, True])
    np.testing.assert_array_equal(fuse([good, good, failed], "intersection")[0, 0], [False, True])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", METHODS)
def test_accumulator_equals_one_shot(seed, method):
    planes = random_planes(seed, n=4)
    accumulator = FusionAccumulator(method, planes[0].shape)
    for i, plane in enumerate(planes):
        accumulator.add(plane)
        assert accumulator.n_planes == i + 1
    np.testing.assert_array_equal(accumulator.result(), fuse(planes, method))
    np.testing.assert_array_equal(accumulator.result(), fuse(iter(planes), method))  # generators too
    if method == "soft":
        np.testing.assert_array_equal(accumulator.probability(), soft_vote(planes))


@pytest.mark.parametrize("seed", SEEDS)
def test_float16_planes(seed):
    planes = random_planes(seed, dtype=np.float16)
    accumulator = FusionAccumulator("soft", planes[0].shape)
    for plane in planes:
        accumulator.add(plane)
    probability = accumulator.probability()
    assert probability.dtype == np.float32
    np.testing.assert_allclose(probability, np.stack(planes).astype(np.float64).mean(axis=0), atol=1e-6)
    for method in METHODS[1:]:
        np.testing.assert_array_equal(fuse(planes, method), reference(planes, method))


def test_boolean_and_integer_masks_are_probabilities():
    a = np.array([[[True, False, True]]])
    b = np.array([[[1, 0, 0]]], np.uint8)
    np.testing.assert_array_equal(union([a, b])[0, 0], [True, False, True])
    np.testing.assert_allclose(soft_vote([a, b])[0, 0], [1.0, 0.0, 0.5])


def test_result_is_a_copy_and_input_is_untouched():
    plane = np.full((2, 3, 4), 0.7, np.float32)
    accumulator = FusionAccumulator("intersection", (2, 3, 4))
    accumulator.add(plane)
    result = accumulator.result()
    result[:] = False                                   # a copy, not the state
    assert accumulator.result().all() and (plane == np.float32(0.7)).all()


def test_errors():
    shape = (2, 3, 4)
    ok = np.zeros(shape)
    with pytest.raises(InvalidDataError, match="no planes"):
        fuse([])
    with pytest.raises(InvalidDataError, match="no planes"):
        FusionAccumulator("union", shape).result()
    with pytest.raises(ShapeError, match=r"plane 2 has shape \(2, 3, 5\)"):
        fuse([ok, ok, np.zeros((2, 3, 5))])
    with pytest.raises(ShapeError, match="plane 0"):
        fuse([np.zeros((3, 4)), np.zeros((3, 4))])
    with pytest.raises(ShapeError, match="single array"):
        fuse(ok)
    nan = ok.copy()
    nan[1, 1, 1] = np.nan
    with pytest.raises(InvalidDataError, match="plane 1: .*NaN"):
        fuse([ok, nan])
    with pytest.raises(InvalidDataError, match="plane 0: .*1.2"):
        fuse([ok + 1.2, ok])
    with pytest.raises(InvalidDataError, match=r"\[0, 1\]"):
        soft_vote([ok, ok - 0.1])
    with pytest.raises(InvalidDataError, match="unknown fusion method 'mean'"):
        fuse([ok], "mean")
    with pytest.raises(InvalidDataError, match="unknown fusion method"):
        FusionAccumulator("vote", shape)
    with pytest.raises(InvalidDataError, match="threshold"):
        fuse([ok], threshold=1.5)
    with pytest.raises(InvalidDataError, match="probability"):
        accumulator = FusionAccumulator("majority", shape)
        accumulator.add(ok)
        accumulator.probability()
    with pytest.raises(InvalidDataError, match="real numbers"):
        fuse([ok.astype(complex)])
    accumulator = FusionAccumulator("soft", shape)
    with pytest.raises(ShapeError, match="plane 0 has shape"):
        accumulator.add(np.zeros((4, 3, 2)))
