"""Multi-level patches and the μ area threshold (Eq. 7) on hand-counted labels."""

import numpy as np
import pytest

from liverseg.errors import InvalidDataError, ShapeError
from liverseg.resample import resize_stack
from liverseg.patches import (
    PatchSet,
    area_ratio,
    extract_level,
    extract_patches,
    grid_size,
    patch_grid,
)

# 8 × 8 label. Level 2 (2 × 2 grid of 4 × 4 patches, 16 px each), μ:
#   top-left 4/16 = 0.25, top-right 7/16 = 0.4375, bottom-left 8/16 = 0.5, bottom-right 1/16.
# Level 3 (4 × 4 grid of 2 × 2 patches, 4 px each), μ:
#   row 0: 1, 0, 1, 0.5    row 1: 0, 0, 0.25, 0    row 2: 1, 0, 0, 0    row 3: 1, 0, 0, 0.25
PATTERN = """
11..1111
11..11..
........
....1...
11......
11......
11......
11.....1
"""
LABEL = np.array([[c == "1" for c in line] for line in PATTERN.split()], np.uint8)
IMAGE = np.arange(64, dtype=np.float32).reshape(8, 8)

KEPT_AT_03 = {2: [(0, 1), (1, 0)], 3: [(0, 0), (0, 2), (0, 3), (2, 0), (3, 0)]}
KEPT_AT_025 = {2: [(0, 0), (0, 1), (1, 0)],
               3: [(0, 0), (0, 2), (0, 3), (1, 2), (2, 0), (3, 0), (3, 3)]}
KEPT_AT_05 = {2: [(1, 0)], 3: [(0, 0), (0, 2), (0, 3), (2, 0), (3, 0)]}


def tiles(patches: PatchSet):
    return list(zip(patches.row.tolist(), patches.col.tolist()))


def test_hand_counted_label():
    assert LABEL.shape == (8, 8) and LABEL.sum() == 4 + 7 + 8 + 1


@pytest.mark.parametrize("threshold, kept", [(0.3, KEPT_AT_03), (0.25, KEPT_AT_025), (0.5, KEPT_AT_05)])
@pytest.mark.parametrize("level", [2, 3])
def test_mu_filter_keeps_hand_counted_patches(level, threshold, kept):
    patches = extract_level(IMAGE[None], LABEL[None], level, threshold)
    assert tiles(patches) == kept[level]          # 0.25 and 0.5 patches pin the >= edge
    assert (patches.area_ratio >= threshold).all()


def test_area_ratios_of_kept_patches():
    level2 = extract_level(IMAGE[None], LABEL[None], 2, threshold=0.0)
    np.testing.assert_array_equal(level2.area_ratio, [0.25, 0.4375, 0.5, 0.0625])
    level3 = extract_level(IMAGE[None], LABEL[None], 3, threshold=0.3)
    np.testing.assert_array_equal(level3.area_ratio, [1.0, 1.0, 0.5, 1.0, 1.0])


def test_area_ratio_single_patch_and_stack():
    assert area_ratio(LABEL[:4, :4]) == 0.25
    assert area_ratio(LABEL[4:, :4].astype(bool)) == 0.5
    np.testing.assert_array_equal(area_ratio(np.stack([LABEL[:4, 4:], LABEL[4:, 4:]])), [7 / 16, 1 / 16])


def test_area_ratio_float_labels_use_half_as_cut():
    probability = np.array([[0.5, 0.51], [0.9, np.nan]])
    assert area_ratio(probability) == 0.5         # 0.5 and NaN are background


def test_area_ratio_integer_labels_count_non_zero():
    assert area_ratio(np.array([[0, 1], [2, 0]])) == 0.5


def test_patches_cut_images_labels_and_extra_at_the_same_place():
    rng = np.random.default_rng(3)
    images = rng.normal(size=(3, 16, 24)).astype(np.float32)
    labels = rng.random((3, 16, 24)) > 0.6
    prior = rng.integers(0, 5, (3, 16, 24)).astype(np.int16)
    for level in (2, 3, 4):
        patches = extract_level(images, labels, level, threshold=0.3, extra={"prior": prior})
        grid = patch_grid((16, 24), level)
        f = grid_size(level)
        assert len(patches) > 0 and patches.images.shape[1:] == (16 // f, 24 // f)
        assert patches.extra["prior"].dtype == np.int16 and patches.labels.dtype == bool
        for i in range(len(patches)):
            s, r, c = patches.slice_index[i], patches.row[i], patches.col[i]
            where = grid[r * f + c]
            np.testing.assert_array_equal(patches.images[i], images[s][where])
            np.testing.assert_array_equal(patches.labels[i], labels[s][where])
            np.testing.assert_array_equal(patches.extra["prior"][i], prior[s][where])
            assert patches.area_ratio[i] == labels[s][where].mean() >= 0.3
        all_ratios = [labels[s][w].mean() for s in range(3) for w in grid]
        assert len(patches) == sum(r >= 0.3 for r in all_ratios)


def test_patch_grid_covers_slice_without_overlap():
    grid = patch_grid((12, 20), 3)
    assert len(grid) == 16
    assert grid[0] == (slice(0, 3), slice(0, 5)) and grid[5] == (slice(3, 6), slice(5, 10))
    count = np.zeros((12, 20), int)
    for rows, cols in grid:
        count[rows, cols] += 1
    assert (count == 1).all()


def test_extract_patches_order_and_provenance():
    images = np.stack([IMAGE, IMAGE + 100, IMAGE + 200])
    labels = np.stack([LABEL, np.zeros_like(LABEL), LABEL])
    patches = extract_patches(images, labels, levels=(3, 2), threshold=0.3)
    one_slice = [(2, r, c) for r, c in KEPT_AT_03[2]] + [(3, r, c) for r, c in KEPT_AT_03[3]]
    expected = [(0,) + t for t in one_slice] + [(2,) + t for t in one_slice]
    got = list(zip(patches.slice_index.tolist(), patches.level.tolist(),
                   patches.row.tolist(), patches.col.tolist()))
    assert got == expected                       # slice, level, row, col — whatever the levels' order
    assert all(a.dtype == np.int64 for a in (patches.slice_index, patches.level, patches.row, patches.col))
    np.testing.assert_array_equal(patches.area_ratio[:7], [0.4375, 0.5, 1, 1, 0.5, 1, 1])
    assert patches.images[7].min() >= 200        # the first patch of slice 2 comes from slice 2


def test_extract_patches_resizes_to_slice_size():
    prior = np.zeros((1, 8, 8), np.float32)
    prior[0, :, 1] = 1
    patches = extract_patches(IMAGE[None], LABEL[None], levels=(2, 3), threshold=0.3,
                              extra={"prior": prior})
    native = {level: extract_level(IMAGE[None], LABEL[None], level, 0.3, extra={"prior": prior})
              for level in (2, 3)}
    assert patches.images.shape == patches.labels.shape == patches.extra["prior"].shape == (7, 8, 8)
    assert patches.images.dtype == np.float32 and patches.labels.dtype == np.uint8
    for i, level in enumerate(patches.level):
        part = native[level]
        j = tiles(part).index((patches.row[i], patches.col[i]))
        f = grid_size(level)
        block = np.ones((f, f), np.uint8)
        # nearest repeats every pixel f × f times exactly, for labels and priors
        np.testing.assert_array_equal(patches.labels[i], np.kron(part.labels[j], block))
        np.testing.assert_array_equal(patches.extra["prior"][i], np.kron(part.extra["prior"][j], block))
        np.testing.assert_array_equal(patches.images[i], resize_stack(part.images[j:j + 1], (8, 8))[0])
        assert part.images[j].min() <= patches.images[i].min() <= patches.images[i].max() <= part.images[j].max()
        assert patches.area_ratio[i] == area_ratio(part.labels[j])


def test_extract_patches_output_size():
    patches = extract_patches(IMAGE[None], LABEL[None], levels=(2, 3), output_size=4)
    assert patches.images.shape == (7, 4, 4)
    level2 = extract_level(IMAGE[None], LABEL[None], 2)
    np.testing.assert_array_equal(patches.images[:2], level2.images)   # already 4 × 4: untouched
    assert extract_patches(IMAGE[None], LABEL[None], output_size=(16, 8)).images.shape[1:] == (16, 8)


def test_no_patch_passes_gives_empty_set():
    patches = extract_patches(np.zeros((2, 8, 8)), np.zeros((2, 8, 8), bool), threshold=0.3,
                              extra={"prior": np.ones((2, 8, 8))})
    assert len(patches) == 0
    assert patches.images.shape == (0, 8, 8) and patches.extra["prior"].shape == (0, 8, 8)
    assert patches.slice_index.shape == (0,)


def test_threshold_zero_keeps_every_tile():
    patches = extract_patches(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), levels=(2, 3, 4), threshold=0)
    assert len(patches) == 2 * (4 + 16 + 64)


@pytest.mark.parametrize("level", [1, 0, -2, 2.0, True])
def test_bad_levels_are_refused(level):
    with pytest.raises(InvalidDataError, match="level"):
        patch_grid((8, 8), level)


def test_indivisible_slice_is_refused():
    with pytest.raises(ShapeError, match=r"12 × 8 slice cannot be cut into a 8 × 8 grid"):
        patch_grid((12, 8), 4)
    with pytest.raises(ShapeError, match="multiples of 4"):
        extract_patches(np.zeros((1, 8, 10)), np.zeros((1, 8, 10)), levels=(2, 3))


def test_input_errors():
    image, label = IMAGE[None], LABEL[None]
    with pytest.raises(ShapeError, match="labels have shape"):
        extract_patches(image, np.zeros((1, 8, 4)))
    with pytest.raises(ShapeError, match="'prior'"):
        extract_patches(image, label, extra={"prior": np.zeros((2, 8, 8))})
    with pytest.raises(ShapeError, match=r"\(N, H, W\)"):
        extract_patches(IMAGE, LABEL)
    with pytest.raises(InvalidDataError, match=r"\[0, 1\]"):
        extract_patches(image, label, threshold=1.5)
    with pytest.raises(InvalidDataError, match=r"\[0, 1\]"):
        extract_level(image, label, 2, threshold=float("nan"))
    with pytest.raises(InvalidDataError, match="distinct"):
        extract_patches(image, label, levels=(2, 2))
    with pytest.raises(InvalidDataError, match="distinct"):
        extract_patches(image, label, levels=())
    with pytest.raises(InvalidDataError, match="output_size"):
        extract_patches(image, label, output_size=0)
    with pytest.raises(InvalidDataError, match="dtype"):
        extract_patches(image, np.full((1, 8, 8), "a"))
    with pytest.raises(ShapeError):
        area_ratio(np.zeros(4))
