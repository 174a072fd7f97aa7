"""Synthetic lesions inserted into the liver (liverseg.lesion_synthesis)."""

from __future__ import annotations

import dataclasses
import json
import zlib

import numpy as np
import pytest
from scipy import ndimage

from liverseg.datasets import synthetic
from liverseg.datasets.base import Case
from liverseg.errors import InvalidDataError, ShapeError
from liverseg.lesion_synthesis import (
    SynthesisConfig,
    insert_lesions,
    synthesis_rng,
    synthesize_case,
)

MM = (1.0, 1.0, 1.0)
ONLY_HYPODENSE = dict(hyperdense_fraction=0.0, rim_fraction=0.0)


def ball_liver(radius_mm=30.0, size=72, liver_hu=100.0, noise_hu=0.0, seed=0):
    """A spherical liver of constant HU (plus optional white noise) in a cube of 1 mm voxels."""
    z, y, x = np.ogrid[:size, :size, :size]
    c = (size - 1) / 2
    liver = (z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= radius_mm**2
    noise = noise_hu * np.random.default_rng(seed).standard_normal(liver.shape)
    hu = np.where(liver, liver_hu, -100.0) + noise
    return hu.astype(np.float32), liver.astype(np.uint8)


def one_lesion(hu, label, seed, **config):
    """Insert exactly one lesion; return the new arrays and the lesion."""
    new_hu, new_label, lesions = insert_lesions(
        hu, label, MM, np.random.default_rng(seed), SynthesisConfig(count=(1, 1), **config)
    )
    assert len(lesions) == 1
    return new_hu, new_label, lesions[0]


def equivalent_radius_mm(mask, voxel_mm3=1.0):
    return (3 * mask.sum() * voxel_mm3 / (4 * np.pi)) ** (1 / 3)


@pytest.fixture(scope="module")
def phantom():
    """A small phantom with lesions of its own (169 lesion voxels)."""
    return synthetic.make_case(4, shape=(32, 64, 64))


# --- where the lesions go --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lesions_stay_inside_the_liver(seed):
    case = synthetic.make_case(seed, shape=(32, 64, 64))
    hu_before, label_before = case.image.array.copy(), case.label.copy()
    # large lesions in a small liver: they must be clipped by the liver, never spill out of it
    config = SynthesisConfig(radius_classes_mm=(16.0, 32.0), count=(3, 4))
    hu, label, lesions = insert_lesions(case.image.array, case.label, case.image.spacing,
                                        np.random.default_rng(seed), config)
    outside = case.label == 0
    assert lesions and (label == 2).sum() > (case.label == 2).sum()
    assert not (label[outside] == 2).any()
    assert np.array_equal(hu[outside], case.image.array[outside])
    assert not np.array_equal(hu, case.image.array)
    assert hu.dtype == np.float32 and label.dtype == np.uint8
    # the inputs are untouched
    assert np.array_equal(case.image.array, hu_before) and np.array_equal(case.label, label_before)
    for lesion in lesions:
        assert label_before[lesion.center] >= 1 and lesion.voxels >= 1


def test_count_within_range_and_radius_within_its_class():
    hu, label = ball_liver()
    hu = hu.astype(np.int16)  # as LiTS stores it
    config = SynthesisConfig(count=(2, 3), radius_classes_mm=(4.0, 8.0), radius_jitter=0.25)
    counts, radii = set(), []
    for seed in range(12):
        new_hu, _, lesions = insert_lesions(hu, label, MM, np.random.default_rng(seed), config)
        assert new_hu.dtype == np.float32
        counts.add(len(lesions))
        radii += [lesion.radius_mm for lesion in lesions]
    assert counts == {2, 3}
    radii = np.array(radii)
    assert (((radii >= 3.0) & (radii <= 5.0)) | ((radii >= 6.0) & (radii <= 10.0))).all()
    assert (radii < 5).any() and (radii > 6).any()


@pytest.mark.parametrize("seed", range(6))
def test_labelled_size_follows_the_drawn_radius(seed):
    hu, label = ball_liver()
    # deep centres (>= 20 mm from the border of a 30 mm liver): the lesion is never clipped
    new_hu, new_label, lesion = one_lesion(hu, label, seed, radius_classes_mm=(10.0,), radius_jitter=0.2,
                                           centre_depth=2.0)
    lesion_mask = new_label == 2
    assert lesion_mask.sum() == lesion.voxels
    assert ndimage.label(lesion_mask)[1] == 1
    assert 8.0 <= lesion.radius_mm <= 12.0
    assert equivalent_radius_mm(lesion_mask) == pytest.approx(lesion.radius_mm, rel=0.05)
    # not a sphere: the longest principal axis is clearly longer than the shortest
    spread = np.linalg.eigvalsh(np.cov(np.argwhere(lesion_mask).T.astype(float)))
    assert np.sqrt(spread.max() / spread.min()) > 1.08


def test_a_large_lesion_in_a_small_liver_is_centred_and_clipped():
    hu, label = ball_liver(radius_mm=8.0, size=24)
    for seed in range(3):
        new_label, lesion = one_lesion(hu, label, seed, radius_classes_mm=(32.0,))[1:]
        # no voxel is 0.6 × 24 mm deep: the centre is among the deepest, the middle of the ball
        assert np.abs(np.array(lesion.center) - 11.5).max() <= 1.5
        assert not ((new_label == 2) & (label == 0)).any()
        assert (new_label == 2).sum() >= 0.95 * label.sum()


def test_lesions_avoid_each_other_where_there_is_room():
    hu, label = ball_liver()
    config = SynthesisConfig(radius_classes_mm=(6.0,), radius_jitter=0.0, count=(3, 3), elastic=0.0,
                             axis_ratio=(1.0, 1.0), edge_mm=(0.0, 0.0))
    for seed in range(4):
        new_label, lesions = insert_lesions(hu, label, MM, np.random.default_rng(seed), config)[1:]
        assert ndimage.label(new_label == 2)[1] == 3
        assert (new_label == 2).sum() == sum(lesion.voxels for lesion in lesions)


# --- how they look ---------------------------------------------------------------------------------


def core_and_shell(lesion_mask, shell_voxels=2, core_depth_voxels=3):
    core = ndimage.binary_erosion(lesion_mask, iterations=core_depth_voxels)
    shell = lesion_mask & ~ndimage.binary_erosion(lesion_mask, iterations=shell_voxels)
    return core, shell


@pytest.mark.parametrize("seed", range(4))
def test_hypodense_core_is_darker_by_the_drawn_contrast(seed):
    hu, label = ball_liver()
    new_hu, new_label, lesion = one_lesion(hu, label, seed, radius_classes_mm=(10.0,), centre_depth=2.0,
                                           **ONLY_HYPODENSE)
    core = core_and_shell(new_label == 2)[0]
    change = (new_hu - hu)[core]
    assert lesion.kind == "hypodense" and -145 <= lesion.contrast_hu <= -65
    assert abs(change.mean() - lesion.contrast_hu) < lesion.texture_hu
    assert 0.5 * lesion.texture_hu < change.std() < 1.5 * lesion.texture_hu  # the textured interior
    # the border fades: the liver just outside the label is changed, but less than the core
    ring = ndimage.binary_dilation(new_label == 2, iterations=1) & (new_label == 1)
    assert lesion.contrast_hu < (new_hu - hu)[ring].mean() < 0


@pytest.mark.parametrize("seed", range(3))
def test_hyperdense_core_is_brighter(seed):
    hu, label = ball_liver()
    new_hu, new_label, lesion = one_lesion(hu, label, seed, radius_classes_mm=(10.0,), centre_depth=2.0,
                                           hyperdense_fraction=1.0, rim_fraction=0.0)
    change = (new_hu - hu)[core_and_shell(new_label == 2)[0]]
    assert lesion.kind == "hyperdense" and 10 <= lesion.contrast_hu <= 40
    assert abs(change.mean() - lesion.contrast_hu) < lesion.texture_hu


@pytest.mark.parametrize("rim_fraction", [1.0, 0.0])
def test_rim_is_brighter_than_the_interior(rim_fraction):
    hu, label = ball_liver()
    sharp = dict(radius_classes_mm=(12.0,), centre_depth=2.0, edge_mm=(0.0, 0.0), texture_hu=(2.0, 2.0),
                 rim_hu=(40.0, 40.0), rim_mm=(3.0, 3.0), hyperdense_fraction=0.0, rim_fraction=rim_fraction)
    for seed in range(3):
        new_hu, new_label, lesion = one_lesion(hu, label, seed, **sharp)
        core, shell = core_and_shell(new_label == 2, shell_voxels=2, core_depth_voxels=5)
        change = new_hu - hu
        step = change[shell].mean() - change[core].mean()
        assert abs(change[core].mean() - lesion.contrast_hu) < 2.0
        if rim_fraction:
            assert lesion.kind == "rim" and lesion.rim_hu == 40.0
            assert step == pytest.approx(40.0, abs=8.0)
        else:  # the control: without a rim the shell is as dark as the interior
            assert lesion.kind == "hypodense" and abs(step) < 2.0


# --- one case in one epoch -------------------------------------------------------------------------


def test_synthesis_rng_is_the_documented_stream():
    expected = np.random.default_rng([3, 7, zlib.crc32(b"volume-12")]).uniform(size=5)
    assert np.array_equal(synthesis_rng(3, 7, "volume-12").uniform(size=5), expected)
    assert not np.array_equal(synthesis_rng(3, 7, "volume-13").uniform(size=5), expected)
    with pytest.raises(ValueError, match="epoch"):
        synthesis_rng(0, -1, "volume-12")


def test_same_seed_epoch_and_case_give_the_same_lesions(phantom):
    config = SynthesisConfig(share=1.0)
    first, lesions = synthesize_case(phantom, seed=5, epoch=2, config=config)
    again, lesions_again = synthesize_case(phantom, seed=5, epoch=2, config=config)
    assert lesions and lesions == lesions_again
    assert np.array_equal(first.image.array, again.image.array) and np.array_equal(first.label, again.label)
    other, other_lesions = synthesize_case(phantom, seed=5, epoch=3, config=config)
    assert other_lesions != lesions and not np.array_equal(other.image.array, first.image.array)


def test_new_case_keeps_geometry_and_metadata(phantom):
    new, lesions = synthesize_case(phantom, seed=0, epoch=0, config=SynthesisConfig(share=1.0))
    assert lesions and new is not phantom and new.case_id == phantom.case_id
    assert new.image.spacing == phantom.image.spacing
    assert np.array_equal(new.image.affine, phantom.image.affine)
    assert new.image.path == phantom.image.path and new.image.source_ornt is phantom.image.source_ornt
    assert new.image.array.dtype == np.float32 and new.label.dtype == np.uint8
    assert (new.label == 2).sum() > (phantom.label == 2).sum()


def test_share_is_the_fraction_of_volumes_drawn(phantom):
    config = SynthesisConfig(share=0.3)
    drawn = sum(bool(synthesize_case(phantom, seed=1, epoch=epoch, config=config)[1]) for epoch in range(200))
    assert 0.2 <= drawn / 200 <= 0.4
    for epoch in range(5):  # share 0: not even keep_existing=False changes anything
        same, lesions = synthesize_case(phantom, 1, epoch, SynthesisConfig(share=0.0, keep_existing=False))
        assert same is phantom and lesions == []


def test_a_case_without_liver_is_returned_unchanged(phantom):
    no_liver = Case("empty", phantom.image, np.zeros_like(phantom.label))
    same, lesions = synthesize_case(no_liver, 0, 0, SynthesisConfig(share=1.0))
    assert same is no_liver and lesions == []
    hu, label, lesions = insert_lesions(phantom.image.array, no_liver.label, phantom.image.spacing,
                                        np.random.default_rng(0), SynthesisConfig(count=(2, 2)))
    assert lesions == [] and hu is not phantom.image.array
    assert np.array_equal(hu, phantom.image.array) and not label.any()


# --- existing lesions ------------------------------------------------------------------------------


def liver_with_a_lesion():
    """A noisy 100 HU liver holding a 6 mm lesion 50 HU darker, with its partial-volume border."""
    hu, label = ball_liver(noise_hu=10.0)
    z, y, x = np.ogrid[:72, :72, :72]
    distance = np.sqrt((z - 30) ** 2 + (y - 40) ** 2 + (x - 35) ** 2)
    hu -= (50 * np.clip(6.5 - distance, 0, 1)).astype(np.float32)
    label[distance <= 6] = 2
    return hu, label


def test_keep_existing_false_paints_existing_lesions_over():
    hu, label = liver_with_a_lesion()
    old = label == 2
    new_hu, new_label, lesions = insert_lesions(hu, label, MM, np.random.default_rng(0),
                                                SynthesisConfig(keep_existing=False, count=(0, 0)))
    assert lesions == [] and not (new_label == 2).any() and np.array_equal(new_label >= 1, label >= 1)
    repainted = new_hu[ndimage.binary_dilation(old, iterations=1)]
    assert repainted.mean() == pytest.approx(100.0, abs=3.0)
    assert 5.0 < repainted.std() < 15.0  # liver-like noise, not a flat patch
    # with a new lesion, the only lesion left is the synthetic one
    new_label, lesions = insert_lesions(hu, label, MM, np.random.default_rng(1),
                                        SynthesisConfig(keep_existing=False, count=(1, 1)))[1:]
    assert (new_label == 2).sum() == lesions[0].voxels


def test_keep_existing_true_keeps_them():
    hu, label = liver_with_a_lesion()
    rng = np.random.default_rng(0)
    new_hu, new_label, _ = insert_lesions(hu, label, MM, rng, SynthesisConfig(count=(0, 0)))
    assert np.array_equal(new_hu, hu) and np.array_equal(new_label, label)
    new_label = insert_lesions(hu, label, MM, np.random.default_rng(0), SynthesisConfig(count=(2, 2)))[1]
    assert (new_label[label == 2] == 2).all()


# --- settings and errors ---------------------------------------------------------------------------


def test_default_config_is_valid_and_round_trips_through_json():
    config = SynthesisConfig(share=0.9, keep_existing=False)
    assert SynthesisConfig(**json.loads(json.dumps(dataclasses.asdict(config)))) == config


@pytest.mark.parametrize("field, value", [
    ("share", 1.5), ("share", -0.1), ("keep_existing", "no"), ("radius_classes_mm", ()),
    ("radius_classes_mm", (4.0, -1.0)), ("radius_jitter", 1.0), ("count", (3, 1)), ("count", (-1, 2)),
    ("count", (1.5, 2)), ("count", (1,)), ("elastic", -0.1), ("axis_ratio", (0.0, 1.0)),
    ("centre_depth", -1.0),
    ("contrast_hu", (145.0, 65.0)), ("contrast_hu", (-10.0, 65.0)), ("hyperdense_fraction", 2.0),
    ("hyperdense_hu", (40.0, 10.0)), ("rim_fraction", 0.95), ("rim_hu", (float("nan"), 60.0)),
    ("rim_mm", (0.0, 1.0)), ("edge_mm", (-1.0, 1.0)), ("texture_hu", (15.0, 5.0)), ("texture_mm", 0.0),
    ("repaint_margin_voxels", -1), ("validation", "yes"),
])
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SynthesisConfig(**{field: value})


def test_unusable_inputs_raise_the_project_errors():
    hu, label = ball_liver(size=24, radius_mm=8)
    rng, config = np.random.default_rng(0), SynthesisConfig()
    bad = hu.copy()
    bad[3, 4, 5] = np.nan
    with pytest.raises(InvalidDataError, match="NaN"):
        insert_lesions(bad, label, MM, rng, config, source="volume-1.nii")
    with pytest.raises(ShapeError, match="label shape"):
        insert_lesions(hu, label[:-1], MM, rng, config)
    with pytest.raises(ShapeError, match="spacing"):
        insert_lesions(hu, label, (1.0, 1.0), rng, config)
    with pytest.raises(InvalidDataError, match="spacing"):
        insert_lesions(hu, label, (0.0, 1.0, 1.0), rng, config)
    with pytest.raises(InvalidDataError, match="label values"):
        insert_lesions(hu, label * 3, MM, rng, config)


def test_errors_name_the_case_file(phantom):
    volume = dataclasses.replace(phantom.image, array=np.full(phantom.image.shape, np.inf, np.float32),
                                 path="volume-9.nii")
    case = Case("volume-9", volume, phantom.label)
    with pytest.raises(InvalidDataError, match="volume-9.nii"):
        synthesize_case(case, 0, 0, SynthesisConfig(share=1.0))
