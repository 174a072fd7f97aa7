"""Prior jitter and dropout (issue 17): the tuner's training priors made too small, shifted or
missing, as the settings ask, deterministic per (seed, epoch, slice), never at validation."""

import importlib
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from liverseg.config import profile
from liverseg.metrics import prior_scores
from liverseg.prior_jitter import (
    PriorJitterConfig,
    draw,
    jitter_prior,
    jitter_priors,
    prior_augment,
    shifted,
)


def _box(size=64, top=10, left=12, height=40, width=32, dtype=np.float32):
    prior = np.zeros((size, size), dtype)
    prior[top:top + height, left:left + width] = 1
    return prior


def _bbox(mask):
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return ys[0], xs[0], ys[-1] + 1 - ys[0], xs[-1] + 1 - xs[0]


def _boxes(n, size=64, seed=0):
    rng = np.random.default_rng(seed)
    priors = np.zeros((n, size, size), np.float32)
    for p in priors:
        top, left = rng.integers(4, 20, 2)
        p[top:top + rng.integers(20, 40), left:left + rng.integers(20, 40)] = 1
    return priors


# --- what each perturbation does ------------------------------------------------------------


@pytest.mark.parametrize("fraction, place, turn", [(0.2, 0.0, 0.0), (0.5, 0.99, 0.5),
                                                   (0.35, 0.3, 0.9), (0.0, 0.5, 0.5)])
def test_shrink_makes_the_box_smaller_by_the_drawn_fraction_inside_the_original(fraction, place,
                                                                                 turn):
    prior = _box()
    out = jitter_prior(prior, "shrink", fraction, place, turn)
    top, left, height, width = _bbox(out)
    assert (height, width) == (round(40 * (1 - fraction)), round(32 * (1 - fraction)))
    assert out.sum() == height * width  # still one full box
    assert not (out > prior).any()  # inside the original box
    assert out.dtype == prior.dtype and out.shape == prior.shape


def test_shrunk_boxes_fall_on_every_side_of_the_original():
    """The smaller box is placed anywhere inside: the liver may be missed on any side."""
    prior = _box()
    settings = PriorJitterConfig(share=1.0, kinds=("shrink",), shrink=(0.3, 0.3))
    d = draw(np.arange(200), settings, seed=0, epoch=0)
    tops, lefts = [], []
    for fraction, place, turn in zip(d.fraction, d.place, d.turn):
        top, left, height, width = _bbox(jitter_prior(prior, "shrink", fraction, place, turn))
        assert (height, width) == (28, 22)
        tops.append(top)
        lefts.append(left)
    assert min(tops) == 10 and max(tops) == 10 + 40 - 28  # flush with the top, and the bottom
    assert min(lefts) == 12 and max(lefts) == 12 + 32 - 22


def test_shrink_of_a_mask_prior_keeps_only_what_lies_in_the_smaller_box():
    yy, xx = np.mgrid[:64, :64]
    disc = ((yy - 32) ** 2 + (xx - 30) ** 2 < 15 ** 2).astype(np.float32)
    out = jitter_prior(disc, "shrink", 0.5, 0.5, 0.5)
    assert not (out > disc).any()
    assert 0 < out.sum() < 0.5 * disc.sum()


@pytest.mark.parametrize("turn", [0.0, 0.25, 0.5, 0.75, 0.125])
def test_shift_moves_the_prior_by_the_drawn_fraction_of_its_size(turn):
    prior = _box(size=128, top=40, left=44, height=40, width=32)
    fraction = 0.3
    out = jitter_prior(prior, "shift", fraction, 0.0, turn)
    dy = round(fraction * 40 * math.sin(2 * math.pi * turn))
    dx = round(fraction * 32 * math.cos(2 * math.pi * turn))
    assert (dy, dx) != (0, 0)
    assert _bbox(out) == (40 + dy, 44 + dx, 40, 32)  # same box, moved
    assert out.sum() == prior.sum()


def test_shift_loses_what_leaves_the_slice_and_does_not_wrap():
    prior = _box(size=64, top=10, left=40, height=20, width=20)
    out = jitter_prior(prior, "shift", 0.6, 0.0, 0.0)  # θ = 0: 12 pixels to the right
    assert _bbox(out) == (10, 52, 20, 12)
    assert not out[:, :40].any()
    assert np.array_equal(shifted(prior, 0, 64), np.zeros_like(prior))


def test_drop_empties_the_prior_and_fill_makes_it_the_whole_slice():
    prior = _box()
    assert not jitter_prior(prior, "drop").any()
    assert jitter_prior(prior, "fill").all()
    assert np.array_equal(jitter_prior(prior, "none"), prior)
    empty = np.zeros_like(prior)  # a slice without liver: nothing to shrink, move or drop
    for kind in ("shrink", "shift", "drop"):
        assert not jitter_prior(empty, kind, 0.4, 0.5, 0.5).any()
    with pytest.raises(ValueError, match="unknown prior jitter kind 'blur'"):
        jitter_prior(prior, "blur")
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        jitter_prior(prior[None], "drop")


def test_the_share_of_perturbed_slices_and_kinds_matches_the_settings():
    n = 4000
    priors = _boxes(n)
    for share in (0.0, 0.3, 1.0):
        settings = PriorJitterConfig(share=share)
        d = draw(np.arange(n), settings, seed=3, epoch=1)
        perturbed = d.kind != "none"
        changed = np.array([not np.array_equal(a, b) for a, b in
                            zip(priors, jitter_priors(priors, np.arange(n), settings, seed=3,
                                                      epoch=1))])
        assert np.array_equal(changed, perturbed)  # every drawn perturbation changes a box
        assert abs(changed.mean() - share) < 0.03  # binomial sd 0.007 at 0.3
        if share:
            kinds, counts = np.unique(d.kind[perturbed], return_counts=True)
            assert set(kinds) == {"shrink", "shift", "drop"}
            assert np.all(np.abs(counts / perturbed.sum() - 1 / 3) < 0.05)
    d = draw(np.arange(n), PriorJitterConfig(share=1.0, shrink=(0.25, 0.4), shift=(0.05, 0.6)),
             seed=0, epoch=0)
    for kind, (low, high) in (("shrink", (0.25, 0.4)), ("shift", (0.05, 0.6))):
        f = d.fraction[d.kind == kind]
        assert low <= f.min() and f.max() <= high and f.max() - f.min() > 0.8 * (high - low)
    assert not d.fraction[d.kind == "drop"].any()


def test_a_perturbation_depends_on_seed_epoch_and_slice_only():
    priors = _boxes(40)
    settings = PriorJitterConfig(share=0.5, kinds=("shrink", "shift", "drop", "fill"))
    rows = np.arange(100, 140)
    a = jitter_priors(priors, rows, settings, seed=1, epoch=2)
    assert np.array_equal(a, jitter_priors(priors, rows, settings, seed=1, epoch=2))
    # the same slice in another batch, at another place in it: the same perturbation
    picked = np.array([7, 3, 31])
    assert np.array_equal(jitter_priors(priors[picked], rows[picked], settings, seed=1, epoch=2),
                          a[picked])
    # with a channel axis, as the tuner's inputs: the same
    assert np.array_equal(jitter_priors(priors[..., None], rows, settings, seed=1, epoch=2),
                          a[..., None])
    for other in (dict(seed=1, epoch=3), dict(seed=2, epoch=2)):
        b = jitter_priors(priors, rows, settings, **other)
        differs = [not np.array_equal(x, y) for x, y in zip(a, b)]
        assert sum(differs) >= 10  # other slices, other perturbations
    assert np.array_equal(priors, _boxes(40))  # the input is left alone
    with pytest.raises(ValueError, match="40 priors but 3 row indices"):
        jitter_priors(priors, rows[:3], settings, seed=0, epoch=0)


def test_bad_settings_are_refused_naming_them():
    for bad, match in ((dict(share=1.5), r"train.prior_jitter.share must be in \[0, 1\]"),
                       (dict(share=-0.1), "share"),
                       (dict(kinds=("shrink", "blur")), "train.prior_jitter.kinds"),
                       (dict(kinds=()), "train.prior_jitter.kinds"),
                       (dict(kinds=("drop", "drop")), "distinct"),
                       (dict(kinds="drop"), "kinds must be a .*tuple"),
                       (dict(shrink=(0.5, 1.0)), r"train.prior_jitter.shrink .*< 1"),
                       (dict(shrink=(0.4, 0.2)), "train.prior_jitter.shrink"),
                       (dict(shift=(-0.1, 0.2)), "train.prior_jitter.shift"),
                       (dict(shift=0.3), r"shift must be a range with")):
        with pytest.raises(ValueError, match=match):
            PriorJitterConfig(**bad)
    with pytest.raises(ValueError, match="train.prior_jitter.share"):
        profile("smoke").replace(**{"train.prior_jitter.share": 2.0})


# --- the settings tree and the store ------------------------------------------------------------


def test_default_off_leaves_the_store_keys_as_before_and_on_retrains_the_tuner_only():
    store = importlib.import_module("liverseg.train.store")
    from liverseg.config.stages import stage_tree

    base = profile("smoke")
    assert base.train.prior_jitter == PriorJitterConfig() and not base.train.prior_jitter.active
    assert prior_augment(base.train.prior_jitter) is None  # fit reads its batches as before
    for stage in ("localizer", "tuner", "rounds"):
        tree = stage_tree(base, stage)
        assert "prior_jitter" not in json.dumps(tree)  # the default: the keys of earlier runs
    jittered = base.replace(**{"train.prior_jitter.share": 0.3})
    assert store.front_key(jittered) == store.front_key(base)  # the localizer and its priors
    assert store.tuner_key(jittered) != store.tuner_key(base)
    assert store.rounds_key(jittered) != store.rounds_key(base)
    kinds = jittered.replace(**{"train.prior_jitter.kinds": ("drop",)})
    assert store.tuner_key(kinds) != store.tuner_key(jittered)
    # a tree saved before the setting existed reads back with it off
    saved = base.to_dict()
    del saved["train"]["prior_jitter"]
    assert type(base).from_dict(json.loads(json.dumps(saved))) == base
    assert type(base).from_dict(json.loads(json.dumps(jittered.to_dict()))) == jittered


# --- the training loop: training batches only, resumable ---------------------------------------


def test_batches_hand_augment_each_rows_indices():
    from liverseg.train.loop import Batches

    priors = _boxes(10)
    x = {"image": np.zeros((10, 64, 64, 1), np.float32), "prior": priors[..., None]}
    settings = PriorJitterConfig(share=1.0)
    augment = prior_augment(settings)
    order = np.random.default_rng(0).permutation(10)
    batches = Batches(x, np.zeros((10, 64, 64), np.float32), 4, order=order,
                      augment=lambda x, rows: augment(x, rows, seed=5, epoch=1))
    for i in range(len(batches)):
        rows = order[i * 4:(i + 1) * 4]
        got, _ = batches[i]
        assert np.array_equal(got["prior"],
                              jitter_priors(priors[rows][..., None], rows, settings, seed=5,
                                            epoch=1))
        assert np.array_equal(got["image"], x["image"][rows])
    plain, _ = Batches(x, np.zeros((10, 64, 64), np.float32), 4, order=order)[0]
    assert np.array_equal(plain["prior"], priors[order[:4]][..., None])


def _tiny_tuner():
    import keras

    image = keras.Input((16, 16, 1), name="image")
    prior = keras.Input((16, 16, 1), name="prior")
    h = keras.layers.Concatenate()([image, prior])
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(h)
    h = keras.layers.Dropout(0.3)(h)
    out = keras.layers.Conv2D(1, 1, activation="sigmoid")(h)
    return keras.Model({"image": image, "prior": prior}, out)


def test_fit_perturbs_the_training_priors_only_and_a_crashed_run_resumes_to_the_same_weights(
        tmp_path):
    from liverseg.config import TrainConfig
    from liverseg.train.loop import fit

    rng = np.random.default_rng(0)
    n_train, n_val, epochs = 12, 4, 4
    labels = np.zeros((n_train + n_val, 16, 16, 1), np.float32)
    labels[:, 4:12, 3:11] = 1
    images = (labels + rng.normal(0, 0.3, labels.shape)).astype(np.float32)
    priors = np.zeros_like(labels)
    priors[:, 2:14, 1:13] = 1
    priors[n_train:] *= 0.5  # a mark: no validation prior may reach augment
    train = ({"image": images[:n_train], "prior": priors[:n_train]}, labels[:n_train])
    val = ({"image": images[n_train:], "prior": priors[n_train:]}, labels[n_train:])
    jitter = prior_augment(PriorJitterConfig(share=0.5))
    settings = TrainConfig(learning_rate=1e-2, batch_size=4, epochs=epochs,
                           early_stopping_patience=10, jit_compile=False)

    def spy(calls, crash_at=None):
        def augment(x, rows, *, seed, epoch):
            calls.append((epoch, seed, np.array(rows), np.array(x["prior"])))
            if epoch == crash_at:
                raise RuntimeError("the machine went down")
            return jitter(x, rows, seed=seed, epoch=epoch)
        return augment

    whole_calls = []
    whole = fit(_tiny_tuner, "binary_crossentropy", train, val, tmp_path / "whole", settings,
                seed=3, progress=False, augment=spy(whole_calls))
    assert {epoch for epoch, *_ in whole_calls} == set(range(epochs))
    for epoch in range(epochs):
        seen = np.concatenate([rows for e, _, rows, _ in whole_calls if e == epoch])
        assert set(seen.tolist()) == set(range(n_train))  # every training row, nothing else
    for _, seed, rows, batch in whole_calls:
        assert seed == 3
        assert not np.isin(0.5, batch)  # no validation prior was ever handed to augment
        assert np.array_equal(batch, priors[rows])  # what it got is the stored prior

    crashed_calls = []
    with pytest.raises(Exception, match="the machine went down"):
        fit(_tiny_tuner, "binary_crossentropy", train, val, tmp_path / "crashed", settings,
            seed=3, progress=False, augment=spy(crashed_calls, crash_at=2))
    state = json.loads((tmp_path / "crashed" / "state.json").read_text())
    assert state["epoch"] == 2 and not state.get("finished")
    resumed = fit(_tiny_tuner, "binary_crossentropy", train, val, tmp_path / "crashed", settings,
                  seed=3, progress=False, augment=spy(crashed_calls))
    for a, b in zip(whole.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert resumed.history == whole.history

    plain = fit(_tiny_tuner, "binary_crossentropy", train, val, tmp_path / "plain", settings,
                seed=3, progress=False)
    assert any(not np.allclose(a, b) for a, b in zip(plain.model.get_weights(),
                                                       whole.model.get_weights()))


def _fake_fit(captured):
    def fit(build, loss, train, val, workdir, settings, **kwargs):
        captured.append(dict(train=train, val=val, **kwargs))
        return SimpleNamespace(model=None, path=None, history=[], best_epoch=1)
    return fit


@pytest.mark.parametrize("share", [0.0, 0.4])
def test_the_tuner_and_algorithm_1_get_the_jitter_and_their_validation_priors_stay_as_made(
        share, monkeypatch, tmp_path):
    cascade = importlib.import_module("liverseg.train.cascade")
    self_training = importlib.import_module("liverseg.train.self_training")
    settings = profile("smoke").replace(**{"train.prior_jitter.share": share,
                                           "self_training.iterations": 1})
    rng = np.random.default_rng(1)
    labels = np.zeros((6, 64, 64), np.uint8)
    labels[:, 20:44, 18:40] = 1
    images = rng.normal(0, 1, labels.shape).astype(np.float32)
    train_priors, val_priors = _boxes(6, seed=2), _boxes(6, seed=3)
    chosen = SimpleNamespace(images=images, labels=labels, case_ids=np.array(["p0"] * 6))
    front = SimpleNamespace(train_priors=train_priors.copy(), val_priors=val_priors.copy())

    captured = []
    monkeypatch.setattr(cascade, "fit", _fake_fit(captured))
    cascade.train_tuner(chosen, SimpleNamespace(images=images, labels=labels), front, "liver",
                        settings, tmp_path / "tuner", progress=False)
    monkeypatch.setattr(self_training, "fit", _fake_fit(captured))
    monkeypatch.setattr(self_training, "predict_tuned",
                        lambda model, images, priors, batch: np.zeros(np.shape(images)))
    target = (labels == 1).astype(np.float32)
    self_training.self_train(None, (images, train_priors, target), (images, val_priors, target),
                             None, settings, tmp_path / "rounds", progress=False)
    assert len(captured) == 2  # the tuner, then Algorithm 1's one round
    for call in captured:
        assert np.array_equal(np.asarray(call["val"][0]["prior"])[..., 0], val_priors)
        if share:
            augment = call["augment"]
            x = {"prior": train_priors[:4, ..., None]}
            out = augment(x, np.arange(4), seed=0, epoch=0)["prior"][..., 0]
            assert np.array_equal(out, jitter_priors(train_priors[:4], np.arange(4),
                                                     settings.train.prior_jitter, seed=0,
                                                     epoch=0))
        else:
            assert call["augment"] is None
    assert np.array_equal(front.val_priors, val_priors)
    assert np.array_equal(front.train_priors, train_priors)  # perturbed per batch, not in place


# --- the measure: coverage, and the tuner inside and outside the box ------------------------


def test_prior_scores_measure_coverage_and_dice_inside_and_outside_the_box():
    reference = np.zeros((2, 10, 10), bool)
    reference[0, 2:8, 2:8] = True  # 36 pixels
    prior = np.zeros_like(reference)
    prior[0, 2:8, 2:5] = True  # covers 18 of them
    prediction = np.zeros_like(reference)
    prediction[0, 2:8, 2:5] = True  # all of the liver inside the box
    prediction[0, 2:5, 5:8] = True  # half of the 18 outside it
    prediction[1, 0, 0] = True  # and a false positive on a slice without liver, outside
    scores = prior_scores(prior, reference, prediction)
    assert scores["coverage"] == 0.5
    assert scores["reference_outside"] == 18
    assert scores["dice_inside"] == 1.0
    assert scores["dice_outside"] == pytest.approx(2 * 9 / (10 + 18))
    assert scores["predicted_outside"] == 10
    per_slice = prior_scores(prior, reference, prediction, axis=(1, 2))
    np.testing.assert_allclose(per_slice["coverage"], [0.5, 1.0])  # nothing to miss: 1
    np.testing.assert_allclose(per_slice["dice_inside"], [1.0, 1.0])  # both empty: 1
    np.testing.assert_allclose(per_slice["dice_outside"], [18 / 27, 0.0])
    assert set(prior_scores(prior, reference)) == {"coverage", "reference_outside"}
    from liverseg.errors import InvalidDataError, ShapeError
    with pytest.raises(ShapeError):
        prior_scores(prior[0], reference)
    with pytest.raises(InvalidDataError, match="NaN"):
        prior_scores(prior, reference, np.full(reference.shape, np.nan))
