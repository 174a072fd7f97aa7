"""Anatomical variety of the phantoms (issue 10): lesions as in LiTS (contrast, multifocal mode,
radii, hyperdense and rim-enhancing lesions, blurred borders), a deeper vessel tree, and the
liver's shape (left lobe, Riedel's lobe, volume), all within ``PhantomConfig``'s ranges, while
``PhantomConfig.classic()`` draws none of it (the bit-identity test of
``test_phantom_acquisition.py`` holds the classic phantoms to the generator before issue 10)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from liverseg.config import PhantomConfig
from liverseg.datasets.base import LESION, LIVER
from liverseg.datasets.synthetic import Tissue, make_phantom
from liverseg.datasets.synthetic.anatomy import sample_frame
from liverseg.datasets.synthetic.lesions import (
    CORE_MIN_RADIUS_MM, MULTIFOCAL, Lesion, _draw_looks, lesion_count, multifocal_radii,
)
from liverseg.datasets.synthetic.liver import liver
from liverseg.datasets.synthetic.phantom import _anatomy_streams, _streams
from liverseg.datasets.synthetic.shapes import Grid

MIXTURE = PhantomConfig(streak_probability=0.0, metal_probability=0.0)
CLASSIC = PhantomConfig.classic()


def test_classic_preset_switches_every_anatomy_setting_off():
    c = CLASSIC
    assert (c.healthy_probability, c.lesion_radius_mm, c.lesion_contrast_hu) == (0.3, (2.5, 40.0), (10.0, 60.0))
    assert c.lesion_contrast_normal_hu is None and c.core_darkening_hu is None and c.liver_volume_l is None
    assert c.multifocal_probability == c.hyperdense_probability == c.rim_probability == 0.0
    assert c.border_blur_mm == (0.0, 0.0) and c.vessel_generations == 0
    assert c.left_lobe_scale == (1.0, 1.0) and c.riedel_probability == 0.0
    for config in (CLASSIC, MIXTURE):
        assert PhantomConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_lesion_counts_follow_the_healthy_share_and_the_multifocal_mode():
    counts = []
    for seed in range(600):
        lesion_seed = _streams(seed)[1]
        extra = np.random.default_rng(_anatomy_streams(seed)[0])
        counts.append(lesion_count(np.random.default_rng(lesion_seed), MIXTURE, extra))
    counts = np.array(counts)
    assert abs((counts == 0).mean() - MIXTURE.healthy_probability) < 0.06
    with_lesions = counts[counts != 0]
    multifocal = (with_lesions == MULTIFOCAL).mean()  # place_lesions draws the multifocal count
    assert abs(multifocal - MIXTURE.multifocal_probability) < 0.05
    assert with_lesions.max() <= 8
    classic = [lesion_count(np.random.default_rng(_streams(s)[1]), CLASSIC,
                            np.random.default_rng(_anatomy_streams(s)[0])) for s in range(200)]
    assert min(classic) == 0 and MULTIFOCAL not in classic


def test_multifocal_cases_have_many_small_lesions_and_a_few_large_ones():
    rng = np.random.default_rng(0)
    cases = [multifocal_radii(MIXTURE, rng) for _ in range(300)]
    large_low, large_high = MIXTURE.multifocal_large_radius_mm
    counts = np.array([len(r) for r in cases])
    assert counts.min() >= 15 + 1 and counts.max() <= 80 + 5
    assert counts.min() < 25 and counts.max() > 75
    large = [sum(r > MIXTURE.multifocal_radius_mm[1] for r in radii) for radii in cases]
    assert set(large) == {1, 2, 3, 4, 5}
    small = np.concatenate([[r for r in radii if r <= MIXTURE.multifocal_radius_mm[1]] for radii in cases])
    assert small.min() >= 2.5 and small.max() <= 10.0
    assert 3.5 < np.median(small) < 4.5  # the LiTS crop: median equivalent radius about 4 mm
    q25, q75 = np.percentile(small, [25, 75])
    assert 2.5 <= q25 < 3.5 and 4.5 < q75 < 6.5
    big = np.concatenate([[r for r in radii if r > 10.0] for radii in cases])
    assert big.min() >= large_low and big.max() <= large_high
    assert all(list(radii) == sorted(radii, reverse=True) for radii in cases)  # large first


def test_lesion_looks_cover_contrast_core_rim_hyperdense_and_blur():
    rng, extra = np.random.default_rng(1), np.random.default_rng(2)
    radii = np.exp(rng.uniform(np.log(2.5), np.log(50.0), 3000))
    looks = [_draw_looks(Lesion((0.0, 0.0, 0.0), float(r), 0.0, 0.0), rng, MIXTURE, extra) for r in radii]
    contrast = np.array([lesion.contrast for lesion in looks])
    hypo = contrast[contrast > 0]
    assert hypo.min() >= 10.0 and hypo.max() <= 75.0 and hypo.min() < 20 and hypo.max() > 70
    assert 43 < np.median(hypo) < 47 and 10 < hypo.std() < 13  # normal(45, 12) clipped to 10..75
    assert 0.07 < (contrast < 0).mean() < 0.13  # hyperdense
    assert -40.0 <= contrast.min() and contrast[contrast < 0].max() <= -10.0
    cored = [lesion.necrosis for lesion in looks if lesion.radius >= CORE_MIN_RADIUS_MM and lesion.contrast > 0]
    assert 0.7 < np.mean(np.array(cored) > 0) < 0.9
    assert min(c for c in cored if c > 0) >= 10.0 and max(cored) <= 25.0
    assert all(lesion.necrosis == 0 for lesion in looks if lesion.radius < CORE_MIN_RADIUS_MM)
    rims = np.array([lesion.rim for lesion in looks])
    assert 0.1 < (rims > 0).mean() < 0.18
    assert all(lesion.contrast > 0 and 0 < lesion.rim_mm <= 0.4 * lesion.radius for lesion in looks if lesion.rim)
    blur = np.array([lesion.blur for lesion in looks])
    assert blur.min() >= 0 and blur.max() <= 3.0 and blur.min() < 0.1 and blur.max() > 2.9
    # the classic draws: uniform 10..60 HU, never hyperdense, rimmed or blurred
    classic = [_draw_looks(Lesion((0.0, 0.0, 0.0), float(r), 0.0, 0.0), rng, CLASSIC, extra) for r in radii[:500]]
    contrast = np.array([lesion.contrast for lesion in classic])
    assert contrast.min() >= 10 and contrast.max() <= 60 and abs(np.median(contrast) - 35) < 4
    assert not any(lesion.rim or lesion.blur for lesion in classic)


def _liver_layers(seed, config):
    anatomy_seed = _streams(seed)[0]
    _, vessel_seed, shape_seed = _anatomy_streams(seed)
    rng = np.random.default_rng(anatomy_seed)
    frame = sample_frame(rng)
    layers = liver(frame, rng, config, np.random.default_rng(vessel_seed), np.random.default_rng(shape_seed))
    return frame, layers


def _liver_mask(layers, step=8.0):
    grid = Grid(*(np.arange(low, high, step, dtype=np.float32) for low, high in layers[0].box))
    return grid, layers[0].inside(grid.coords())


def test_liver_shape_varies_in_volume_left_lobe_and_riedel_lobe():
    volumes, reach, centroid = [], [], []
    for seed in range(40):
        _, layers = _liver_layers(seed, MIXTURE)
        grid, mask = _liver_mask(layers)
        z, _, x = np.nonzero(mask)
        volumes.append(mask.sum() * 8.0**3 / 1e6)
        reach.append(grid.x[x].max())
        centroid.append(grid.x[x].mean())
    volumes = np.array(volumes)
    assert volumes.min() > 0.8 and volumes.max() < 2.9, volumes  # drawn 1.0-2.5 L, then clipped by the body
    assert volumes.min() < 1.3 and volumes.max() > 1.9, volumes
    assert max(centroid) < 0  # most of the liver on the patient's right (the image's left)
    assert np.ptp(reach) > 50, reach  # the left lobe: from short of the midline's left to near the spleen
    lowest = {}
    for p in (0.0, 1.0):
        config = PhantomConfig(riedel_probability=p)
        lowest[p] = []
        for seed in range(6):
            grid, mask = _liver_mask(_liver_layers(seed, config)[1])
            lowest[p].append(grid.z[np.nonzero(mask)[0]].min())
    assert all(b < a - 10 for a, b in zip(lowest[0.0], lowest[1.0])), lowest  # a tongue hanging lower


def test_a_thicker_left_lobe_puts_more_liver_left_of_the_midline_at_the_same_volume():
    left_share, litres = {}, {}
    for thickness in ((1.0, 1.0), (2.0, 2.0)):
        config = PhantomConfig(left_lobe_scale=(1.8, 1.8), left_lobe_thickness=thickness)
        left_share[thickness], litres[thickness] = [], []
        for seed in range(4):
            grid, mask = _liver_mask(_liver_layers(seed, config)[1], step=6.0)
            left_share[thickness].append(mask[:, :, grid.x > 0].sum() / mask.sum())
            litres[thickness].append(mask.sum() * 6.0**3 / 1e6)
    thin, thick = (np.array(left_share[t]) for t in ((1.0, 1.0), (2.0, 2.0)))
    assert np.all(thick > thin + 0.02), (thin, thick)
    # the volume drawn for the liver still holds: the rest of it shrinks to make room
    assert np.allclose(litres[(2.0, 2.0)], litres[(1.0, 1.0)], rtol=0.12), litres
    assert PhantomConfig(left_lobe_thickness=(1.0, 1.0)).key() == PhantomConfig().key()  # folders keep names
    assert PhantomConfig(left_lobe_thickness=(1.0, 2.0)).key() != PhantomConfig().key()


def test_a_larger_volume_target_lets_a_broad_left_lobe_add_to_the_liver_not_shrink_its_right_lobe():
    def measure(config):
        shares, right = [], []
        for seed in range(4):
            grid, mask = _liver_mask(_liver_layers(seed, config)[1], step=6.0)
            xs = grid.x[np.nonzero(mask.any(axis=(0, 1)))[0]]
            middle = 0.5 * (xs.min() + xs.max())
            shares.append(mask[:, :, grid.x > middle].sum() / mask.sum())  # its patient-left half
            right.append(mask[:, :, grid.x < 0].sum())  # right of the body's midline
        return np.array(shares), np.array(right)

    lobes = {"left_lobe_scale": (1.2, 2.0), "left_lobe_thickness": (1.5, 2.5)}
    share, right = measure(PhantomConfig())
    _, thick_right = measure(PhantomConfig(**lobes))
    broad_share, broad_right = measure(PhantomConfig(**lobes, liver_volume_l=(1.5, 3.5)))
    assert np.all(thick_right < right), (right, thick_right)  # same volume: the right lobe shrinks
    assert np.all(broad_right >= 0.95 * right), (right, broad_right)  # a larger target keeps it
    assert np.all(broad_share > share) and np.mean(broad_share - share) > 0.05, (share, broad_share)


def test_vessel_tree_has_tens_of_branches_only_in_the_mixture():
    for seed in range(5):
        branches = sum(layer.tissue == Tissue.HEPATIC_VESSEL for layer in _liver_layers(seed, MIXTURE)[1])
        classic = sum(layer.tissue == Tissue.HEPATIC_VESSEL for layer in _liver_layers(seed, CLASSIC)[1])
        assert classic == 7 and 30 <= branches <= 90, (classic, branches)


@pytest.fixture(scope="module")
def rendered():
    """Small mixture phantoms with lesions forced into the multifocal mode, and classic ones."""
    multifocal = PhantomConfig(streak_probability=0.0, metal_probability=0.0, healthy_probability=0.0,
                               multifocal_probability=1.0)
    spacing = (3.0, 2.0, 2.0)
    return ([make_phantom(seed, spacing=spacing, config=multifocal) for seed in range(3)],
            [make_phantom(seed, spacing=spacing, config=CLASSIC, lesions=0) for seed in range(3)])


def test_rendered_vessels_fill_a_few_percent_of_the_liver(rendered):
    def fraction(phantom):
        vessel = (phantom.tissues == Tissue.HEPATIC_VESSEL).sum()
        return vessel / ((phantom.tissues == Tissue.LIVER).sum() + vessel)

    mixture, classic = ([fraction(p) for p in group] for group in rendered)
    assert max(classic) < 0.012  # the classic phantoms: about 0.7 %
    assert 0.02 < np.mean(mixture) < 0.06 and min(mixture) > 0.015, mixture  # LiTS: 3-5 %


def test_multifocal_phantoms_keep_lesions_inside_the_liver_on_the_image_left(rendered):
    for phantom in rendered[0] + rendered[1]:
        label = phantom.case.label
        assert label.dtype == np.uint8 and set(np.unique(label)) <= {0, LIVER, LESION}
        _, _, x = np.nonzero(label > 0)
        assert (x < label.shape[2] / 2).mean() > 0.7
        assert not (ndimage.binary_dilation(label == LESION) & (label == 0)).any(), phantom.case.case_id
    for phantom in rendered[0]:
        label = phantom.case.label
        assert len(phantom.lesions) >= 15 and all(lesion.multifocal for lesion in phantom.lesions)
        _, components = ndimage.label(label == LESION)
        assert components >= 8, components
        share = (label == LESION).sum() / (label > 0).sum()
        assert 0.03 < share < 0.35, share  # LiTS multifocal livers: lesions ~10-25 % of the liver
        liver_hu = phantom.hu[Tissue.LIVER]
        for k, lesion in enumerate(phantom.lesions):
            assert phantom.hu[Tissue.LESION + k] == pytest.approx(liver_hu - lesion.contrast)


def test_a_negative_lesion_count_is_refused():
    with pytest.raises(ValueError, match="lesions must be a count >= 0"):
        make_phantom(0, shape=(1, 16, 16), lesions=-1)


@pytest.mark.parametrize("changes, match", [
    ({"healthy_probability": 1.5}, r"healthy_probability must be in \[0, 1\]"),
    ({"multifocal_probability": -0.1}, r"multifocal_probability must be in \[0, 1\]"),
    ({"lesion_radius_mm": (0.0, 10.0)}, "lesion_radius_mm must be a range with 0 < low"),
    ({"lesion_contrast_hu": (60.0, 10.0)}, "lesion_contrast_hu must be a range"),
    ({"lesion_contrast_normal_hu": (45.0, -1.0)}, "lesion_contrast_normal_hu must be a pair, both >= 0"),
    ({"core_darkening_hu": (25.0, 10.0)}, "core_darkening_hu must be a range"),
    ({"multifocal_count": (15.5, 80)}, "multifocal_count must be a range of whole numbers"),
    ({"multifocal_count": (15, 300)}, "at most 200 lesions"),
    ({"multifocal_radius_median_mm": 20.0}, "multifocal_radius_median_mm must lie in"),
    ({"multifocal_radius_sigma_log": -0.1}, "multifocal_radius_sigma_log must be >= 0"),
    ({"multifocal_large_radius_mm": (35.0, 15.0)}, "multifocal_large_radius_mm must be a range"),
    ({"hyperdense_probability": 2.0}, r"hyperdense_probability must be in \[0, 1\]"),
    ({"rim_hu": (-5.0, 10.0)}, "rim_hu must be a range"),
    ({"border_blur_mm": (3.0,)}, "border_blur_mm must be a range"),
    ({"vessel_generations": 9}, r"vessel_generations must be a whole number in \[0, 5\]"),
    ({"vessel_tip_radius_mm": (0.0, 1.0)}, "vessel_tip_radius_mm must be a range with 0 < low"),
    ({"left_lobe_scale": (1.5, 0.7)}, "left_lobe_scale must be a range"),
    ({"left_lobe_thickness": (0.0, 1.0)}, "left_lobe_thickness"),
    ({"riedel_probability": -1.0}, r"riedel_probability must be in \[0, 1\]"),
    ({"liver_volume_l": (0.0, 2.0)}, "liver_volume_l must be a range with 0 < low"),
])
def test_phantom_config_rejects_bad_anatomy_settings_clearly(changes, match):
    with pytest.raises(ValueError, match=match):
        PhantomConfig(**changes)
