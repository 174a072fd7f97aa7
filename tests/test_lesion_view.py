"""The lesion networks' view of a volume: the liver region, masked, cropped to its box."""

import dataclasses

import numpy as np
import pytest

from liverseg.config import InferenceConfig
from liverseg.datasets.synthetic import make_case
from liverseg.errors import InvalidDataError, ShapeError
from liverseg.labels import LESION, LIVER
from liverseg.lesion_view import HU_FLOOR, lesion_view, region_box
from liverseg.preprocess import preprocess
from liverseg.train.slices import build_slices, case_slices, slice_count


def _volume(shape=(10, 30, 40)):
    rng = np.random.default_rng(0)
    hu = rng.normal(50.0, 30.0, shape).astype(np.float32)
    hu[:, :3] = -1000.0  # air at the top rows: the window's floor lies outside any liver box
    liver = np.zeros(shape, bool)
    liver[3:6, 10:16, 20:31] = True
    return hu, preprocess(hu), liver


def test_liver_box_is_the_grown_liver_masked_and_cropped():
    hu, image, liver = _volume()
    view = lesion_view(image, hu, liver, margin=1)
    assert view.box == (slice(2, 7), slice(9, 17), slice(19, 32))  # the liver grown by one voxel
    assert view.image.shape == view.hu.shape == view.region.shape == (5, 8, 13)
    inside = view.region
    np.testing.assert_array_equal(view.image[inside], image[view.box][inside])
    np.testing.assert_array_equal(view.hu[inside], hu[view.box][inside])
    # outside the region: the floor of the whole volume (the crop itself holds no air), HU air
    assert image[view.box].min() > image.min()
    assert np.all(view.image[~inside] == image.min())
    assert np.all(view.hu[~inside] == HU_FLOOR)
    # the corners of a box around a grown cuboid lie outside the region
    assert not inside[0, 0, 0] and inside[2, 4, 6]


def test_paste_puts_the_view_back_where_it_was_cut():
    hu, image, liver = _volume()
    view = lesion_view(image, hu, liver, margin=2)
    values = np.arange(view.region.size, dtype=np.float32).reshape(view.region.shape)
    pasted = view.paste(values)
    assert pasted.shape == hu.shape and pasted.dtype == np.float32
    np.testing.assert_array_equal(view.crop(pasted), values)
    outside = np.ones(hu.shape, bool)
    outside[view.box] = False
    assert not pasted[outside].any()


def test_full_view_keeps_the_whole_volume_masked():
    hu, image, liver = _volume()
    view = lesion_view(image, hu, liver, margin=0, view="full")
    assert view.image.shape == hu.shape
    np.testing.assert_array_equal(view.region, liver)
    np.testing.assert_array_equal(view.image[liver], image[liver])
    assert np.all(view.image[~liver] == image.min())
    np.testing.assert_array_equal(view.paste(view.region), liver)


def test_bad_views_are_refused():
    hu, image, liver = _volume()
    with pytest.raises(InvalidDataError, match="no liver"):
        lesion_view(image, hu, np.zeros_like(liver), 2)
    with pytest.raises(InvalidDataError, match="lesion view"):
        lesion_view(image, hu, liver, 2, view="box")
    with pytest.raises(ShapeError, match="differ in shape"):
        lesion_view(image, hu[:5], liver, 2)
    with pytest.raises(InvalidDataError, match="empty"):
        region_box(np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="lesion_view"):
        InferenceConfig(lesion_view="crop")


@pytest.mark.parametrize("plane, axis", [("axial", 0), ("coronal", 1), ("sagittal", 2)])
def test_lesion_slices_are_the_liver_box_resized(plane, axis):
    size = 64
    case = make_case((3, 1), shape=(32, size, size), lesions=2)
    label = np.asarray(case.label)
    boxed = case_slices(case, plane, size, structure="lesion", liver_margin=2)
    full = case_slices(case, plane, size, structure="lesion", liver_margin=2, lesion_view="full")
    view = lesion_view(np.zeros(label.shape), np.zeros(label.shape), label >= LIVER, 2)
    assert len(boxed) == view.region.shape[axis] == slice_count(case, plane, "lesion", 2)
    assert len(full) == label.shape[axis] == slice_count(case, plane, "lesion", 2, "full")
    assert len(case_slices(case, plane, size)) == label.shape[axis]  # the liver: every slice
    # every lesion voxel is kept, and the lesions are larger in the box than in the whole slice
    assert (full.labels == LESION).sum() > 0
    assert (boxed.labels == LESION).sum() > 1.5 * (full.labels == LESION).sum()


def test_a_case_without_liver_gives_no_lesion_slices(tmp_path):
    size = 16
    with_liver = make_case((3, 1), shape=(8, size, size), lesions=1)
    empty = dataclasses.replace(with_liver, case_id="no-liver",
                                label=np.zeros_like(np.asarray(with_liver.label)))
    assert len(case_slices(empty, "axial", size, structure="lesion")) == 0
    assert slice_count(empty, "axial", "lesion") == 0
    memory = build_slices([empty, with_liver], "axial", size, structure="lesion")
    disk = build_slices([empty, with_liver], "axial", size, structure="lesion",
                        folder=tmp_path / "slices")
    assert set(memory.case_ids) == {with_liver.case_id}
    np.testing.assert_array_equal(disk.labels, memory.labels)
    with pytest.raises(InvalidDataError, match="no lesion slices"):
        build_slices([empty], "axial", size, structure="lesion", folder=tmp_path / "none")
