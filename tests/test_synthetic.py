"""Synthetic phantoms: deterministic, labelled like LiTS, anatomically placed, realistic HU."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from liverseg.datasets.base import LESION, LIVER
from liverseg.datasets.synthetic import (
    LESION_CONTRAST_HU, TISSUE_HU, Tissue, iter_cases, make_case, make_dataset, make_phantom, scan_geometry,
)
from liverseg.datasets.synthetic.lesions import lesion_count
from liverseg.io import CANONICAL_AXCODES, read_label, read_volume

SMALL = (32, 64, 64)


@pytest.fixture(scope="module")
def small_phantoms():
    return [make_phantom(seed, shape=SMALL) for seed in range(8)]


def test_same_seed_gives_the_same_case_and_another_seed_another():
    first, again, other = make_case(3, shape=SMALL), make_case(3, shape=SMALL), make_case(4, shape=SMALL)
    assert np.array_equal(first.image.array, again.image.array)
    assert np.array_equal(first.label, again.label)
    assert first.image.spacing == again.image.spacing
    assert not np.array_equal(first.label, other.label)
    assert not np.array_equal(first.image.array, other.image.array)


def test_case_is_a_canonical_volume_with_a_lits_label(small_phantoms):
    for phantom in small_phantoms:
        case = phantom.case
        assert case.image.array.shape == SMALL and case.image.array.dtype == np.float32
        assert np.array_equal(case.image.array, np.round(case.image.array))  # whole HU, as stored CT
        assert nib.aff2axcodes(case.image.affine) == CANONICAL_AXCODES
        assert case.label.dtype == np.uint8 and set(np.unique(case.label)) <= {0, LIVER, LESION}
        assert (case.label == LIVER).sum() > 500


def test_lesions_lie_inside_the_liver(small_phantoms):
    with_lesions = [p for p in small_phantoms if (p.case.label == LESION).any()]
    assert with_lesions
    for phantom in with_lesions:
        label = phantom.case.label
        rim = ndimage.binary_dilation(label == LESION)  # 6-neighbours of every lesion voxel
        assert not (rim & (label == 0)).any(), phantom.case.case_id


def test_some_cases_are_healthy_and_some_have_several_lesions(small_phantoms):
    lesion_voxels = [(p.case.label == LESION).sum() for p in small_phantoms]
    assert 0 in lesion_voxels and max(lesion_voxels) > 0
    counts = [lesion_count(np.random.default_rng(seed)) for seed in range(300)]
    assert 0.2 < counts.count(0) / len(counts) < 0.4  # healthy livers, as in LiTS
    assert max(counts) >= 4


def test_liver_is_on_the_image_left_below_the_lungs_and_the_spleen_opposite(small_phantoms):
    for phantom in small_phantoms:
        tissues = phantom.tissues
        nz, _, nx = tissues.shape
        z, _, x = np.nonzero(phantom.case.label > 0)
        assert (x < nx / 2).mean() > 0.7  # patient right = image left
        assert z.mean() > 0.4 * nz  # upper abdomen
        lung_z = np.nonzero(tissues == Tissue.LUNG)[0]
        assert lung_z.mean() > z.mean()  # lungs above the diaphragm, over the liver
        spleen_x = np.nonzero(tissues == Tissue.SPLEEN)[2]
        assert spleen_x.size and spleen_x.mean() > nx / 2  # spleen on the patient's left


def _interior_mean(phantom, tissues) -> float:
    mask = ndimage.binary_erosion(np.isin(phantom.tissues, tissues))
    assert mask.sum() > 50, tissues
    return float(phantom.case.image.array[mask].mean())


@pytest.mark.parametrize("phase", ["portal_venous", "unenhanced"])
def test_tissue_hu_follows_the_design_table(phase):
    phantom = make_phantom(11, shape=(40, 128, 128), phase=phase)
    table = TISSUE_HU[phase]
    assert phantom.phase == phase
    for tissue, tolerance in ((Tissue.LIVER, 6), (Tissue.FAT, 10), (Tissue.MUSCLE, 10)):
        low, high = table[tissue]
        assert low - tolerance <= _interior_mean(phantom, [tissue]) <= high + tolerance, tissue.name
    image = phantom.case.image.array
    assert abs(np.median(image[phantom.tissues == Tissue.AIR]) + 1000) < 5
    assert np.median(image[phantom.tissues == Tissue.LUNG]) < -800
    bone = np.median(image[np.isin(phantom.tissues, [Tissue.BONE, Tissue.CORTEX])])
    assert 300 <= bone <= 1000
    assert 10 <= phantom.noise_hu <= 20
    air = image[ndimage.binary_erosion(phantom.tissues == Tissue.AIR, iterations=3)]
    noise = 1.4826 * np.median(np.abs(air - np.median(air)))  # robust to air clipped at -1024
    assert noise == pytest.approx(phantom.noise_hu, abs=1.5)


def test_lesions_are_10_to_60_hu_darker_than_the_liver():
    found = 0
    for seed in range(12):
        phantom = make_phantom(seed, shape=(40, 96, 96), phase="portal_venous", lesions=2)
        liver = phantom.hu[Tissue.LIVER]
        for k, lesion in enumerate(phantom.lesions):
            assert LESION_CONTRAST_HU[0] <= liver - phantom.hu[Tissue.LESION + k] <= LESION_CONTRAST_HU[1]
            mask = ndimage.binary_erosion(phantom.tissues == Tissue.LESION + k)
            if mask.sum() >= 30:
                measured = _interior_mean(phantom, [Tissue.LIVER]) - phantom.case.image.array[mask].mean()
                assert 10 - 6 <= measured <= 60 + 6
                found += 1
        if found >= 2:
            break
    assert found >= 2


def test_default_scans_vary_within_clinical_spacing():
    scans = [scan_geometry(seed) for seed in range(40)]
    thickness = [s.spacing[0] for s in scans]
    pixel = [s.spacing[1] for s in scans]
    assert all(0.7 <= t <= 5.0 for t in thickness) and len(set(thickness)) >= 5
    assert all(0.5 <= p <= 1.0 for p in pixel) and max(pixel) - min(pixel) > 0.1
    assert all(s.shape[1:] == (512, 512) for s in scans)
    assert len({s.shape[0] for s in scans}) >= 20
    assert min(s.shape[0] for s in scans) >= 40


def test_shape_and_spacing_arguments_are_honoured_and_anatomy_is_in_millimetres():
    assert make_case(2, shape=(20, 40, 48)).image.shape == (20, 40, 48)
    assert scan_geometry(2, shape=(20, 40, 48)).spacing == make_case(2, shape=(20, 40, 48)).image.spacing
    both = make_case(2, shape=(12, 32, 32), spacing=(5.0, 4.0, 4.0))
    assert both.image.shape == (12, 32, 32) and both.image.spacing == (5.0, 4.0, 4.0)
    volumes = []
    for pixel in (3.0, 4.5):
        case = make_case(2, spacing=(6.0, pixel, pixel), lesions=0)
        assert case.image.spacing == (6.0, pixel, pixel)
        volumes.append((case.label > 0).sum() * np.prod(case.image.spacing))
    assert volumes[0] == pytest.approx(volumes[1], rel=0.1)  # same liver in mm³, other voxel count
    assert 600e3 < volumes[0] < 3500e3  # an adult liver: 0.6–3.5 litres


def test_make_dataset_writes_lits_pairs_read_back_unchanged(tmp_path):
    shape = (12, 32, 32)
    paths = make_dataset(tmp_path, 2, seed=5, shape=shape)
    assert [p.name for p in paths] == ["volume-0.nii.gz", "volume-1.nii.gz"]
    for path, case in zip(paths, iter_cases(2, seed=5, shape=shape)):
        image = read_volume(path)
        label = read_label(path.with_name(path.name.replace("volume", "segmentation")), like=image)
        assert np.array_equal(image.array, case.image.array)
        assert np.array_equal(label, case.label)
        assert np.allclose(image.spacing, case.image.spacing)
        assert np.allclose(image.affine, case.image.affine, atol=1e-4)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="shape"):
        make_case(0, shape=(0, 32, 32))
    with pytest.raises(ValueError, match="spacing"):
        make_case(0, spacing=(1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="phase"):
        make_case(0, shape=SMALL, phase="arterial")
