"""Appearance beyond realism (issue 17): ``PhantomConfig(appearance="randomized")`` draws each
tissue's mean HU and texture from the asked ranges, with a smooth bounded bias field, a gamma
and (``liver_perfusion_hu``) patchy liver enhancement; none of it moves the anatomy or the
label; :func:`randomize_appearance` redraws it per (seed, epoch, case), deterministically; with
the mode off the phantoms are those of before."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy import ndimage

from liverseg.config import PhantomConfig, Profile, profile
from liverseg.errors import SettingError
from liverseg.datasets.synthetic import Tissue, make_case, make_phantom, randomize_appearance
from liverseg.datasets.synthetic.appearance import (
    BONE_TISSUES, RANDOMIZED_TISSUES, SOFT_TISSUES, Appearance, appearance_stream, draw_appearance,
    gamma_transform,
)
from liverseg.datasets.synthetic.lesions import Lesion
from liverseg.datasets.synthetic.shapes import Coords
from liverseg.datasets.synthetic.tissues import TEXTURE_HU, TISSUE_HU

MIXTURE = PhantomConfig()
QUIET = dict(streak_probability=0.0, metal_probability=0.0, noise_hu=(0.0, 0.0))
RANDOM = PhantomConfig(appearance="randomized", liver_perfusion_hu=(10.0, 40.0))
SHAPE = (16, 64, 64)

#: (sum of the whole-HU image, liver + lesion voxels, lesion voxels) of ``PhantomConfig()``
#: phantoms at ``SHAPE``, made before the appearance settings existed (as in
#: test_phantom_acquisition.py: sums, not hashes, so another NumPy build's rounding passes).
MIXTURE_BEFORE = {0: (-48902594, 1229, 0), 1: (-35030625, 1961, 7), 2: (-40403817, 1729, 4)}


def _interior(mask: np.ndarray, voxels: int = 2) -> np.ndarray:
    """``mask`` eroded in-plane by ``voxels`` (away from the blur of its borders)."""
    return ndimage.binary_erosion(mask, np.ones((1, 3, 3), bool), iterations=voxels)


def test_mode_off_keeps_the_mixture_and_the_classic_phantoms_as_they_were():
    for seed, (total, liver, lesion) in MIXTURE_BEFORE.items():
        case = make_case(seed, shape=SHAPE, config=MIXTURE)
        image = case.image.array
        assert abs(int(image.astype(np.int64).sum()) - total) <= 200, seed
        assert abs(int((case.label > 0).sum()) - liver) <= 3 and abs(int((case.label == 2).sum()) - lesion) <= 3
    # with the mode off, the appearance ranges are inert: the same image, bit for bit
    inert = dict(appearance_tissue_hu=(0.0, 50.0), appearance_bone_hu=(200.0, 300.0), appearance_texture_hu=(9.0, 9.0),
                 appearance_bias=(0.2, 0.3), appearance_gamma=(2.0, 3.0), appearance_gamma_window_hu=(0.0, 1.0))
    for base in (MIXTURE, PhantomConfig.classic()):
        before = make_phantom(3, shape=SHAPE, config=base)
        after = make_phantom(3, shape=SHAPE, config=dataclasses.replace(base, **inert))
        assert after.appearance is None and before.appearance is None
        assert np.array_equal(before.case.image.array, after.case.image.array)
        assert before.hu == after.hu


@pytest.mark.parametrize("seed", [0, 1, (4, 2)])
def test_the_randomized_mode_never_moves_the_anatomy_lesions_or_label(seed):
    plain = make_phantom(seed, shape=SHAPE, lesions=3, config=MIXTURE)
    wild = make_phantom(seed, shape=SHAPE, lesions=3, config=dataclasses.replace(MIXTURE, appearance="randomized",
                                                                                  liver_perfusion_hu=(20.0, 40.0)))
    assert np.array_equal(plain.tissues, wild.tissues)
    assert np.array_equal(plain.case.label, wild.case.label)
    assert plain.lesions == wild.lesions and plain.phase == wild.phase
    assert plain.acquisition == wild.acquisition and plain.noise_hu == wild.noise_hu
    assert not np.array_equal(plain.case.image.array, wild.case.image.array)
    assert wild.appearance is not None and wild.appearance.gamma != 1.0
    # lesions keep their drawn contrast to the new liver
    for k, lesion in enumerate(wild.lesions):
        assert wild.hu[Tissue.LESION + k] == pytest.approx(wild.hu[Tissue.LIVER] - lesion.contrast)


def test_tissue_means_and_textures_are_drawn_from_the_asked_ranges():
    config = PhantomConfig(appearance="randomized", appearance_tissue_hu=(-50.0, 150.0),
                           appearance_bone_hu=(200.0, 900.0), appearance_texture_hu=(4.0, 20.0),
                           appearance_bias=(0.01, 0.04), appearance_gamma=(0.8, 1.25))
    realistic = {int(t): float(np.mean(band)) for t, band in TISSUE_HU["portal_venous"].items()}
    lesions = [Lesion((0.0, 0.0, 0.0), 5.0, 30.0, 0.0), Lesion((0.0, 0.0, 0.0), 5.0, -15.0, 0.0)]
    draws = [draw_appearance(appearance_stream(0, epoch, "case"), config, realistic, lesions) for epoch in range(300)]
    bands = ((SOFT_TISSUES, config.appearance_tissue_hu), (BONE_TISSUES, config.appearance_bone_hu))
    for tissues, (low, high) in bands:
        for tissue in tissues:
            values = np.array([d.hu[int(tissue)] for d in draws])
            assert values.min() >= low and values.max() <= high, tissue
            # the whole range is used, not a corner of it
            assert values.min() < low + 0.05 * (high - low) and values.max() > high - 0.05 * (high - low), tissue
            sds = np.array([d.texture_hu[int(tissue)] for d in draws])
            assert sds.min() >= 4.0 and sds.max() <= 20.0 and np.ptp(sds) > 14.0, tissue
    # the tissues are drawn independently: liver and spleen do not move together
    liver = np.array([d.hu[Tissue.LIVER] for d in draws])
    spleen = np.array([d.hu[Tissue.SPLEEN] for d in draws])
    assert abs(np.corrcoef(liver, spleen)[0, 1]) < 0.2
    for d in draws:  # air, lung, gas and the table keep their realistic means and textures
        for tissue in set(realistic) - {int(t) for t in RANDOMIZED_TISSUES}:
            assert d.hu[tissue] == realistic[tissue]
        assert d.texture_hu[int(Tissue.LUNG)] == TEXTURE_HU[Tissue.LUNG]
        assert d.hu[Tissue.LESION] == pytest.approx(d.hu[Tissue.LIVER] - 30.0)
        assert d.hu[Tissue.LESION + 1] == pytest.approx(d.hu[Tissue.LIVER] + 15.0)
        assert 0.01 <= d.bias <= 0.04 and 0.8 <= d.gamma <= 1.25
    assert np.ptp([d.gamma for d in draws]) > 0.35


def test_appearance_share_randomizes_that_share_of_the_draws_and_keeps_their_values():
    """Below 1, a draw of (seed, epoch, case) is randomized with that chance (the others keep
    the realistic means, no bias, no gamma), and a randomized draw is the one share 1 gives."""
    realistic = {int(t): float(np.mean(band)) for t, band in TISSUE_HU["portal_venous"].items()}
    every = PhantomConfig(appearance="randomized")
    some = dataclasses.replace(every, appearance_share=0.3)
    randomized = 0
    for epoch in range(400):
        drawn = draw_appearance(appearance_stream(1, epoch, "case"), some, realistic, [])
        always = draw_appearance(appearance_stream(1, epoch, "case"), every, realistic, [])
        if drawn.hu == realistic:
            assert drawn.bias == 0.0 and drawn.gamma == 1.0 and drawn.texture_hu is None
        else:
            randomized += 1
            assert drawn.hu == always.hu and drawn.gamma == always.gamma
        again = draw_appearance(appearance_stream(1, epoch, "case"), some, realistic, [])
        assert again.hu == drawn.hu  # deterministic per (seed, epoch, case)
    assert 0.24 < randomized / 400 < 0.36
    with pytest.raises(SettingError, match=r"phantoms\.appearance_share needs"):
        PhantomConfig(appearance_share=0.5)
    # a share below 1 names another family (at 1 the name is that of before: MIXTURE's below)
    assert some.key() != every.key()
    assert PhantomConfig.from_dict(json.loads(json.dumps(some.to_dict()))) == some


def test_rendered_tissues_land_at_their_drawn_means_and_textures():
    """Mode on, no bias, no gamma, no noise: a tissue's interior sits at its drawn mean (plus
    the few HU of the classic contrast variation) and its spread follows the drawn texture."""
    plain = dict(appearance="randomized", appearance_bias=(0.0, 0.0), appearance_gamma=(1.0, 1.0), **QUIET)
    for seed in range(3):
        phantom = make_phantom(seed, shape=(12, 96, 96), lesions=0,
                               config=PhantomConfig(appearance_texture_hu=(0.0, 0.0), **plain))
        image = phantom.case.image.array
        for tissue in (Tissue.LIVER, Tissue.MUSCLE, Tissue.VISCERAL_FAT):
            inside = _interior(phantom.tissues == tissue)
            assert inside.sum() > 50, (seed, tissue)
            assert np.median(image[inside]) == pytest.approx(phantom.hu[int(tissue)], abs=10), (seed, tissue)
        rough = make_phantom(seed, shape=(12, 96, 96), lesions=0,
                             config=PhantomConfig(appearance_texture_hu=(40.0, 40.0), **plain))
        liver = _interior(phantom.tissues == Tissue.LIVER)
        assert rough.case.image.array[liver].std() > phantom.case.image.array[liver].std() + 10, seed


def _grid_coords(step_mm: float = 1.0, size_mm: float = 300.0) -> Coords:
    axis = np.arange(-size_mm / 2, size_mm / 2, step_mm, dtype=np.float32)
    return Coords(axis[::8, None, None], axis[None, :, None], axis[None, None, :])


def test_the_bias_field_is_smooth_bounded_and_leaves_air_alone():
    config = PhantomConfig(appearance="randomized", appearance_bias=(0.05, 0.05))
    coords = _grid_coords()
    for epoch in range(10):
        appearance = draw_appearance(appearance_stream(1, epoch, "bias"), config, {}, [])
        factor = appearance.bias_factor(coords)
        assert np.abs(factor - 1).max() <= 0.05 + 1e-6
        assert np.abs(factor - 1).max() > 0.01  # a field, not a constant
        # smooth: at most 0.5 % of attenuation per mm in-plane (wavelengths >= 150 mm)
        assert np.abs(np.diff(factor, axis=2)).max() < 0.005
        assert np.abs(np.diff(factor, axis=1)).max() < 0.005
    # it multiplies the attenuation: air stays -1000, water moves by at most 1000·b HU
    grid = make_phantom(0, shape=(4, 32, 32), config=MIXTURE).scan.grid
    for hu, bound in ((-1000.0, 1e-3), (0.0, 50.0 + 1e-3)):
        image = np.full(grid.shape, hu, np.float32)
        Appearance({}, bias=0.05, bias_field=appearance.bias_field).apply_intensity(image, grid)
        assert np.abs(image - hu).max() <= bound
    assert np.abs(image).max() > 5


def test_gamma_bends_the_window_only_and_keeps_the_order():
    hu = np.linspace(-300, 400, 701, dtype=np.float32)
    for gamma in (0.6, 1.0, 1.6):
        mapped = gamma_transform(hu, gamma, (-100.0, 200.0))
        assert np.all(np.diff(mapped) >= 0)  # monotone: no tissue changes rank
        outside = (hu <= -100) | (hu >= 200)
        assert np.array_equal(mapped[outside], hu[outside])
    assert gamma_transform(np.float32([50.0]), 2.0, (-100.0, 200.0))[0] == pytest.approx(-100 + 300 * 0.25)
    with pytest.raises(ValueError, match="gamma must be > 0"):
        gamma_transform(hu, 0.0, (-100.0, 200.0))


def test_liver_perfusion_is_patchy_within_its_amplitude_and_stays_in_the_liver():
    quiet = PhantomConfig(**QUIET)
    for seed in range(3):
        plain = make_phantom(seed, shape=(12, 96, 96), lesions=0, config=quiet)
        patchy = make_phantom(seed, shape=(12, 96, 96), lesions=0,
                              config=dataclasses.replace(quiet, liver_perfusion_hu=(30.0, 30.0)))
        assert patchy.hu == plain.hu and np.array_equal(patchy.tissues, plain.tissues)  # realistic means kept
        assert patchy.appearance.perfusion_hu == 30.0 and patchy.appearance.bias_field is None
        difference = patchy.case.image.array - plain.case.image.array
        liver = _interior(patchy.tissues == Tissue.LIVER)
        assert np.abs(difference[liver]).max() <= 31
        assert difference[liver].std() > 5  # patches, not a constant offset
        assert difference[liver].max() > 5 and difference[liver].min() < -5  # brighter and darker
        far = ndimage.distance_transform_edt(patchy.tissues != Tissue.LIVER) > 6
        assert np.abs(difference[far]).max() <= 1


def test_randomize_appearance_is_deterministic_per_seed_epoch_and_case():
    phantom = make_phantom((0, 1), shape=SHAPE, lesions=2, config=RANDOM)
    first = randomize_appearance(phantom, seed=0, epoch=3, config=RANDOM)
    again = randomize_appearance(make_phantom((0, 1), shape=SHAPE, lesions=2, config=RANDOM), 0, 3, RANDOM)
    assert np.array_equal(first.case.image.array, again.case.image.array) and first.hu == again.hu
    # it depends on (seed, epoch, case) only, not on the appearance the phantom had before
    from_plain = randomize_appearance(make_phantom((0, 1), shape=SHAPE, lesions=2, config=MIXTURE), 0, 3, RANDOM)
    assert np.array_equal(first.case.image.array, from_plain.case.image.array)
    # labels, tissues, lesions, grid: the phantom's own
    assert first.case.label is phantom.case.label and first.tissues is phantom.tissues
    assert first.case.case_id == phantom.case.case_id and first.lesions == phantom.lesions
    assert first.case.image.spacing == phantom.case.image.spacing
    assert np.array_equal(first.case.image.affine, phantom.case.image.affine)
    image = first.case.image.array
    assert image.dtype == np.float32 and image.shape == SHAPE and np.array_equal(image, np.round(image))
    # another epoch, another seed, another case: another appearance
    other_epoch = randomize_appearance(phantom, 0, 4, RANDOM)
    other_seed = randomize_appearance(phantom, 1, 3, RANDOM)
    other_case = randomize_appearance(make_phantom((0, 2), shape=SHAPE, config=RANDOM), 0, 3, RANDOM)
    for other in (other_epoch, other_seed, other_case):
        assert other.hu[Tissue.LIVER] != first.hu[Tissue.LIVER]
        assert other.appearance.gamma != first.appearance.gamma
    assert not np.array_equal(other_epoch.case.image.array, image)
    assert np.array_equal(other_epoch.case.label, phantom.case.label)
    # over epochs, one case's liver wanders over the asked range
    livers = [randomize_appearance(phantom, 0, e, RANDOM).hu[Tissue.LIVER] for e in range(40)]
    assert min(livers) >= -100 and max(livers) <= 200 and np.ptp(livers) > 150


def test_randomize_appearance_refuses_what_it_cannot_do():
    phantom = make_phantom(0, shape=(4, 32, 32), config=RANDOM)
    with pytest.raises(ValueError, match="epoch must be a whole number >= 0"):
        randomize_appearance(phantom, 0, -1, RANDOM)
    with pytest.raises(ValueError, match="epoch must be a whole number >= 0"):
        randomize_appearance(phantom, 0, 1.5, RANDOM)
    with pytest.raises(ValueError, match="seed must be a whole number >= 0"):
        randomize_appearance(phantom, "0", 1, RANDOM)
    with pytest.raises(ValueError, match="config draws no appearance"):
        randomize_appearance(phantom, 0, 1, MIXTURE)
    with pytest.raises(ValueError, match="config must be a PhantomConfig"):
        randomize_appearance(phantom, 0, 1, None)
    with pytest.raises(ValueError, match="phantom has no scan"):
        randomize_appearance(dataclasses.replace(phantom, scan=None), 0, 1, RANDOM)


@pytest.mark.parametrize("changes, match", [
    ({"appearance": "wild"}, r"phantoms\.appearance must be one of"),
    ({"appearance_tissue_hu": (200.0, -100.0)}, r"phantoms\.appearance_tissue_hu must be a range"),
    ({"appearance_tissue_hu": (-2000.0, 100.0)}, r"phantoms\.appearance_tissue_hu must be a range"),
    ({"appearance_bone_hu": (300.0,)}, r"phantoms\.appearance_bone_hu must be a range"),
    ({"appearance_texture_hu": (-1.0, 5.0)}, r"phantoms\.appearance_texture_hu must be a range"),
    ({"appearance_bias": (0.0, 0.9)}, r"phantoms\.appearance_bias must be a range"),
    ({"appearance_gamma": (0.0, 2.0)}, r"phantoms\.appearance_gamma must be a range"),
    ({"appearance_gamma_window_hu": (100.0, 100.0)}, r"phantoms\.appearance_gamma_window_hu must be a range"),
    ({"liver_perfusion_hu": (-5.0, 10.0)}, r"phantoms\.liver_perfusion_hu must be a range"),
    ({"liver_perfusion_hu": "strong"}, r"phantoms\.liver_perfusion_hu must be a range"),
    ({"appearance_draws": -1}, r"phantoms\.appearance_draws must be a whole number"),
    ({"appearance_draws": 1.5}, r"phantoms\.appearance_draws must be a whole number"),
    ({"appearance_draws": 2}, r"phantoms\.appearance_draws needs appearance='randomized'"),
])
def test_bad_appearance_settings_are_refused_naming_the_setting(changes, match):
    with pytest.raises(ValueError, match=match):
        PhantomConfig(**changes)


def test_appearance_settings_round_trip_and_old_trees_read_back_with_the_mode_off():
    changed = profile("demo").replace(**{"phantoms.appearance": "randomized",
                                         "phantoms.liver_perfusion_hu": (5.0, 25.0)})
    assert Profile.from_dict(json.loads(json.dumps(changed.to_dict()))) == changed
    old = {k: v for k, v in MIXTURE.to_dict().items()
           if not k.startswith("appearance") and k != "liver_perfusion_hu"}
    assert PhantomConfig.from_dict(old) == MIXTURE
    assert MIXTURE.appearance == "realistic" and PhantomConfig.classic().appearance == "realistic"
    assert MIXTURE.liver_perfusion_hu == (0.0, 0.0)


def test_the_liver_stage_reads_one_appearance_draw_of_each_training_phantom_per_epoch():
    from liverseg.lesion_synthesis import copy_number, epoch_rows, source_case_id
    from liverseg.train.cascade import epoch_sampler
    from liverseg.train.slices import build_slices
    from liverseg.train.system import stage_cases

    drawing = dataclasses.replace(RANDOM, appearance_draws=2)
    settings = profile("smoke").replace(phantoms=dataclasses.replace(drawing, matrix=32))
    stage = settings.stage("liver")  # phantoms of (16, 32, 32) voxels
    cases = [make_case((0, i), shape=stage.phantom_shape, config=drawing) for i in range(2)]
    train = stage_cases(stage, "liver", "train", cases)
    ids = [c.case_id for c in train]
    assert ids[:2] == [c.case_id for c in cases] and [copy_number(i) for i in ids] == [0, 0, 1, 1, 2, 2]
    for case in train[2:]:
        source = cases[[c.case_id for c in cases].index(source_case_id(case.case_id))]
        np.testing.assert_array_equal(case.label, source.label)  # the same patient, redrawn
        assert not np.array_equal(case.image.array, source.image.array)
    assert not np.array_equal(train[2].image.array, train[4].image.array)  # draw 1 vs draw 2
    again = stage_cases(stage, "liver", "train", cases)  # (split seed, draw, case): the same
    for a, b in zip(train, again):
        np.testing.assert_array_equal(a.image.array, b.image.array)
    # validation and test phantoms, the lesion stage and a family without draws: as they are
    assert stage_cases(stage, "liver", "val", cases) is cases
    assert stage_cases(stage, "liver", "test", cases) is cases
    assert [c.case_id for c in stage_cases(settings.stage("lesion"), "lesion", "train", cases)] \
        == ids[:2]
    # epoch e reads draw e % 3 alone (the phantom as made is draw 0): each patient once
    slices = build_slices(train, "axial", 32, structure="liver")
    sampler = epoch_sampler(slices.labels, "liver", stage, slices.case_ids)
    number = np.array([copy_number(i) for i in slices.case_ids])
    for epoch in range(4):
        rows = sampler(epoch)
        assert set(number[rows]) == {epoch % 3} and len(rows) == len(set(rows))
        assert set(rows) == set(epoch_rows(slices.case_ids, 2, epoch, originals=False))
        assert sorted(set(slices.case_ids[rows].tolist())) == sorted(
            i for i in set(slices.case_ids.tolist()) if copy_number(i) == epoch % 3)
    assert epoch_sampler(slices.labels, "liver", profile("smoke")) is None


def test_one_rule_names_a_phantom_family_and_draws_at_zero_keep_the_old_name():
    from liverseg.experiments import domain_shift

    assert MIXTURE.key() == domain_shift.phantoms_key(MIXTURE) == "6feadf96b0"  # as before
    drawing = dataclasses.replace(RANDOM, appearance_draws=3)
    assert drawing.key() != RANDOM.key()
    assert PhantomConfig.from_dict(json.loads(json.dumps(drawing.to_dict()))) == drawing
