"""The slice viewer and the static three-plane figure (liverseg.viewer)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from liverseg import viewer  # noqa: E402
from liverseg.io import Volume  # noqa: E402

SHAPE = (8, 10, 12)  # (z, y, x), non-cubic so a wrong transpose cannot pass
SPACING = (2.5, 0.8, 0.5)
CUBE = (slice(2, 4), slice(4, 7), slice(5, 9))  # liver: z 2-3, y 4-6, x 5-8
LESION_VOXEL = (3, 5, 6)
PNG = b"\x89PNG"


@pytest.fixture
def image():
    return np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)


@pytest.fixture
def label():
    label = np.zeros(SHAPE, np.uint8)
    label[CUBE] = 1
    label[LESION_VOXEL] = 2
    return label


def _contour_extent(ax, colour):
    """(row min, row max, column min, column max) of the contour lines drawn in ``colour``."""
    vertices = [path.vertices for cs in ax.collections
                if np.allclose(cs.get_edgecolor()[0][:3], matplotlib.colors.to_rgb(colour))
                for path in cs.get_paths() if len(path.vertices)]
    points = np.concatenate(vertices)
    return points[:, 1].min(), points[:, 1].max(), points[:, 0].min(), points[:, 0].max()


def test_controls_change_the_slice_and_the_plane(image, label):
    v = viewer.slice_viewer(image, reference=label, spacing=SPACING)
    assert v.plane_control.value == "axial"
    assert v.slice_control.value == 2  # through the liver (median z of 2, 3 rounds down)
    assert v.slice_control.max == SHAPE[0] - 1
    first_png = bytes(v.image_widget.value)
    assert first_png.startswith(PNG)

    v.slice_control.value = 6
    np.testing.assert_array_equal(v.current().image, image[6])
    assert v.figure.axes[0].get_title() == "axial slice 6 / 7"
    assert bytes(v.image_widget.value) != first_png

    v.plane_control.value = "coronal"  # y = k, head at the top
    assert v.slice_control.max == SHAPE[1] - 1 and v.slice_control.value == 5
    v.slice_control.value = 2
    np.testing.assert_array_equal(v.current().image, image[::-1, 2, :])
    assert v.figure.axes[0].get_title() == "coronal slice 2 / 9"

    v.plane_control.value = "sagittal"  # x = k, head at the top
    assert v.slice_control.max == SHAPE[2] - 1
    v.slice_control.value = 11
    np.testing.assert_array_equal(v.current().image, image[::-1, :, 11])
    assert v.figure.axes[0].get_title() == "sagittal slice 11 / 11"


def test_a_labelled_cube_shows_up_exactly_at_its_slices(image, label):
    v = viewer.slice_viewer(image, reference=label, spacing=SPACING, overlay="fill")
    for k in range(SHAPE[0]):
        v.slice_control.value = k
        shown = v.current().reference
        np.testing.assert_array_equal(shown, label[k])
        overlay = v.figure.axes[0].images[1].get_array()  # the reference's RGBA layer
        np.testing.assert_array_equal(overlay[..., 3] > 0, label[k] > 0)
    v.slice_control.value = LESION_VOXEL[0]
    rgba = v.figure.axes[0].images[1].get_array()
    lesion, liver = rgba[LESION_VOXEL[1:]], rgba[CUBE[1].start, CUBE[2].start]
    assert not np.allclose(lesion[:3], liver[:3])  # liver and lesion in distinct colours

    v.overlay_control.value = "contour"
    v.plane_control.value = "coronal"
    v.slice_control.value = 5  # y = 5 cuts the cube: z 2-3 -> rows 4-5 (8 - 1 - z), x 5-8
    extent = _contour_extent(v.figure.axes[0], viewer._COLOURS["reference", "liver"])
    assert extent == (3.5, 5.5, 4.5, 8.5)  # half a pixel outside the cube's pixels
    v.slice_control.value = 3  # outside the cube: nothing to outline
    assert not v.figure.axes[0].collections


def test_overlay_toggles_and_both_masks(image, label):
    prediction = np.zeros_like(label)
    prediction[5:7, 1:3, 1:3] = 1
    v = viewer.slice_viewer(image, label, prediction, spacing=SPACING, overlay="fill")
    v.slice_control.value = 2
    assert v.current().prediction is not None and len(v.figure.axes[0].images) == 3
    v.reference_control.value = False
    assert v.current().reference is None and len(v.figure.axes[0].images) == 2
    v.prediction_control.value = False
    assert v.current().prediction is None and len(v.figure.axes[0].images) == 1
    assert not v.figure.legends
    # without a prediction its toggle is off and disabled
    alone = viewer.slice_viewer(image, label)
    assert alone.prediction_control.disabled and not alone.prediction_control.value


def test_aspect_follows_the_spacing(image, label):
    v = viewer.slice_viewer(image, label, spacing=SPACING)
    assert v.current().aspect == pytest.approx(0.8 / 0.5)  # axial rows y, columns x
    assert v.figure.axes[0].get_aspect() == pytest.approx(0.8 / 0.5)
    v.plane_control.value = "coronal"
    assert v.figure.axes[0].get_aspect() == pytest.approx(2.5 / 0.5)  # rows z, columns x
    v.plane_control.value = "sagittal"
    assert v.figure.axes[0].get_aspect() == pytest.approx(2.5 / 0.8)  # rows z, columns y


def test_a_volume_brings_its_spacing(image, label):
    volume = Volume.from_canonical(image, SPACING)
    v = viewer.slice_viewer(volume, label, plane="sagittal", index=0)
    assert v.current().aspect == pytest.approx(2.5 / 0.8) and v.slice_control.value == 0


def test_static_views(image, label):
    fig = viewer.static_views(image, label, label, spacing=SPACING, title="cube")
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert fig._repr_png_().startswith(PNG)  # a notebook shows it, with or without pyplot
    # through the median voxel of the liver: z 2, y 5, x 6
    assert [ax.get_title() for ax in fig.axes] == [
        "axial slice 2 / 7", "coronal slice 5 / 9", "sagittal slice 6 / 11"]
    assert [ax.get_aspect() for ax in fig.axes] == pytest.approx([0.8 / 0.5, 2.5 / 0.5, 2.5 / 0.8])
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["reference liver", "reference lesion", "prediction liver", "prediction lesion"]
    empty = viewer.static_views(image, center=(0, 0, 0))
    assert len(empty.axes) == 3 and not empty.legends


@pytest.mark.parametrize("kwargs, message", [
    ({"image": np.zeros((4, 5))}, r"\(z, y, x\) volume"),
    ({"reference": np.zeros((8, 10, 11), np.uint8)}, r"reference has shape \(8, 10, 11\) but "
                                                     r"the image has shape \(8, 10, 12\)"),
    ({"prediction": np.full(SHAPE, 3, np.uint8)}, "expected labels 0 background"),
    ({"prediction": np.full(SHAPE, 0.7)}, "threshold a probability map"),
    ({"spacing": (1.0, 1.0)}, "three numbers"),
    ({"spacing": (1.0, 0.0, 1.0)}, "positive and finite"),
    ({"spacing": (1.0, float("nan"), 1.0)}, "positive and finite"),
    ({"spacing": "abc"}, "three numbers"),
    ({"window": (100, -100)}, "low < high"),
    ({"plane": "oblique"}, "unknown plane"),
    ({"index": 8}, r"outside the 8 axial slices"),
    ({"overlay": "outline"}, "overlay must be one of"),
])
def test_bad_input_raises_a_clear_value_error(image, label, kwargs, message):
    arguments = {"image": image, "reference": label, **kwargs}
    with pytest.raises(ValueError, match=message):
        viewer.slice_viewer(**arguments)


def test_static_views_rejects_a_center_outside_the_volume(image):
    with pytest.raises(ValueError, match="not a voxel"):
        viewer.static_views(image, center=(8, 0, 0))
