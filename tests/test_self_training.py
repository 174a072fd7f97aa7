"""Algorithm 1: two rounds of patch-wise self-training, their history, and the added pairs."""

import json

import numpy as np
import pytest

from liverseg.config import LocalizationConfig, TuningConfig, profile
from liverseg.patches import area_ratio

SIZE = 32


def _settings(**changes):
    return profile("smoke").replace(
        image_size=SIZE,
        localization=LocalizationConfig(image_size=SIZE, base_filters=4, depth=2),
        tuning=TuningConfig(image_size=SIZE, base_filters=4, depth=2, dilation_rates=(1, 2),
                            patch_levels=(2,), aspp_filters=4, aspp_rates=(1, 2)),
        **{"patches.levels": (2,), "train.epochs": 2, "train.learning_rate": 3e-3,
           "self_training.iterations": 2, "self_training.fine_tune_epochs": 1,
           "self_training.patience": 5, **changes},
    )


def _discs(n, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    centre = rng.uniform(8, 24, (n, 2))
    radius = rng.uniform(4, 10, n)
    target = (((yy - centre[:, :1, None]) ** 2 + (xx - centre[:, 1:, None]) ** 2)
              < radius[:, None, None] ** 2).astype(np.float32)
    images = target + rng.normal(0, 0.4, target.shape).astype(np.float32)
    priors = np.ones_like(target)
    return images, priors, target


def _hand_count(targets, threshold):
    """Patches of the 2 × 2 grid (16-pixel tiles) with μ >= threshold, counted tile by tile."""
    count = 0
    for t in targets:
        for r in (0, 16):
            for c in (0, 16):
                count += area_ratio(t[r:r + 16, c:c + 16]) >= threshold
    return count


@pytest.fixture(scope="module")
def trained_tuner(tmp_path_factory):
    """The tuning network Algorithm 1 starts from (both pseudo-label modes start from it)."""
    from liverseg import losses, models
    from liverseg.train.loop import fit

    settings = _settings()
    train = _discs(12, 0)
    n_levels = len(settings.tuning.output_names)
    return fit(lambda: models.build_tuning_net(settings), losses.multi_level_losses(n_levels),
               ({"image": train[0][..., None], "prior": train[1][..., None]},
                losses.multi_level_targets(train[2][..., None], n_levels)),
               None, tmp_path_factory.mktemp("tuner"), settings.train, progress=False).path


@pytest.mark.parametrize("pseudo_labels", ["prediction", "annotation"])
def test_two_rounds_add_the_mu_filtered_patches_with_their_labels(tmp_path, pseudo_labels,
                                                                  trained_tuner):
    import keras

    from liverseg.train.self_training import self_train

    settings = _settings(**{"self_training.pseudo_labels": pseudo_labels})
    train, val, test = _discs(12, 0), _discs(6, 1), _discs(6, 2)
    tuner = keras.models.load_model(trained_tuner)  # a fresh copy: self_train fine-tunes it

    best, history, path = self_train(tuner, train, val, test, settings, tmp_path / "st",
                                     progress=False)
    assert [row["iteration"] for row in history] == [0, 1, 2]
    expected = _hand_count(train[2], settings.patches.area_threshold)
    assert 0 < expected < 4 * len(train[2])  # the threshold really drops some patches
    assert [row["patches_added"] for row in history] == [0, expected, expected]
    assert [row["training_pairs"] for row in history] == [12, 12 + expected, 12 + expected]
    for row in history:
        for subset in ("val", "test"):
            assert set(row[subset]) == {"accuracy", "dice", "iou", "miou"}
            assert 0 <= row[subset]["dice"] <= 1
    assert sum(row["kept"] for row in history) == 1
    assert json.loads((tmp_path / "st" / "history.json").read_text()) == history
    agreement = [row["pseudo_label_dice"] for row in history[1:]]
    if pseudo_labels == "annotation":
        assert agreement == [1.0, 1.0]
    else:  # S comes from the network, which is not perfect after two epochs
        assert all(0 <= a < 1 for a in agreement)
    for k in (1, 2):
        log = (tmp_path / "st" / f"round-{k}" / "log.csv").read_text().splitlines()
        assert len(log) == 1 + settings.self_training.fine_tune_epochs
    kept = next(row["iteration"] for row in history if row["kept"])
    assert (path is None) == (kept == 0)
