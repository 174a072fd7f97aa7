"""Metrics against medpy, brute force and hand-computed cases."""

import json
import math

import numpy as np
import pytest
from medpy.metric import binary
from scipy import ndimage
from scipy.spatial.distance import cdist

from liverseg import metrics
from liverseg.errors import InvalidDataError, ShapeError


def blob(shape, seed, sigma=2.0, fraction=0.3):
    """A random smooth blob mask occupying about ``fraction`` of the array."""
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=shape), sigma)
    return noise > np.quantile(noise, 1.0 - fraction)


def pairs():
    """(prediction, reference, spacing) pairs covering blobs and edge cases."""
    cases = []
    for seed in range(4):
        a, b = blob((12, 20, 18), seed), blob((12, 20, 18), seed + 100)
        cases.append((a, b, (2.5, 0.7, 0.8)))
        cases.append((a, a ^ ndimage.binary_erosion(a), (1.0, 1.0, 1.0)))
    single = np.zeros((7, 7, 7), bool)
    single[3, 3, 3] = True
    other = np.zeros_like(single)
    other[0, 6, 1] = True
    cases.append((single, other, (3.0, 0.5, 0.5)))  # single voxels
    cases.append((single, single, (1.0, 1.0, 1.0)))
    full = np.ones((6, 8, 8), bool)  # touches every border
    part = full.copy()
    part[:, :3] = False
    cases.append((full, part, (5.0, 0.6, 0.6)))
    plane = np.zeros((9, 9), bool)  # 2D slice
    plane[2:7, 1:5] = True
    cases.append((plane, np.roll(plane, 3, axis=1), (0.8, 0.6)))
    return cases


@pytest.mark.parametrize("pred, ref, spacing", pairs())
def test_overlap_matches_medpy(pred, ref, spacing):
    assert metrics.dice(pred, ref) == pytest.approx(binary.dc(pred, ref), abs=1e-12)
    assert metrics.iou(pred, ref) == pytest.approx(binary.jc(pred, ref), abs=1e-12)
    assert metrics.voe(pred, ref) == pytest.approx(1 - binary.jc(pred, ref), abs=1e-12)
    assert metrics.rvd(pred, ref) == pytest.approx(binary.ravd(pred, ref), abs=1e-12)
    expected_accuracy = np.mean(pred == ref)
    assert metrics.accuracy(pred, ref) == pytest.approx(expected_accuracy, abs=1e-12)


@pytest.mark.parametrize("connectivity", [1, 2, 3])
@pytest.mark.parametrize("pred, ref, spacing", pairs())
def test_surface_distances_match_medpy(pred, ref, spacing, connectivity):
    kwargs = dict(voxelspacing=spacing, connectivity=connectivity)
    assert metrics.assd(pred, ref, spacing, connectivity) == pytest.approx(
        binary.assd(pred, ref, **kwargs), abs=1e-6)
    assert metrics.mssd(pred, ref, spacing, connectivity) == pytest.approx(
        binary.hd(pred, ref, **kwargs), abs=1e-6)
    to_ref, _ = metrics.surface_distances(pred, ref, spacing, connectivity)
    assert to_ref.mean() == pytest.approx(binary.asd(pred, ref, **kwargs), abs=1e-6)


def brute_force_rmsd(pred, ref, spacing, connectivity):
    footprint = ndimage.generate_binary_structure(pred.ndim, connectivity)
    surfaces = [m ^ ndimage.binary_erosion(m, footprint) for m in (pred, ref)]
    points = [np.argwhere(s) * np.asarray(spacing) for s in surfaces]
    d = cdist(points[0], points[1])
    both = np.concatenate([d.min(axis=1), d.min(axis=0)])
    return math.sqrt(np.mean(both ** 2)), both.max(), both.mean()


@pytest.mark.parametrize("connectivity", [1, 2])
@pytest.mark.parametrize("seed", range(3))
def test_rmsd_matches_brute_force(seed, connectivity):
    shape, spacing = (6, 9, 8), (2.0, 0.75, 0.9)
    pred, ref = blob(shape, seed, sigma=1.0), blob(shape, seed + 50, sigma=1.0)
    expected_rmsd, expected_max, expected_mean = brute_force_rmsd(pred, ref, spacing, connectivity)
    assert metrics.rmsd(pred, ref, spacing, connectivity) == pytest.approx(expected_rmsd, abs=1e-6)
    assert metrics.mssd(pred, ref, spacing, connectivity) == pytest.approx(expected_max, abs=1e-6)
    assert metrics.assd(pred, ref, spacing, connectivity) == pytest.approx(expected_mean, abs=1e-6)


def test_bounding_box_crop_does_not_change_distances():
    pred, ref = blob((10, 14, 14), 7), blob((10, 14, 14), 8)
    big_pred = np.pad(pred, 9)
    big_ref = np.pad(ref, 9)
    spacing = (1.5, 0.7, 0.7)
    for fn in (metrics.assd, metrics.mssd, metrics.rmsd):
        # padding moves the objects off the array border, so the surfaces of voxels that
        # touched it are the same either way: erosion treats the outside as background.
        assert fn(big_pred, big_ref, spacing) == pytest.approx(fn(pred, ref, spacing), abs=1e-9)


def test_anisotropic_spacing_scales_distance():
    ref = np.zeros((5, 5, 5), bool)
    ref[2, 2, 2] = True
    pred = np.zeros_like(ref)
    pred[4, 2, 2] = True  # two slices away
    assert metrics.mssd(pred, ref, (3.0, 0.5, 0.5)) == pytest.approx(6.0)
    assert metrics.mssd(pred, ref, (1.0, 0.5, 0.5)) == pytest.approx(2.0)


def test_empty_mask_rules():
    empty = np.zeros((4, 5, 6), bool)
    some = empty.copy()
    some[1:3, 1:3, 1:3] = True
    assert metrics.dice(empty, empty) == 1.0 and metrics.iou(empty, empty) == 1.0
    assert metrics.rvd(empty, empty) == 0.0 and metrics.voe(empty, empty) == 0.0
    assert metrics.assd(empty, empty) == 0.0 and metrics.mssd(empty, empty) == 0.0
    assert metrics.dice(empty, some) == 0.0 and metrics.dice(some, empty) == 0.0
    assert metrics.iou(some, empty) == 0.0 and metrics.voe(some, empty) == 1.0
    assert metrics.rvd(empty, some) == -1.0 and metrics.rvd(some, empty) == math.inf
    for fn in (metrics.assd, metrics.mssd, metrics.rmsd):
        assert fn(empty, some) == math.inf and fn(some, empty) == math.inf


def test_per_slice_scores():
    ref = np.zeros((3, 4, 4), bool)
    ref[0, :2] = True
    ref[1, :2] = True
    pred = np.zeros_like(ref)
    pred[0, :2] = True
    pred[1, :1] = True
    pred[2, 0, 0] = True
    np.testing.assert_allclose(metrics.dice(pred, ref, axis=(1, 2)), [1.0, 2 * 4 / 12, 0.0])
    np.testing.assert_allclose(metrics.iou(pred, ref, axis=(1, 2)), [1.0, 4 / 8, 0.0])
    np.testing.assert_allclose(metrics.accuracy(pred, ref, axis=(1, 2)), [1.0, 12 / 16, 15 / 16])


def test_miou_with_and_without_background():
    ref = np.array([[0, 0, 1, 1], [0, 2, 2, 1]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 0, 1]])
    iou0, iou1, iou2 = 2 / 4, 3 / 4, 1 / 2  # class unions 4, 4 and 2
    assert metrics.miou(pred, ref) == pytest.approx((iou0 + iou1 + iou2) / 3)
    assert metrics.miou(pred, ref, include_background=False) == pytest.approx((iou1 + iou2) / 2)
    # a class absent from both arrays is skipped, not counted as a perfect score
    assert metrics.miou(pred, ref, classes=(0, 1, 2, 5)) == pytest.approx((iou0 + iou1 + iou2) / 3)


def test_accumulator_per_case_mean_and_global():
    refs = [blob((6, 16, 16), s) for s in range(3)]
    preds = [blob((6, 16, 16), s + 10) for s in range(3)]
    preds[2] = np.zeros_like(preds[2])
    acc = metrics.OverlapAccumulator()
    for i, (p, r) in enumerate(zip(preds, refs)):
        scores = acc.add(p, r, case_id=f"case{i}")
        assert scores["dice"] == pytest.approx(binary.dc(p, r))
        assert scores["iou_0"] == pytest.approx(binary.jc(~p, ~r))
        assert scores["miou"] == pytest.approx((binary.jc(p, r) + binary.jc(~p, ~r)) / 2)
    summary = json.loads(json.dumps(acc.summary(), allow_nan=False))
    assert summary["n_cases"] == 3 and summary["per_case"][1]["case_id"] == "case1"
    per_case = [binary.dc(p, r) for p, r in zip(preds, refs)]
    assert summary["mean"]["dice"] == pytest.approx(np.mean(per_case))
    all_preds, all_refs = np.concatenate(preds), np.concatenate(refs)
    assert summary["global"]["dice"] == pytest.approx(binary.dc(all_preds, all_refs))
    assert summary["global"]["iou"] == pytest.approx(binary.jc(all_preds, all_refs))
    assert summary["global"]["accuracy"] == pytest.approx(np.mean(all_preds == all_refs))
    assert summary["global"]["dice"] != pytest.approx(summary["mean"]["dice"])


def test_lesion_detection_counts_matches():
    ref = np.zeros((1, 20, 40), bool)
    ref[0, 2:8, 2:8] = True       # found well (IoU 1)
    ref[0, 2:8, 12:18] = True     # found poorly (IoU < 0.5)
    ref[0, 12:18, 2:8] = True     # missed
    pred = np.zeros_like(ref)
    pred[0, 2:8, 2:8] = True
    pred[0, 2:4, 12:14] = True
    pred[0, 12:18, 30:36] = True  # false positive
    result = metrics.lesion_detection(pred, ref)
    assert result == {"tp": 1, "n_pred": 3, "n_ref": 3, "precision": 1 / 3, "recall": 1 / 3}
    nothing = metrics.lesion_detection(np.zeros_like(ref), np.zeros_like(ref))
    assert nothing["tp"] == 0 and math.isnan(nothing["precision"]) and math.isnan(nothing["recall"])


def brute_force_detection(pred, ref, threshold=0.5):
    pred_ids, n_pred = ndimage.label(pred)
    ref_ids, n_ref = ndimage.label(ref)
    detected = 0
    for j in range(1, n_ref + 1):
        r = ref_ids == j
        best = max((np.sum(r & (pred_ids == i)) / np.sum(r | (pred_ids == i))
                    for i in range(1, n_pred + 1)), default=0.0)
        detected += best > threshold
    return detected, n_pred, n_ref


@pytest.mark.parametrize("seed", range(4))
def test_lesion_detection_matches_brute_force(seed):
    ref = blob((6, 24, 24), seed, sigma=1.2, fraction=0.15)
    pred = ref if seed % 2 else blob((6, 24, 24), seed + 9, 1.2, 0.15)
    pred = pred ^ (np.random.default_rng(seed).random(pred.shape) > 0.97)  # specks and holes
    tp, n_pred, n_ref = brute_force_detection(pred, ref)
    result = metrics.lesion_detection(pred, ref)
    assert (result["tp"], result["n_pred"], result["n_ref"]) == (tp, n_pred, n_ref)
    assert n_ref > 1 and n_pred > 1
    if seed % 2:
        assert tp > 0
    one_big = metrics.lesion_detection(np.ones_like(ref), ref)  # a prediction spanning all
    assert one_big["n_pred"] == 1 and one_big["tp"] <= 1


@pytest.mark.parametrize("seed", range(2))
def test_lesion_matches_names_each_found_reference_lesion(seed):
    ref = blob((6, 24, 24), seed, sigma=1.2, fraction=0.15)
    pred = ref ^ (np.random.default_rng(seed).random(ref.shape) > 0.97)
    ref_ids, n_ref = ndimage.label(ref)
    pred_ids, n_pred = ndimage.label(pred)
    def best_iou(j):
        mine = ref_ids == j
        return max((np.sum(mine & (pred_ids == i)) / np.sum(mine | (pred_ids == i))
                    for i in range(1, n_pred + 1)), default=0.0)

    expected = [best_iou(j) > 0.5 for j in range(1, n_ref + 1)]
    found, counted = metrics.lesion_matches(pred, ref)
    assert found.tolist() == expected and counted == n_pred
    assert 0 < found.sum() < n_ref  # the specks split or spoil some lesions, not all
    pad = ((0, 0), (5, 0), (7, 0))  # the crop to the joint box keeps the order
    assert metrics.lesion_matches(np.pad(pred, pad), np.pad(ref, pad))[0].tolist() == expected


def lits_pair():
    ref = np.zeros((10, 24, 24), np.uint8)
    ref[2:8, 4:20, 4:20] = 1
    ref[4:6, 8:12, 8:12] = 2
    pred = np.roll(ref, 1, axis=2)
    return pred, ref


def test_evaluate_case_matches_medpy_and_is_json():
    pred, ref = lits_pair()
    spacing = (2.0, 0.8, 0.8)
    result = json.loads(json.dumps(metrics.evaluate_case(pred, ref, spacing), allow_nan=False))
    for name, p, r in (("liver", pred >= 1, ref >= 1), ("lesion", pred == 2, ref == 2)):
        scores = result[name]
        kwargs = dict(voxelspacing=spacing, connectivity=2)
        assert scores["dice"] == pytest.approx(binary.dc(p, r), abs=1e-9)
        assert scores["voe"] == pytest.approx(1 - binary.jc(p, r), abs=1e-9)
        assert scores["rvd"] == pytest.approx(binary.ravd(p, r), abs=1e-9)
        assert scores["assd"] == pytest.approx(binary.assd(p, r, **kwargs), abs=1e-6)
        assert scores["mssd"] == pytest.approx(binary.hd(p, r, **kwargs), abs=1e-6)
        assert scores["empty"] is None
        assert scores["ref_volume_ml"] == pytest.approx(r.sum() * 2.0 * 0.8 * 0.8 / 1000)
    expected = {"tp": 1, "n_pred": 1, "n_ref": 1, "precision": 1.0, "recall": 1.0}
    assert result["lesion"]["detection"] == expected


def test_evaluate_case_empty_structures_and_summary():
    pred, ref = lits_pair()
    healthy_ref = np.where(ref == 2, 1, ref).astype(np.uint8)
    healthy_pred = np.where(pred == 2, 1, pred).astype(np.uint8)
    both_empty = metrics.evaluate_case(healthy_pred, healthy_ref, (1, 1, 1))["lesion"]
    assert both_empty["empty"] == "both" and both_empty["dice"] == 1.0 and both_empty["assd"] == 0.0
    missed = metrics.evaluate_case(healthy_pred, ref, (1, 1, 1))
    assert missed["lesion"]["empty"] == "prediction" and missed["lesion"]["dice"] == 0.0
    assert missed["lesion"]["assd"] is None and missed["lesion"]["rvd"] == -1.0
    assert missed["lesion"]["detection"]["precision"] is None
    false_alarm = metrics.evaluate_case(pred, healthy_ref, (1, 1, 1))["lesion"]
    assert false_alarm["empty"] == "reference" and false_alarm["rvd"] is None

    good = metrics.evaluate_case(pred, ref, (1, 1, 1))
    cases = [json.loads(json.dumps(c, allow_nan=False)) for c in (good, missed)]
    summary = metrics.summarize_cases(cases)
    lesion = summary["lesion"]
    assert lesion["assd"]["n_skipped"] == 1
    assert lesion["assd"]["mean"] == pytest.approx(good["lesion"]["assd"])
    assert lesion["dice_per_case"] == pytest.approx(good["lesion"]["dice"] / 2)
    both_pred = np.concatenate([pred == 2, healthy_pred == 2])
    both_ref = np.concatenate([ref == 2, ref == 2])
    assert lesion["dice_global"] == pytest.approx(binary.dc(both_pred, both_ref))
    expected = {"tp": 1, "n_pred": 1, "n_ref": 2, "precision": 1.0, "recall": 0.5}
    assert lesion["detection"] == expected
    assert lesion["empty_cases"]["prediction"] == 1


def test_bad_inputs_raise_clear_errors():
    a = np.zeros((3, 4, 5), np.uint8)
    with pytest.raises(ShapeError, match="shape"):
        metrics.dice(a, np.zeros((3, 4, 6)))
    with pytest.raises(ShapeError, match="pred.nii"):
        metrics.evaluate_case(a, np.zeros((3, 4, 4), np.uint8), (1, 1, 1), pred_path="pred.nii")
    with pytest.raises(InvalidDataError, match="outside"):
        metrics.evaluate_case(a + 3, a, (1, 1, 1))
    with pytest.raises(InvalidDataError, match="non-integer"):
        metrics.evaluate_case(a + 0.5, a, (1, 1, 1))
    with pytest.raises(InvalidDataError, match="spacing"):
        metrics.evaluate_case(a, a, (1, 0, 1))
    with pytest.raises(InvalidDataError, match="NaN"):
        metrics.dice(np.full((2, 2), np.nan), np.zeros((2, 2)))
