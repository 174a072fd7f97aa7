"""The lesion chapter's scores and table (``liverseg.experiments.lesions``) on made-up runs."""

from types import SimpleNamespace

import numpy as np
import pytest

from liverseg import config
from liverseg.experiments.lesions import LesionLevers, levers_table, score_lesions
from liverseg.train.slices import SliceSet


class _Fixed:
    """A "tuner" whose prediction is a given stack (``predict_tuned`` calls ``predict``)."""

    def __init__(self, probability):
        self.probability = probability

    def predict(self, inputs, batch_size=None, verbose=0):
        return self.probability[..., None]


def test_lesions_are_scored_per_case_pooled_and_by_detection():
    labels = np.zeros((6, 16, 16), np.uint8)
    labels[:, 2:14, 2:14] = 1
    labels[1:3, 3:6, 3:6] = 2  # patient a: one lesion, found exactly
    labels[4, 8:12, 8:12] = 2  # patient b: one lesion, missed; a false one found elsewhere
    found = (labels == 2).astype(np.float32)
    found[4] = 0
    found[5, 3:5, 3:5] = 1
    case_ids = np.array(["a", "a", "a", "b", "b", "b"], dtype=object)
    test = SliceSet(np.zeros(labels.shape, np.float32), np.zeros(labels.shape, np.float32),
                    labels, case_ids)
    stage = config.profile("smoke").stage("lesion")
    trained = SimpleNamespace(model=_Fixed(found), run={"settings": stage.to_dict()},
                              front=SimpleNamespace(test_priors=np.zeros(labels.shape, np.float32)))
    scores = score_lesions(trained, SimpleNamespace(test=test))
    a, b = scores["per_case"]
    assert (a["dice"], a["tp"], a["n_ref"]) == (1.0, 1, 1)
    assert (b["dice"], b["tp"], b["n_pred"], b["n_ref"]) == (0.0, 0, 1, 1)
    s = scores["seed_scores"]
    assert s["dice"] == 0.5 and s["precision"] == 0.5 and s["recall"] == 0.5
    assert s["dice_global"] == pytest.approx(2 * 18 / (18 + 4 + 18 + 16))
    assert [(r["case"], r["voxels"], r["found"]) for r in scores["lesions"]] == [
        ("a", 18, True), ("b", 16, False)]
    assert all(r["z"] == 0 for r in scores["lesions"])  # a flat image: nothing to see


def test_the_visibility_table_counts_found_lesions_per_band_over_seeds():
    from liverseg.experiments.lesions import visibility_table

    levers = _levers({"paper": [0.0, 0.0], "closer_view": [0.5, 0.5]})
    seen = {"paper": (False, False, False), "closer_view": (False, True, True)}
    for run in levers.runs:  # three lesions a seed: invisible, visible, too large to place
        run["lesions"] = [{"z": z, "voxels": 1, "found": f}
                          for z, f in zip((0.5, 6.0, None), seen[run["variant"]])]
    table = visibility_table(levers).splitlines()
    assert table[0] == "| rung | z < 2 | z ≥ 5 | too large to place |"  # empty bands left out
    assert table[2:] == ["| paper | 0 / 2 | 0 / 2 | 0 / 2 |", "| closer_view | 0 / 2 | 2 / 2 | 2 / 2 |"]
    for run in levers.runs:
        run["lesions"] = []
    assert "no lesion" in visibility_table(levers)


def _levers(values):
    runs = [{"variant": name, "seed": seed, "per_case": [],
             "seed_scores": {"dice": v, "dice_global": v, "precision": v, "recall": None}}
            for name, by_seed in values.items() for seed, v in enumerate(by_seed)]
    return LesionLevers("axial", [0, 1, 2], {name: {} for name in values}, runs, {}, {}, 1.0)


def test_the_table_gives_each_rung_and_its_step_from_the_one_above():
    levers = _levers({"paper": [0.0, 0.1, 0.0], "weighted_loss": [0.6, 0.7, 0.65]})
    step = levers.difference("weighted_loss", "paper")
    assert step["mean"] == pytest.approx(0.65 - 1 / 30) and step["within_noise"] is False
    table = levers_table(levers)
    assert "| paper | 0.033 ± 0.058 |" in table and "| +0.617 ± 0.029, outside the noise |" in table
    assert table.splitlines()[2].count("–") == 1  # recall undefined: no lesion predicted


def test_the_ladder_table_names_what_each_rung_sets():
    from liverseg.experiments.lesions import LEVERS, ladder_table

    table = ladder_table().splitlines()
    assert len(table) == 2 + len(LEVERS) and "positive_weight" in table[0]
    assert table[2].startswith("| paper | bbox | True |") and "| 10.0 |" in table[3]


def test_each_rung_keeps_the_one_below_and_data_are_cut_once_per_data_setting(monkeypatch):
    from liverseg.experiments import lesions

    for below, rung in zip(lesions.LEVERS, lesions.LEVERS[1:]):
        kept = {k: v for k, v in below.changes.items() if k not in rung.changes}
        assert not kept, f"{rung.name} drops {kept}"
        assert rung.changes != below.changes, f"{rung.name} adds no lever"
    prepared, trained = [], []
    monkeypatch.setattr(lesions, "prepare", lambda settings, *a, **k: prepared.append(
        (settings.lesion.synthesis, settings.stage("lesion").image_size)) or SimpleNamespace(
        split=SimpleNamespace(_asdict=lambda: {"test": ["t"]})))
    monkeypatch.setattr(lesions, "train_networks", lambda data, settings, *a: trained.append(
        settings.stage("lesion")) or object())
    monkeypatch.setattr(lesions, "score_lesions", lambda *a: {"per_case": [], "seed_scores": {}})
    levers = lesions.lesion_levers(config.profile("smoke"), "unused", seeds=[0, 1],
                                   levers=lesions.LEVERS)
    # paper … lesion_rich share the data; synthetic copies, validation copies and the closer
    # view's slices are new data, and so are the fresh draws' 20 copies
    assert [s.validation for s, _ in prepared] == [False, False, True, True, True]
    assert [s.share for s, _ in prepared] == [0.0, 0.9, 0.9, 0.9, 0.9]
    assert [size for _, size in prepared] == [64, 64, 64, 128, 128]
    assert [(s.copies, s.per_epoch) for s, _ in prepared][-2:] == [(1, False), (20, True)]
    assert len(trained) == 2 * len(lesions.LEVERS) == len(levers.runs)
    closer = trained[-3]
    assert closer.image_size == closer.tuning.image_size == 128
    assert closer.train.prior_folds == 1 and closer.localization.base_filters == 8
    assert trained[-1].lesion.synthesis.per_epoch and not closer.lesion.synthesis.per_epoch


def test_demo_trains_the_closer_view_rung_and_the_paper_profile_does_not():
    from liverseg.experiments.lesions import LEVERS

    demo, paper = config.profile("demo"), config.profile("paper")
    rungs = {lever.name: lever.changes for lever in LEVERS}
    # the best rung measured on demo; the top rung's per-epoch draws scored lower on each seed
    assert demo.replace(**rungs["closer_view"]) == demo  # demo's lesion section sets every lever
    assert demo.replace(**rungs["fresh_draws"]) != demo
    assert paper.replace(**rungs["closer_view"]) != paper
    # and the ladder's first rung is the paper's lesion stage on demo too: the liver's input,
    # widths and out-of-fold priors, whatever demo's own lesion section says
    first = demo.replace(**LEVERS[0].changes).stage("lesion")
    liver = demo.stage("liver")
    assert (first.image_size, first.tuning.base_filters, first.train.prior_folds) == (
        liver.image_size, liver.tuning.base_filters, liver.train.prior_folds)
    assert not first.lesion.synthesis.share and not first.lesion.synthesis.validation
    stage = demo.stage("lesion")
    assert (stage.image_size, stage.tuning.base_filters, stage.train.prior_folds) == (128, 8, 1)
    assert demo.stage("liver").image_size == 64  # the liver networks keep their input
    # demo's phantoms: the default mixture scanned at a 128 matrix, which the lesion view
    # resolves (the lesions of a 64-pixel phantom hold a median of 2 voxels)
    assert demo.phantoms.matrix == 128 and config.PhantomConfig().matrix is None
    assert demo.phantom_shape == (32, 128, 128)


def test_a_profile_trains_the_rungs_it_names_and_steps_join_only_neighbours(monkeypatch):
    from liverseg.experiments import lesions

    assert tuple(lever.name for lever in lesions.LEVERS) == config.LESION_RUNGS
    smoke, demo = config.profile("smoke"), config.profile("demo")
    assert [r.name for r in lesions.rungs(smoke)] == ["paper", "closer_view"]
    assert lesions.rungs(demo) == lesions.LEVERS
    reordered = smoke.replace(**{"experiments.lesion_rungs": ("closer_view", "paper",
                                                              "in_sample_priors")})
    assert [r.name for r in lesions.rungs(reordered)] == ["paper", "in_sample_priors",
                                                           "closer_view"]  # the ladder's order
    with pytest.raises(ValueError, match="lesion_rungs"):
        smoke.replace(**{"experiments.lesion_rungs": ("paper", "no_such_rung")})

    trained = []
    monkeypatch.setattr(lesions, "prepare", lambda *a, **k: SimpleNamespace(
        split=SimpleNamespace(_asdict=lambda: {"test": ["t"]})))
    monkeypatch.setattr(lesions, "train_networks",
                        lambda data, settings, *a: trained.append(settings) or object())
    monkeypatch.setattr(lesions, "score_lesions", lambda *a: {"per_case": [], "seed_scores": {}})
    levers = lesions.lesion_levers(reordered, "unused", seeds=[0])
    assert list(levers.variants) == ["paper", "in_sample_priors", "closer_view"]
    assert len(trained) == 3
    assert trained[-1].stage("lesion").image_size == 128  # each rung's own settings

    scored = _levers({"paper": [0.0, 0.1, 0.0], "in_sample_priors": [0.3, 0.4, 0.3],
                      "closer_view": [0.6, 0.6, 0.7]})
    # in_sample_priors' neighbour below (synthetic) was not run: no step; closer_view's was
    assert scored.below("in_sample_priors") is None and scored.below("paper") is None
    assert list(scored.steps()) == ["closer_view"]
    assert scored.steps()["closer_view"]["mean"] == pytest.approx(0.3)
    rows = levers_table(scored).splitlines()[2:]
    assert rows[1].endswith("| – |  |") and "+0.300" in rows[2]
    text = lesions.glued(scored)
    assert set(text) == ({f"global_{r}" for r in config.LESION_RUNGS}
                         | {f"step_{r}" for r in config.LESION_RUNGS[1:]})
    assert text["global_synthetic"] == text["step_in_sample_priors"] == lesions.NOT_RUN
    assert text["global_paper"] == "0.033 ± 0.058" and text["step_closer_view"] != lesions.NOT_RUN
