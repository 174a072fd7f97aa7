"""The experiment runner: keys that share work, multi-seed summaries, and a tiny comparison."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from liverseg import config
from liverseg.errors import InvalidDataError
from liverseg.experiments import (Comparison, Variant, compare, default_sentence, front_key,
                                  mean_sd, prepare, reading_outcome, reading_verdict, rounds_key,
                                  spread, summary_table, tuner_key)
from liverseg.experiments import paper_tables

from .conftest import TINY_SIZE, tiny_profile


def test_keys_share_the_localizer_across_tuner_only_changes():
    base = config.profile("smoke")
    loss = base.replace(**{"train.loss_scheme": "final_only"})
    patches = base.replace(**{"tuning.patch_levels": (2,)})
    rounds = base.replace(**{"self_training.iterations": 3})
    assert front_key(loss) == front_key(patches) == front_key(rounds) == front_key(base)
    assert front_key(base.replace(**{"localization.base_filters": 4})) != front_key(base)
    assert front_key(base.replace(**{"train.seed": 1})) != front_key(base)
    assert front_key(base.replace(**{"prior.margin": 3})) != front_key(base)
    assert len({tuner_key(s) for s in (base, loss, patches)}) == 3
    assert tuner_key(rounds) == tuner_key(base)  # Algorithm 1 starts from the same tuner
    assert rounds_key(rounds) != rounds_key(base)
    assert tuner_key(base.replace(**{"experiments.seeds": (5,)})) == tuner_key(base)
    other_runs = base.replace(**{"experiments.seeds": (5,), "experiments.system_planes": None})
    assert rounds_key(other_runs) == rounds_key(base)  # which runs to make, not what one does


def test_a_network_trained_with_the_profile_itself_is_found_under_its_stage(tmp_path):
    # the networks chapter trains the liver cascade with the profile; the store's runs with
    # its liver stage (no lesion section): one folder, so the chapters share the networks
    from types import SimpleNamespace

    from liverseg.experiments import front_folder, tuner_folder

    smoke = config.profile("smoke")
    assert smoke.lesion != smoke.stage("liver").lesion  # smoke's lesion section sets epochs
    for structure in ("liver", "lesion"):
        data = SimpleNamespace(plane="axial", structure=structure, fingerprint="f")
        for folder in (front_folder, tuner_folder):
            assert folder(tmp_path, smoke, data) == folder(tmp_path, smoke.stage(structure), data)
    liver = SimpleNamespace(plane="axial", structure="liver", fingerprint="f")
    lesion = SimpleNamespace(plane="axial", structure="lesion", fingerprint="f")
    longer = smoke.replace(**{"lesion.epochs": 9})
    assert tuner_folder(tmp_path, longer, liver) == tuner_folder(tmp_path, smoke, liver)
    assert tuner_folder(tmp_path, longer, lesion) != tuner_folder(tmp_path, smoke, lesion)


def test_variants_may_not_change_what_every_row_shares():
    settings = config.profile("smoke")
    for changes in ({"n_cases": 4}, {"preprocess.median_size": 5}, {"split.seed": 3}):
        with pytest.raises(ValueError, match="must share"):
            compare("x", [Variant("a", changes)], settings, "unused")
    with pytest.raises(ValueError, match="distinct names"):
        compare("x", [Variant("a"), Variant("a")], settings, "unused")
    with pytest.raises(ValueError, match="no setting"):
        compare("x", [Variant("a", {"train.nonsense": 1})], settings, "unused")
    with pytest.raises(ValueError, match="folder name"):
        Variant("a/b")


def _comparison(values: dict[str, list[float]], collapsed=()) -> Comparison:
    runs = []
    for name, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            mean = {"accuracy": 0.9, "dice": value, "iou": value / (2 - value), "miou": 0.8}
            runs.append({"variant": name, "seed": seed, "test_mean": mean,
                         "val": {"dice": value}, "collapsed": (name, seed) in collapsed})
    return Comparison("t", "axial", "liver", list(range(3)), {n: {} for n in values}, runs,
                      {}, {}, 0.0)


def test_summary_is_mean_and_sample_sd_over_seeds_and_differences_are_paired():
    comparison = _comparison({"with": [0.80, 0.82, 0.81], "without": [0.70, 0.71, 0.69],
                              "noisy": [0.60, 0.90, 0.75]}, collapsed={("noisy", 0)})
    summary = comparison.summary()
    assert summary["with"]["dice"]["mean"] == pytest.approx(0.81)
    assert summary["with"]["dice"]["sd"] == pytest.approx(np.std([0.80, 0.82, 0.81], ddof=1))
    assert summary["noisy"]["collapse_rate"] == pytest.approx(1 / 3)
    clear = comparison.difference("with", "without")
    assert clear["mean"] == pytest.approx(0.11) and clear["within_noise"] is False
    # a mean difference of 0.06 whose per-seed differences are -0.2, +0.19, +0.06
    assert comparison.difference("noisy", "with")["within_noise"] is True
    one_seed = _comparison({"a": [0.5], "b": [0.4]})
    assert one_seed.difference("a", "b")["within_noise"] is None
    assert spread([])["n"] == 0 and spread([0.3]) == {"mean": 0.3, "sd": 0.0, "n": 1}


def test_reading_verdict_fails_the_literal_reading_only_on_a_collapse_or_a_clear_loss():
    held = _comparison({"paper": [0.80, 0.70, 0.85], "other": [0.85, 0.80, 0.80]})
    assert reading_verdict(held, "paper", "other").startswith("was not refuted in this run")
    behind = _comparison({"paper": [0.70, 0.71, 0.69], "other": [0.80, 0.82, 0.81]})
    assert reading_verdict(behind, "paper", "other") == (
        "failed in this run: the other reading is ahead outside the noise")
    ahead = _comparison({"paper": [0.80, 0.82, 0.81], "other": [0.70, 0.71, 0.69]})
    assert reading_outcome(ahead, "paper", "other")[0] == "not refuted"
    collapsed = _comparison({"paper": [0.0, 0.80, 0.85], "other": [0.7, 0.7, 0.7]},
                            collapsed={("paper", 0)})
    assert reading_verdict(collapsed, "paper", "other") == (
        "failed in this run: it collapsed in 1 of 3 seeds")
    one_seed = _comparison({"paper": [0.5], "other": [0.9]})
    assert reading_verdict(one_seed, "paper", "other").startswith("is not tested")


@pytest.mark.parametrize("outcome, default, words", [
    ("not refuted", "paper", "did not refute"),
    ("failed", "paper", "shows fail"),
    ("not tested", "paper", "neither supports nor refutes"),
    ("failed", "paper_reversed", "as this run's failure asks"),
    ("not refuted", "paper_reversed", "did not show the literal one fail"),
])
def test_the_default_sentence_follows_the_runs_outcome(outcome, default, words):
    """The sentence beside a computed verdict is generated from it, never fixed text."""
    sentence = default_sentence(outcome, "train.loss_scheme", default, "paper")
    assert words in sentence and f"train.loss_scheme = {default!r}" in sentence
    others = {default_sentence(o, "train.loss_scheme", default, "paper")
              for o in ("failed", "not refuted", "not tested")}
    assert len(others) == (3 if default == "paper" else 2)


def test_summary_table_sets_the_paper_beside_ours():
    comparison = _comparison({"paper": [0.80, 0.82, 0.81], "final_only": [0.70, 0.71, 0.69]})
    table = summary_table(comparison, paper=paper_tables.TABLE_4,
                          paper_columns={"paper": "With", "final_only": "Without"},
                          labels={"paper": "multi-level"})
    lines = table.splitlines()
    assert lines[0].startswith("| variant | accuracy (ours) | accuracy (paper) | Dice (ours)")
    assert "| multi-level | 0.900 ± 0.000 | 0.9732 | 0.810 ± 0.010 | 0.9511 |" in lines[2]
    assert "0.9430" in lines[3] and lines[3].endswith("| 0 / 3 | 3 |")
    assert mean_sd({"mean": 0.5, "sd": 0.0, "n": 1}) == "0.500"


def test_prepare_needs_a_test_patient_and_adds_held_out_phantoms(tmp_path):
    from liverseg.datasets import synthetic

    settings = config.profile("smoke").replace(**{"experiments.test_phantoms": 0,
                                                 "image_size": 32, "localization.image_size": 32,
                                                 "tuning.image_size": 32})
    cases = list(synthetic.iter_cases(3, shape=(8, 32, 32)))
    with pytest.raises(InvalidDataError, match="no validation or no test patient"):
        prepare(settings, tmp_path, cases=cases, progress=False)
    with pytest.raises(ValueError, match="synthetic data only"):
        prepare(settings.replace(**{"dataset": "lits", "experiments.test_phantoms": 1}),
                tmp_path, cases=cases, progress=False)
    data = prepare(settings.replace(**{"experiments.test_phantoms": 2}), tmp_path, cases=cases,
                   progress=False)
    training_ids = {case.case_id for case in cases}
    assert data.split.test == ["phantom-12345-0", "phantom-12345-1"]
    assert not training_ids & set(data.split.test)
    assert set(data.test.case_ids) == set(data.split.test)
    assert data.train.images.shape[1:] == (32, 32)


def test_phantoms_scanned_otherwise_never_reuse_the_classic_slices(tmp_path):
    from liverseg.config import PhantomConfig
    from liverseg.datasets import synthetic

    settings = config.profile("smoke").replace(**{"experiments.test_phantoms": 1,
                                                 "image_size": 32, "localization.image_size": 32,
                                                 "tuning.image_size": 32, "n_cases": 4})
    mixture = settings.replace(phantoms=PhantomConfig().to_dict())
    cases = {name: list(synthetic.iter_cases(4, shape=(8, 32, 32), config=s.phantoms))
             for name, s in (("classic", settings), ("mixture", mixture))}
    classic = prepare(settings, tmp_path, cases=cases["classic"], progress=False)
    other = prepare(mixture, tmp_path, cases=cases["mixture"], progress=False)
    assert classic.split == other.split  # the same patients…
    assert classic.fingerprint != other.fingerprint  # …as other pixels, in their own folder
    assert not np.array_equal(np.asarray(classic.train.images), np.asarray(other.train.images))
    assert len(list((tmp_path / "slices").glob("phantoms-*/axial-liver"))) == 1


@pytest.mark.slow
def test_compare_trains_each_network_once_and_reads_it_back(tmp_path, monkeypatch):
    from liverseg.datasets import synthetic

    settings = tiny_profile(**{
        "train.epochs": 2, "train.early_stopping_patience": 2, "self_training.iterations": 0,
        "experiments.test_phantoms": 1})
    cases = list(synthetic.iter_cases(4, shape=(16, TINY_SIZE, TINY_SIZE)))
    data = prepare(settings, tmp_path, cases=cases, progress=False)
    variants = [Variant("multi-level", {"train.loss_scheme": "paper"}),
                Variant("final-only", {"train.loss_scheme": "final_only"})]
    first = compare("loss", variants, settings, tmp_path, data=data, progress=False)

    seed_dir = tmp_path / "axial-liver" / f"data-{data.fingerprint}" / "seed-0"
    assert len(list(seed_dir.glob("front-*"))) == 1  # one localizer for both variants
    assert len(list(seed_dir.glob("tuner-*"))) == 2
    assert [run["variant"] for run in first.runs] == ["multi-level", "final-only"]
    for run in first.runs:
        assert [c["case"] for c in run["test_cases"]] == data.split.test
        assert run["test_mean"]["dice"] == pytest.approx(
            np.mean([c["dice"] for c in run["test_cases"]]))
        assert all(0 <= c["dice"] <= 1 for c in run["test_cases"])
        assert run["settings"]["train"]["loss_scheme"] in ("paper", "final_only")
    assert first.runs[0]["test_mean"] != first.runs[1]["test_mean"]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished network was trained again")

    monkeypatch.setattr(keras.Model, "fit", no_training)
    # the profile's own settings are the "multi-level" variant: read back, not trained
    again = compare("loss", variants + [Variant("profile")], settings, tmp_path, data=data,
                    progress=False)
    assert again.runs[:2] == first.runs
    assert again.runs[2]["test_mean"] == first.runs[0]["test_mean"]
    path = again.save(tmp_path / "results" / "loss.json", paper=paper_tables.TABLE_4)
    saved = json.loads(path.read_text())
    assert saved["summary"]["final-only"]["dice"]["n"] == 1
    assert saved["settings"]["name"] == "smoke" and saved["paper"]["columns"] == ["Without", "With"]


class _CountingSegmenter:
    """Stands in for inference.volume.Segmenter: a fixed probability per plane."""

    def __init__(self, planes):
        self.planes, self.calls = planes, []
        self.settings = config.profile("smoke")

    def predict_plane(self, image, hu, plane, structure):
        self.calls.append(plane)
        value = {"axial": 0.9, "coronal": 0.4, "sagittal": 0.3}[plane]
        return np.full(image.shape, value, np.float16)


def test_plane_probabilities_are_predicted_once_and_cached(tmp_path):
    from liverseg.datasets import synthetic
    from liverseg.experiments import plane_probabilities

    case = synthetic.make_case((3, 0), shape=(8, 16, 16))
    segmenter = _CountingSegmenter(("axial", "coronal"))
    first = plane_probabilities(segmenter, case, tmp_path)
    again = plane_probabilities(segmenter, case, tmp_path)
    assert segmenter.calls == ["axial", "coronal"]
    assert set(again) == {"axial", "coronal"} and again["axial"].shape == case.image.array.shape
    np.testing.assert_array_equal(first["coronal"], again["coronal"])


def test_score_masks_scores_every_method_per_case_against_the_liver():
    from liverseg.datasets import synthetic
    from liverseg.experiments.volumes import score_masks
    from liverseg.inference.fusion import fuse
    from liverseg.train.scores import overlap_scores

    cases = [synthetic.make_case((4, i), shape=(8, 24, 24)) for i in range(2)]
    rng = np.random.default_rng(0)
    planes = {c.case_id: {p: rng.random(c.image.array.shape).astype(np.float32)
                          for p in ("axial", "coronal", "sagittal")} for c in cases}
    truth = {c.case_id: (c.label >= 1).astype(np.float32) for c in cases}
    masks = {"axial": lambda p: p["axial"] > 0.5,
             "soft": lambda p: fuse([p[k] for k in ("axial", "coronal", "sagittal")], "soft"),
             "reference": lambda p: p["truth"] > 0.5}
    runs = score_masks(masks, cases, lambda case: {**planes[case.case_id],
                                                   "truth": truth[case.case_id]}, seed=3)
    assert [run["variant"] for run in runs] == ["axial", "soft", "reference"]
    assert all(run["seed"] == 3 and len(run["test_cases"]) == 2 for run in runs)
    expected = overlap_scores(planes[cases[1].case_id]["axial"] > 0.5, cases[1].label >= 1)
    assert runs[0]["test_cases"][1]["dice"] == pytest.approx(expected["dice"])
    assert runs[0]["test_cases"][1]["predicted_voxels"] == int(
        (planes[cases[1].case_id]["axial"] > 0.5).sum())
    assert runs[2]["test_mean"]["dice"] == pytest.approx(1.0)  # the reference itself
    assert not runs[2]["collapsed"]


def test_a_run_collapses_below_the_setting_and_a_stored_run_is_read_with_todays(tmp_path):
    from liverseg.train import store

    cases = [{"case": "a", "dice": 0.2, "reference_voxels": 10},
             {"case": "b", "dice": 0.0, "reference_voxels": 0},  # no structure: not counted
             {"case": "c", "dice": 0.1, "reference_voxels": 5}]
    assert not store.collapsed(cases) and store.collapsed(cases, 0.3)
    base = config.profile("smoke")
    strict = base.replace(**{"experiments.collapse_dice": 0.3})
    assert rounds_key(strict) == rounds_key(base)  # how runs are read, not what one learns
    run = {"test_cases": cases, "collapsed": False, "settings": base.to_dict()}
    (tmp_path / "scores.json").write_text(json.dumps(run))
    assert store._read_run(tmp_path, base)["collapsed"] is False
    assert store._read_run(tmp_path, strict)["collapsed"] is True


def test_rounds_table_is_table_5_with_the_paper_in_brackets():
    from liverseg.experiments import rounds_table

    def row(n, dice, kept=False):
        scores = {"accuracy": 0.9, "dice": dice, "iou": 0.5, "miou": 0.7}
        return {"iteration": n, "patches_added": 10 * n, "training_pairs": 5 + 10 * n,
                "pseudo_label_dice": None if n == 0 else 0.8, "val": scores, "test": scores,
                "kept": kept}

    runs = [{"variant": "prediction", "seed": s, "self_training": [row(0, 0.6), row(1, d, True)]}
            for s, d in ((0, 0.7), (1, 0.8))]
    comparison = Comparison("t", "axial", "liver", [0, 1], {"prediction": {}}, runs, {}, {}, 0.0)
    lines = rounds_table(comparison, "prediction", paper=paper_tables.TABLE_5).splitlines()
    assert len(lines) == 4 and lines[0].startswith("| N | accuracy val | accuracy test | Dice val")
    assert "| 0.600 ± 0.000 (0.8402) | 0.600 ± 0.000 (0.8510) |" in lines[2]
    assert "| 0.750 ± 0.071 (0.8682) |" in lines[3]
    assert lines[3].endswith("| 10 ± 0 | 0.800 ± 0.000 | 2 / 2 |")


def test_the_data_fingerprint_changes_with_the_slices_and_the_split():
    from liverseg.datasets.split import Split
    from liverseg.train.store import data_fingerprint
    from liverseg.train.slices import SliceSet

    rng = np.random.default_rng(0)

    def subset(n):
        return SliceSet(rng.random((n, 8, 8)).astype(np.float32), np.zeros((n, 8, 8), np.float32),
                        (rng.random((n, 8, 8)) > 0.5).astype(np.uint8), np.array(["a"] * n))

    split = Split(["a"], ["b"], ["c"])
    subsets = [subset(4), subset(2), subset(2)]
    key = data_fingerprint(split, subsets)
    assert data_fingerprint(split, subsets) == key
    assert data_fingerprint(Split(["a"], ["c"], ["b"]), subsets) != key
    subsets[1].images[0, 0, 0] += 1.0  # one value of the validation images (a sampled one)
    assert data_fingerprint(split, subsets) != key
