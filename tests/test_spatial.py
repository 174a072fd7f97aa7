"""Zooms, turns and shifts of training slices (``train.spatial``): image, prior and label alike,
drawn per (seed, epoch, batch), never on validation batches, and out of the store's keys while
off."""

import numpy as np
import pytest

from liverseg.config import profile, stage_tree
from liverseg.errors import SettingError
from liverseg.train.spatial import SpatialConfig, draw_warps, warp_batch, warp_image


def _square(size=64, low=24, high=40):
    image = np.zeros((size, size), np.float32)
    image[low:high, low:high] = 1
    return image


def test_a_zoom_scales_the_area_about_the_centre():
    image = _square(64, 16, 48)  # a 32-pixel square centred on the slice
    for zoom in (0.8, 1.5):
        warped = warp_image(image, zoom, order=0)
        assert warped.sum() == pytest.approx(image.sum() * zoom ** 2, rel=0.1)
        rows = np.flatnonzero(warped.any(axis=1))
        assert (rows.min() + rows.max()) / 2 == pytest.approx(31.5, abs=1)  # still centred
    np.testing.assert_array_equal(warp_image(image, 1.0), image)  # the identity, exactly


def test_a_quarter_turn_and_a_shift_move_pixels_where_they_should():
    image = np.zeros((8, 8), np.uint8)
    image[1, 2] = 2
    turned = warp_image(image, 1.0, np.pi / 2, order=0)
    assert turned.dtype == np.uint8 and set(np.unique(turned)) == {0, 2}
    assert np.array_equal(turned, np.rot90(image)) or np.array_equal(turned, np.rot90(image, -1))
    moved = warp_image(_square(), 1.0, shift_y=0.25, order=0)  # a quarter of 64 pixels down
    np.testing.assert_array_equal(np.flatnonzero(moved.any(axis=1)), np.arange(40, 56))


def test_labels_keep_their_values_and_images_are_interpolated():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (32, 32)).astype(np.uint8)
    warped = warp_image(labels, 1.3, 0.3, 0.05, -0.05, order=0)
    assert set(np.unique(warped)) <= {0, 1, 2}
    ramp = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))
    smooth = warp_image(ramp, 1.2, 0.2, order=1)
    assert smooth.min() >= 0 and smooth.max() <= 1 and len(np.unique(smooth)) > 64


def test_bad_warps_are_refused():
    with pytest.raises(ValueError, match="zoom must be positive"):
        warp_image(np.zeros((4, 4)), 0.0)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        warp_image(np.zeros(4), 1.2)
    with pytest.raises(ValueError, match="2 warps for a batch of 3"):
        warp_batch(np.zeros((3, 4, 4)), draw_warps(2, SpatialConfig(share=1), 0, 0, 0))
    with pytest.raises(SettingError, match="train.spatial.share"):
        profile("smoke").replace(**{"train.spatial.share": 1.5})
    with pytest.raises(SettingError, match="train.spatial.zoom"):
        SpatialConfig(zoom=(1.2, 0.9))


def test_draws_are_a_function_of_seed_epoch_and_batch_within_the_asked_ranges():
    settings = SpatialConfig(share=0.5, zoom=(0.8, 1.6), rotation_deg=10, shift=0.1)
    first = draw_warps(4000, settings, seed=1, epoch=2, batch=3)
    again = draw_warps(4000, settings, seed=1, epoch=2, batch=3)
    np.testing.assert_array_equal(first.zoom, again.zoom)
    assert not np.array_equal(first.zoom, draw_warps(4000, settings, 1, 3, 3).zoom)
    assert not np.array_equal(first.zoom, draw_warps(4000, settings, 1, 2, 4).zoom)
    warped = first.zoom != 1
    assert 0.45 < warped.mean() < 0.55  # the share
    assert first.zoom.min() >= 0.8 and first.zoom.max() <= 1.6
    assert np.abs(np.rad2deg(first.angle)).max() <= 10 and np.abs(first.shift_x).max() <= 0.1
    assert np.all(first.angle[~warped] == 0) and np.all(first.shift_y[~warped] == 0)
    # log-uniform: as many rows magnified above the geometric mean as below it
    assert np.mean(first.zoom[warped] > np.sqrt(0.8 * 1.6)) == pytest.approx(0.5, abs=0.05)
    assert np.all(draw_warps(50, SpatialConfig(), 0, 0, 0).zoom == 1)  # off by default


def test_a_batch_keeps_image_prior_and_label_in_register():
    from liverseg.train.loop import Batches

    labels = np.stack([_square(32, 8 + k, 20 + k).astype(np.uint8) for k in range(8)])
    x = {"image": (3.0 * labels)[..., None].astype(np.float32),
         "prior": labels[..., None].astype(np.float32)}
    settings = SpatialConfig(share=1.0, zoom=(0.8, 1.4), rotation_deg=30, shift=0.1)
    warped = Batches(x, labels, 4, spatial=(settings, 5, 1))
    plain = Batches(x, labels, 4)
    for i in range(len(warped)):
        (xb, yb), (_, yp) = warped[i], plain[i]
        assert not np.array_equal(yb, yp)
        np.testing.assert_array_equal(xb["prior"][..., 0], yb)  # nearest pixel: in register
        assert set(np.unique(xb["prior"])) <= {0.0, 1.0}
        inside = xb["image"][..., 0][yb == 1]
        assert inside.size and np.median(inside) == pytest.approx(3.0)
    again = Batches(x, labels, 4, spatial=(settings, 5, 1))  # a resumed run reads the same
    np.testing.assert_array_equal(again[1][1], warped[1][1])
    warps = draw_warps(4, settings, 5, 1, 0)  # a list is warped row by row as a dict is
    as_list = warp_batch([x["image"][:4], labels[:4]], warps, order=0)
    as_dict = warp_batch({"image": x["image"][:4], "label": labels[:4]}, warps, order=0)
    np.testing.assert_array_equal(as_list[0], as_dict["image"])
    np.testing.assert_array_equal(as_list[1], as_dict["label"])


def test_only_training_batches_are_warped(monkeypatch, tmp_path):
    from .test_flips import assert_only_training_batches_draw

    assert_only_training_batches_draw(monkeypatch, tmp_path, "spatial", SpatialConfig(share=0.5))


def test_the_store_keys_stay_while_it_is_off_and_change_when_on():
    from .test_flips import assert_keyed_only_once_on

    assert_keyed_only_once_on("spatial")


def test_demo_warps_its_liver_slices_and_not_its_lesion_view():
    demo = profile("demo")
    liver, lesion = demo.stage("liver").train.spatial, demo.stage("lesion").train.spatial
    assert liver.active and liver.zoom == (0.85, 1.7) and liver.shift == 0.1
    assert not lesion.active  # the lesion stage's networks keep the keys they were measured with
    assert "spatial" not in stage_tree(demo.stage("lesion"), "localizer")["train"]
    assert not profile("smoke").train.spatial.active and not profile("paper").train.spatial.active


def test_an_elastic_bend_is_smooth_seeded_and_keeps_image_and_label_in_register():
    from liverseg.train.spatial import elastic_field

    field = elastic_field((64, 64), 0.04, seed=3)
    assert field.shape == (2, 64, 64)
    assert 0.5 * 0.04 * 64 < field.std() < 1.5 * 0.04 * 64  # the sd, in pixels
    for seed in range(20):  # smooth: at sd 0.02 no bend folds the slice over itself
        dy, dx = elastic_field((64, 64), 0.02, seed)
        jacobian = ((1 + np.gradient(dy, axis=0)) * (1 + np.gradient(dx, axis=1))
                    - np.gradient(dy, axis=1) * np.gradient(dx, axis=0))
        assert jacobian.min() > 0
    np.testing.assert_array_equal(field, elastic_field((64, 64), 0.04, seed=3))
    assert not np.array_equal(field, elastic_field((64, 64), 0.04, seed=4))

    label = _square(64, 16, 48).astype(np.uint8) * 2
    bent = warp_image(label, 1.0, order=0, elastic=0.04, bend_seed=3)
    assert set(np.unique(bent)) == {0, 2} and not np.array_equal(bent, label)
    assert (bent > 0).sum() == pytest.approx((label > 0).sum(), rel=0.25)
    image = warp_image(3.0 * label.astype(np.float32), 1.2, 0.2, 0.05, 0.0, order=1,
                       elastic=0.04, bend_seed=3)
    bent = warp_image(label, 1.2, 0.2, 0.05, 0.0, order=0, elastic=0.04, bend_seed=3)
    assert np.median(image[bent == 2]) == pytest.approx(6.0)  # in register with the label
    # a vanishing bend is the affine warp
    np.testing.assert_allclose(warp_image(image, 1.3, 0.3, order=1, elastic=1e-9, bend_seed=1),
                               warp_image(image, 1.3, 0.3, order=1), atol=1e-5)


def test_the_bend_leaves_the_affine_draws_and_the_keys_as_they_were_while_off():
    plain = SpatialConfig(share=0.5, zoom=(0.8, 1.6), rotation_deg=10, shift=0.1)
    bent = SpatialConfig(share=0.5, zoom=(0.8, 1.6), rotation_deg=10, shift=0.1, elastic=0.05)
    first, second = draw_warps(200, plain, 1, 2, 3), draw_warps(200, bent, 1, 2, 3)
    for name in ("zoom", "angle", "shift_y", "shift_x", "bend_seed"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert np.all(first.elastic == 0)
    np.testing.assert_array_equal(second.elastic, np.where(second.zoom != 1, 0.05, 0.0))
    demo = profile("demo").stage("liver")
    assert "elastic" not in stage_tree(demo, "localizer")["train"]["spatial"]
    changed = stage_tree(demo.replace(**{"train.spatial.elastic": 0.05}), "localizer")
    assert changed["train"]["spatial"]["elastic"] == 0.05
    with pytest.raises(SettingError, match="train.spatial.elastic"):
        SpatialConfig(elastic=0.5)
