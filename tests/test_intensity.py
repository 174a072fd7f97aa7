"""Contrast and brightness of training slices (``train.intensity``): the image alone, drawn per
(seed, epoch, batch), never on validation batches, and out of the store's keys while off."""

import numpy as np
import pytest

from liverseg.config import profile, stage_tree
from liverseg.errors import SettingError
from liverseg.train.intensity import IntensityConfig, draw_remaps, remap_batch


def test_draws_are_a_function_of_seed_epoch_and_batch_within_the_asked_ranges():
    settings = IntensityConfig(share=0.5, contrast=(0.5, 2.0), brightness=0.8)
    first = draw_remaps(4000, settings, seed=1, epoch=2, batch=3)
    np.testing.assert_array_equal(first.scale, draw_remaps(4000, settings, 1, 2, 3).scale)
    assert not np.array_equal(first.scale, draw_remaps(4000, settings, 1, 3, 3).scale)
    assert not np.array_equal(first.scale, draw_remaps(4000, settings, 2, 2, 3).scale)
    remapped = (first.scale != 1) | (first.offset != 0)
    assert 0.45 < remapped.mean() < 0.55  # the share
    assert first.scale.min() >= 0.5 and first.scale.max() <= 2.0
    assert np.abs(first.offset).max() <= 0.8 and np.abs(first.offset).max() > 0.7
    assert np.all(first.scale[~remapped] == 1) and np.all(first.offset[~remapped] == 0)
    # log-uniform: as many rows scaled above 1 (the geometric mean here) as below it
    assert np.mean(first.scale[remapped] > 1) == pytest.approx(0.5, abs=0.05)
    assert np.all(draw_remaps(50, IntensityConfig(), 0, 0, 0).scale == 1)  # off by default


def test_each_row_is_remapped_by_its_own_scale_and_offset_and_the_prior_stays():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(3, 8, 8, 1)).astype(np.float32)
    prior = (rng.random((3, 8, 8, 1)) > 0.5).astype(np.float32)
    remaps = draw_remaps(3, IntensityConfig(share=1.0), seed=0, epoch=0, batch=0)
    out = remap_batch({"image": image, "prior": prior}, remaps)
    for i in range(3):
        np.testing.assert_allclose(out["image"][i], remaps.scale[i] * image[i] + remaps.offset[i],
                                   rtol=1e-6)
    assert out["image"].dtype == np.float32
    assert out["prior"] is prior  # the tuner's box is not an image
    as_list = remap_batch([image, image], remaps)
    np.testing.assert_array_equal(as_list[1], out["image"])


def test_bad_remaps_are_refused():
    with pytest.raises(ValueError, match="2 remaps for a batch of 3"):
        remap_batch(np.zeros((3, 4, 4)), draw_remaps(2, IntensityConfig(share=1), 0, 0, 0))
    with pytest.raises(SettingError, match="train.intensity.share"):
        profile("smoke").replace(**{"train.intensity.share": 1.5})
    with pytest.raises(SettingError, match="train.intensity.contrast"):
        IntensityConfig(contrast=(1.5, 0.6))
    with pytest.raises(SettingError, match="train.intensity.brightness"):
        IntensityConfig(brightness=-1)


def test_a_training_batch_remaps_its_image_after_the_warps_and_keeps_its_label():
    from liverseg.train.loop import Batches
    from liverseg.train.spatial import SpatialConfig

    labels = np.zeros((8, 16, 16), np.uint8)
    labels[:, 4:12, 4:12] = 1
    x = {"image": (2.0 * labels - 1)[..., None].astype(np.float32),
         "prior": labels[..., None].astype(np.float32)}
    settings = IntensityConfig(share=1.0)
    spatial = SpatialConfig(share=1.0, zoom=(1.2, 1.5))
    both = Batches(x, labels, 4, spatial=(spatial, 3, 1), intensity=(settings, 3, 1))
    warped = Batches(x, labels, 4, spatial=(spatial, 3, 1))
    for i in range(len(both)):
        (xb, yb), (xw, yw) = both[i], warped[i]
        np.testing.assert_array_equal(yb, yw)  # labels untouched
        np.testing.assert_array_equal(xb["prior"], xw["prior"])
        remaps = draw_remaps(4, settings, 3, 1, i)
        per_row = (slice(None), None, None, None)
        expected = xw["image"] * remaps.scale[per_row] + remaps.offset[per_row]
        np.testing.assert_allclose(xb["image"], expected, rtol=1e-6)
    again = Batches(x, labels, 4, spatial=(spatial, 3, 1), intensity=(settings, 3, 1))
    np.testing.assert_array_equal(again[1][0]["image"], both[1][0]["image"])  # resumable


def test_only_training_batches_are_remapped(monkeypatch, tmp_path):
    from .test_flips import assert_only_training_batches_draw

    assert_only_training_batches_draw(monkeypatch, tmp_path, "intensity", IntensityConfig(share=0.5))


def test_the_store_keys_stay_while_it_is_off_and_change_when_on():
    from .test_flips import assert_keyed_only_once_on

    assert_keyed_only_once_on("intensity")


def test_demo_recontrasts_half_its_liver_slices_and_not_its_lesion_view():
    demo = profile("demo")
    liver, lesion = demo.stage("liver").train.intensity, demo.stage("lesion").train.intensity
    assert liver.active and liver.share == 0.5 and liver.contrast == (0.6, 1.5)
    assert not lesion.active  # the lesion stage's networks keep the keys they were measured with
    assert "intensity" not in stage_tree(demo.stage("lesion"), "localizer")["train"]
    assert not profile("smoke").train.intensity.active
    assert not profile("paper").train.intensity.active
