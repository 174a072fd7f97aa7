"""Table 6 of the results chapter: the system's model folder (liver and lesion networks of every
plane), segmenting with each plane and fused as ``Segmenter`` does, per-case scores and their
aggregation over seeds."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from liverseg import config
from liverseg.experiments import paper_tables
from liverseg.experiments.system_results import (FUSED, case_rows, example_panels, with_lesion_changes,
                                                 over_seeds, plot_examples, ranked_cases,
                                                 score_case, seed_values, segment_systems,
                                                 system_model_folder, table6, table6_markdown)


def _row(seed, case, structure, plane, dice, inter, pred, ref, voe=0.1, assd=1.0, tp=None,
         n_pred=None, n_ref=None):
    row = {"seed": seed, "case": case, "structure": structure, "plane": plane,
           "accuracy": 0.9 + dice / 10, "dice": dice, "iou": dice / (2 - dice), "miou": 0.5 + dice / 2,
           "voe": voe, "rvd": 0.0, "assd": assd, "msd": 2 * assd if assd is not None else None,
           "rmsd": assd, "intersection_voxels": inter, "pred_voxels": pred, "ref_voxels": ref,
           "empty": None}
    if tp is not None:
        row.update(tp=tp, n_pred=n_pred, n_ref=n_ref, precision=tp / n_pred if n_pred else None,
                   recall=tp / n_ref if n_ref else None)
    return row


def test_table6_averages_cases_per_seed_then_seeds_and_pools_the_global_scores():
    rows = [
        _row(0, "a", "liver", FUSED, 0.9, 90, 100, 100), _row(0, "b", "liver", FUSED, 0.5, 5, 10, 10),
        _row(1, "a", "liver", FUSED, 0.8, 80, 100, 100), _row(1, "b", "liver", FUSED, 0.7, 7, 10, 10),
        _row(0, "a", "lesion", FUSED, 0.6, 6, 10, 10, assd=None, tp=1, n_pred=2, n_ref=1),
        _row(0, "b", "lesion", FUSED, 1.0, 0, 0, 0, assd=3.0, tp=0, n_pred=0, n_ref=0),
        _row(1, "a", "lesion", FUSED, 0.4, 4, 10, 10, assd=2.0, tp=1, n_pred=1, n_ref=1),
        _row(1, "b", "lesion", FUSED, 0.0, 0, 5, 0, assd=None, tp=0, n_pred=1, n_ref=0),
    ]
    table = table6(rows)
    liver = table["liver"][FUSED]
    per_seed = np.array([np.mean([0.9, 0.5]), np.mean([0.8, 0.7])])
    assert liver["dice"]["mean"] == pytest.approx(per_seed.mean())
    assert liver["dice"]["sd"] == pytest.approx(per_seed.std(ddof=1))
    assert liver["dice"]["n_seeds"] == 2
    global_dice = np.array([2 * 95 / 220, 2 * 87 / 220])
    assert liver["dice_global"]["mean"] == pytest.approx(global_dice.mean())
    assert liver["dice_global"]["sd"] == pytest.approx(global_dice.std(ddof=1))
    assert "precision" not in liver and set(liver) >= {"accuracy", "miou", "voe", "rvd", "assd",
                                                      "msd", "rmsd"}
    lesion = table["lesion"][FUSED]
    # undefined distances (None) are left out of the case means: seed 0 → 3.0, seed 1 → 2.0
    assert lesion["assd"]["mean"] == pytest.approx(2.5)
    # detection is pooled over the patients of a seed: 1/2 and 1/2; recall 1/1 and 1/1
    assert lesion["precision"] == {"mean": pytest.approx(0.5), "sd": pytest.approx(0.0),
                                   "n_seeds": 2}
    assert lesion["recall"]["mean"] == pytest.approx(1.0)
    assert lesion["dice_global"]["mean"] == pytest.approx(np.mean([2 * 6 / 20, 2 * 4 / 25]))


def test_results_json_has_the_report_chapters_keys(tmp_path):
    from liverseg.experiments.system_results import SystemResults

    rows = [_row(0, "a", "liver", plane, 0.9, 9, 10, 10) for plane in ("axial", FUSED)]
    rows += [_row(0, "a", "lesion", plane, 0.5, 1, 2, 2, tp=1, n_pred=1, n_ref=1)
             for plane in ("axial", FUSED)]
    settings = config.profile("smoke")
    results = SystemResults("synthetic", [0], settings.to_dict(), settings.to_dict(),
                            {"train": ["x"], "val": ["y"], "test": ["a"]}, rows,
                            {0: "system-seed-0-abc"}, 1.5)
    path = results.save(tmp_path / "results.json", paper=paper_tables.TABLE_6)
    saved = json.loads(path.read_text())
    assert {"experiment", "dataset", "seeds", "settings", "split", "liverseg_version",
            "keras_backend", "seconds", "table6", "per_case"} <= set(saved)
    assert saved["experiment"] == "results" and saved["seeds"] == [0]
    assert saved["table6"]["liver"][FUSED]["dice"] == {"mean": 0.9, "sd": None, "n_seeds": 1}
    assert set(saved["table6"]["lesion"]["axial"]) >= {"accuracy", "dice", "miou", "dice_global",
                                                       "voe", "rvd", "assd", "msd", "rmsd",
                                                       "precision", "recall"}
    assert saved["paper"]["rows"]["liver/LiTS"] == [0.9732, 0.9511, 0.907]
    assert saved["per_case"][0]["structure"] == "liver" and saved["per_case"][0]["case"] == "a"


def test_one_seed_has_no_sd_and_undefined_values_are_none():
    assert over_seeds([0.5]) == {"mean": 0.5, "sd": None, "n_seeds": 1}
    assert over_seeds([None, None]) == {"mean": None, "sd": None, "n_seeds": 0}
    values = seed_values([_row(0, "a", "lesion", "axial", 0.0, 0, 0, 3, assd=None, tp=0,
                               n_pred=0, n_ref=2)])
    assert values["assd"] is None and values["precision"] is None and values["recall"] == 0.0
    assert values["dice_global"] == 0.0


def test_ranked_cases_and_the_markdown_table_with_the_paper():
    rows = [_row(s, c, "liver", FUSED, d, 1, 1, 1) for s, c, d in
            ((0, "a", 0.9), (0, "b", 0.6), (0, "c", 0.8), (1, "a", 0.7), (1, "b", 0.6),
             (1, "c", 0.95))]
    rows += [_row(0, "a", "lesion", FUSED, 1.0, 0, 0, 0, tp=0, n_pred=0, n_ref=0),
             _row(0, "b", "lesion", FUSED, 0.3, 1, 3, 3, tp=0, n_pred=1, n_ref=1),
             _row(0, "c", "lesion", FUSED, 0.5, 2, 4, 4, tp=1, n_pred=1, n_ref=1)]
    assert ranked_cases(rows) == ["c", "a", "b"]
    assert ranked_cases(rows, "lesion") == ["c", "b"]  # only patients with a lesion
    text = table6_markdown(table6(rows), paper=paper_tables.TABLE_6, paper_dataset="LiTS")
    lines = text.splitlines()
    assert lines[0] == "| structure | planes | accuracy | Dice | mIoU |"
    assert lines[2].startswith("| liver | fused |") and "(0.9511)" in lines[2]
    assert "| 0.758 ± 0.012 (0.9511) |" in lines[2]  # Dice per seed: 0.767 and 0.750
    assert "(0.9313)" in lines[3]


def test_score_case_matches_the_metrics_on_a_phantom():
    from liverseg.datasets import synthetic
    from liverseg.metrics import dice, evaluate_case, lesion_detection, miou

    case = synthetic.make_case((7, 1), shape=(16, 32, 32), lesions=2)
    reference = case.label
    label = reference.copy()
    label[:, :, :12][label[:, :, :12] == 2] = 1  # miss the lesions on the left
    scores = score_case(label, reference, case.image.spacing)
    lits = evaluate_case(label, reference, case.image.spacing)
    assert scores["liver"]["dice"] == pytest.approx(1.0)
    lesion = scores["lesion"]
    assert lesion["dice"] == pytest.approx(dice(label == 2, reference == 2))
    assert lesion["miou"] == pytest.approx(miou((label == 2).astype(np.uint8),
                                               (reference == 2).astype(np.uint8), (0, 1)))
    assert lesion["msd"] == lits["lesion"]["mssd"] and lesion["assd"] == lits["lesion"]["assd"]
    detection = lesion_detection(label == 2, reference == 2)
    assert (lesion["tp"], lesion["n_ref"]) == (detection["tp"], detection["n_ref"])
    rows = case_rows(3, case.case_id, {"axial": label, FUSED: reference}, reference,
                     case.image.spacing)
    assert [(r["plane"], r["structure"]) for r in rows] == [
        ("axial", "liver"), ("axial", "lesion"), (FUSED, "liver"), (FUSED, "lesion")]
    assert rows[3]["dice"] == 1.0 and rows[3]["seed"] == 3
    json.dumps(rows)  # plain JSON


def test_lesion_changes_change_the_lesion_section_only():
    settings = config.profile("smoke")
    changed = with_lesion_changes(settings, {"lesion.epochs": 4})
    assert settings.stage("lesion").train.epochs != 4
    assert changed.stage("lesion").train.epochs == 4
    assert changed.train.epochs == settings.train.epochs
    for bad in ({"prior.margin": 3}, {"inference.threshold": 0.4}, {"train.epochs": 3}):
        with pytest.raises(ValueError, match="lesion section"):
            with_lesion_changes(settings, bad)


class _FakeTraining:
    """Stands in for ``train_networks``: saves untrained networks (a seed per plane and
    structure, so each differs) instead of training, and counts the calls."""

    def __init__(self, folder):
        self.folder, self.calls = folder, []

    def __call__(self, data, settings, store, progress=True, tag=""):
        from types import SimpleNamespace

        from liverseg import models

        self.calls.append((data.plane, data.structure))
        keras.utils.set_random_seed(len(self.calls))
        paths = {}
        for network, build in (("localizer", models.build_localization_net),
                               ("tuner", models.build_tuning_net)):
            paths[network] = self.folder / f"{data.plane}-{data.structure}-{network}.keras"
            build(settings).save(paths[network])
        return SimpleNamespace(front=SimpleNamespace(localizer=SimpleNamespace(
            path=paths["localizer"])), tuner=SimpleNamespace(path=paths["tuner"]),
            model_path=paths["tuner"])


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    from liverseg.datasets import synthetic

    store = tmp_path_factory.mktemp("store")
    size = 32
    settings = config.profile("smoke").replace(**{
        "image_size": size, "localization.image_size": size, "tuning.image_size": size,
        "planes": ("axial", "coronal"), "self_training.iterations": 0,
        "experiments.test_phantoms": 1, "experiments.system_planes": None, "n_cases": 3})
    cases = list(synthetic.iter_cases(3, shape=(size // 2, size, size)))
    training = _FakeTraining(tmp_path_factory.mktemp("networks"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("liverseg.train.system.load_cases", lambda *args, **kwargs: cases)
        for module in ("volumes", "system_results"):
            patch.setattr(f"liverseg.experiments.{module}.train_networks", training)
        folder, data = system_model_folder(store, settings, progress=False)
        first_calls = list(training.calls)
        again, _ = system_model_folder(store, settings, progress=False)
        calls = list(training.calls)
        other, _ = system_model_folder(store, settings, progress=False,
                                       lesion_changes={"lesion.epochs": 2})
    return {"store": store, "settings": settings, "folder": folder, "data": data,
            "first_calls": first_calls, "calls": calls, "again": again, "other": other,
            "other_calls": training.calls[len(calls):]}


def test_the_system_folder_holds_both_cascades_of_every_plane_and_reads_back(system):
    from liverseg.model_folder import read_model_folder

    folder, data = system["folder"], system["data"]
    model = read_model_folder(folder)
    assert model.planes == ("axial", "coronal") and model.structures == ("liver", "lesion")
    assert len(list(folder.glob("*.keras"))) == 2 * 2 * 2
    assert sorted(system["first_calls"]) == [("axial", "lesion"), ("axial", "liver"),
                                             ("coronal", "lesion"), ("coronal", "liver")]
    assert system["calls"] == system["first_calls"]  # the second call trained nothing
    assert system["again"] == folder
    # other lesion settings: a folder of its own, the liver networks shared, the lesion retrained
    assert system["other"] != folder
    assert sorted(system["other_calls"]) == [("axial", "lesion"), ("coronal", "lesion")]
    other = read_model_folder(system["other"])
    assert other.info["liver_model"] == model.info["liver_model"]
    assert other.info["lesion_settings"]["train"]["epochs"] == 2
    assert other.settings.train.epochs == system["settings"].train.epochs  # the liver's, not 2
    assert model.info["split"]["test"] == data.split.test
    assert config.Profile.from_dict(model.info["lesion_settings"]) == system["settings"].stage("lesion")
    assert model.settings == system["settings"]  # the tree inference reads, lesion section in it
    liver = folder.parent / model.info["liver_model"]
    assert read_model_folder(liver).structures == ("liver",)
    # the lesion networks learned from slices masked to the reference liver, label 2 foreground
    lesion_slices = list((system["store"] / "slices").glob("*-lesion"))
    assert sorted(p.name for p in lesion_slices) == ["axial-lesion", "coronal-lesion"]


@pytest.mark.slow
def test_segment_systems_is_the_segmenter_with_those_planes(system, tmp_path):
    import matplotlib

    from liverseg.inference.volume import Segmenter
    from liverseg.lesion_view import region_box
    from liverseg.preprocess import liver_region

    folder, case = system["folder"], system["data"].test_cases[0]
    segmenter = Segmenter(folder, progress=False)
    labels = segment_systems(segmenter, case, tmp_path)
    assert list(labels) == ["axial", "coronal", FUSED]
    assert (labels[FUSED] >= 1).any()
    for name, label in labels.items():
        segmenter.planes = segmenter.folder.planes if name == FUSED else (name,)
        np.testing.assert_array_equal(label, segmenter.segment(case.image).label, err_msg=name)
    assert (tmp_path / f"{case.case_id}.npz").is_file()
    # read back from the cache: a segmenter that cannot predict is not asked to
    again = segment_systems(_NoPrediction(segmenter), case, tmp_path)
    for name in labels:
        np.testing.assert_array_equal(again[name], labels[name])

    segmenter.planes = segmenter.folder.planes
    panels = example_panels(segmenter, case, labels[FUSED], "lesion")
    assert panels["ct"].shape == panels["roi"].shape == case.image.array.shape[1:]
    assert panels["roi"].dtype == bool and panels["index"] == int(
        np.argmax((case.label == 2).sum(axis=(1, 2))))
    # the lesion localizer saw the predicted liver's box: its ROI lies inside that box
    box = region_box(liver_region(labels[FUSED] >= 1, segmenter.settings.inference.liver_margin))
    outside = np.ones(panels["roi"].shape, bool)
    outside[box[1:]] = False
    assert not panels["roi"][outside].any()
    matplotlib.use("Agg")
    figure = plot_examples([panels, example_panels(segmenter, case, labels[FUSED])],
                           ["lesion", "liver"])
    assert len(figure.axes) == 8 and figure.get_size_inches()[0] <= 10


class _NoPrediction:
    def __init__(self, segmenter):
        self.planes, self.folder, self.settings = segmenter.planes, segmenter.folder, segmenter.settings
        self.fusion = segmenter.fusion

    def predict_plane(self, *args, **kwargs):
        raise AssertionError("predicted although the labels are cached")


def test_system_planes_default_to_the_profiles_and_smoke_keeps_one():
    from liverseg.experiments.system_results import system_planes

    assert system_planes(config.profile("demo")) == ("axial", "coronal", "sagittal")
    assert system_planes(config.profile("smoke")) == ("axial",)
    with pytest.raises(ValueError, match="system_planes"):
        config.profile("demo").replace(**{"experiments.system_planes": ("oblique",)})
