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
