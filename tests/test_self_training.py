"""Algorithm 1: two rounds of patch-wise self-training, their history, and the added pairs."""

import json

import numpy as np
import pytest

from liverseg.config import profile
from liverseg.patches import area_ratio

from .conftest import tiny_profile

SIZE = 32


def _settings(**changes):
    return tiny_profile(SIZE, **{"train.epochs": 2, "train.learning_rate": 3e-3,
                                 "self_training.iterations": 2, "self_training.fine_tune_epochs": 1,
                                 "self_training.patience": 5, **changes})


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


def test_unlabelled_patches_are_kept_by_the_predicted_area(tmp_path, trained_tuner):
    """With unlabelled slices, round 1 adds the tiles whose share of the network's own
    segmentation reaches μ, and says how many."""
    import keras

    from liverseg.errors import InvalidDataError
    from liverseg.predict import predict_tuned
    from liverseg.train.self_training import self_train

    settings = _settings(**{"self_training.iterations": 1})
    train, val = _discs(12, 0), _discs(6, 1)
    images, priors, _ = _discs(8, 3)  # the unlabelled slices: no targets passed
    tuner = keras.models.load_model(trained_tuner)
    predicted = predict_tuned(tuner, images, priors) > 0.5  # the network round 1 starts from
    expected = _hand_count(predicted, settings.patches.area_threshold)
    assert 0 < expected
    labelled = _hand_count(train[2], settings.patches.area_threshold)

    _, history, _ = self_train(tuner, train, val, None, settings, tmp_path / "st",
                               progress=False, unlabelled=(images, priors))
    assert [row["unlabelled_patches"] for row in history] == [0, expected]
    assert history[1]["patches_added"] == labelled + expected
    assert history[1]["training_pairs"] == 12 + labelled + expected

    annotation = settings.replace(**{"self_training.pseudo_labels": "annotation"})
    with pytest.raises(InvalidDataError, match="no annotation"):
        self_train(tuner, train, val, None, annotation, tmp_path / "st2", progress=False,
                   unlabelled=(images, priors))


def test_unlabelled_patients_are_a_fixed_share_of_whole_patients():
    from liverseg.errors import InvalidDataError
    from liverseg.lesion_synthesis import COPY_MARK
    from liverseg.train.self_training import unlabelled_patients

    ids = np.repeat([f"p{i}" for i in range(7)], 3)
    half = unlabelled_patients(ids, 0.5, seed=0)
    assert len(half) == 4 and half == sorted(half) and set(half) <= set(ids)
    assert unlabelled_patients(ids[::-1], 0.5, seed=0) == half  # the patients, not the order
    assert any(unlabelled_patients(ids, 0.5, seed=s) != half for s in range(1, 6))
    assert unlabelled_patients(ids, 0.0, seed=0) == []
    assert len(unlabelled_patients(ids, 0.01, seed=0)) == 1  # at least one
    assert len(unlabelled_patients(ids, 0.99, seed=0)) == 6  # one stays annotated
    copies = np.concatenate([ids, [f"p{i}{COPY_MARK}1" for i in range(7)]])
    assert unlabelled_patients(copies, 0.5, seed=0) == half  # a copy is its patient
    with pytest.raises(InvalidDataError, match="two training patients"):
        unlabelled_patients(["p0", "p0"], 0.5, seed=0)
    with pytest.raises(InvalidDataError, match=r"\[0, 1\)"):
        unlabelled_patients(ids, 1.0, seed=0)
    with pytest.raises(ValueError, match="pseudo_labels='prediction'"):
        profile("smoke").replace(**{"self_training.unlabelled_share": 0.5,
                                    "self_training.pseudo_labels": "annotation"})


def _patients(n_patients, slices, seed):
    """A :class:`SliceSet` of ``n_patients`` patients of disc slices (label 1 in the disc,
    some slices empty), with HU for the CRF."""
    from liverseg.train.slices import SliceSet

    images, _, target = _discs(n_patients * slices, seed)
    target[::3] = 0  # slices without the structure, for the choice of training slices
    images[::3] = np.random.default_rng(seed).normal(0, 0.4, images[::3].shape)
    ids = np.repeat([f"case-{seed}-{i}" for i in range(n_patients)], slices).astype(object)
    return SliceSet(images, images * 100.0, target.astype(np.uint8), ids)


class _RecordingFit:
    """Stands in for :func:`liverseg.train.loop.fit`: records a digest of every row a training
    would read (inputs and targets, as ``fit``'s batches make them) and returns the network
    ``build`` makes, its weights shifted by noise drawn from that digest — so everything
    downstream (priors, segmentations, the patches they choose) depends on what each training
    read, without the cost of training (a tuner's output is biased towards the foreground, so
    that its segmentations keep some tiles)."""

    def __init__(self):
        self.digests = []

    def __call__(self, build, loss, train, val, workdir, settings, *, seed=None, targets=None,
                 **kwargs):
        import hashlib
        from pathlib import Path

        import keras

        from liverseg.train.loop import FitResult

        (x, y), rows = train, np.arange(len(train[1]))
        target = targets(y[rows]) if targets else y[rows]
        digest = hashlib.sha1()
        for part in (x, target):
            for key in sorted(part) if isinstance(part, dict) else [None]:
                digest.update(np.ascontiguousarray((part if key is None else part[key])[rows])
                              .tobytes())
        self.digests.append(digest.hexdigest())
        keras.utils.set_random_seed(0)
        model = build()
        rng = np.random.default_rng(int(digest.hexdigest()[:12], 16))
        model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype)
                           for w in model.get_weights()])
        if "level_1" in [layer.name for layer in model.layers]:  # a tuner: let it find some
            kernel, bias = model.get_layer("level_1").get_weights()  # foreground, so that
            model.get_layer("level_1").set_weights([kernel, bias + 1.0])  # tiles reach μ
        path = Path(workdir) / "final.keras"
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
        return FitResult(model, [], 1, path)


def test_unlabelled_patients_labels_reach_neither_training_nor_mu(tmp_path, monkeypatch):
    """The whole cascade with half the training patients unlabelled, run twice: once with
    their labels, once with their labels replaced by noise. What every training reads (the
    localizer's, the tuner's, Algorithm 1's round), every prior, the patches Algorithm 1 keeps
    and its history must not change — while the poison does change what is read when every
    patient is annotated, and the unlabelled slices do feed Algorithm 1."""
    import dataclasses

    from liverseg.datasets.split import Split
    from liverseg.train import cascade, self_training
    from liverseg.train.cascade import choose_training_slices
    from liverseg.train.self_training import unlabelled_patients
    from liverseg.train.store import Data, train_networks

    settings = _settings(**{"self_training.iterations": 1, "self_training.unlabelled_share": 0.5})
    clean, val = _patients(4, 6, seed=0), _patients(2, 6, seed=1)
    hidden = unlabelled_patients(clean.case_ids, 0.5, settings.split.seed)
    assert len(hidden) == 2
    rows = np.isin(clean.case_ids, hidden)
    noise = np.random.default_rng(9).integers(0, 3, clean.labels.shape).astype(np.uint8)
    poisoned = dataclasses.replace(clean, labels=np.where(rows[:, None, None], noise,
                                                          clean.labels))
    assert not set(choose_training_slices(poisoned, "liver", settings).case_ids) & set(hidden)

    def run(name, slices, settings):
        recorder = _RecordingFit()
        monkeypatch.setattr(cascade, "fit", recorder)
        monkeypatch.setattr(self_training, "fit", recorder)
        patients = [sorted(set(subset.case_ids.tolist())) for subset in (slices, val, val)]
        data = Data(Split(*patients), slices, val, val, "axial", "liver", [], "same-data")
        report = train_networks(data, settings, tmp_path / name, progress=False).run
        report.pop("seconds")
        front, = (tmp_path / name).glob("axial-liver/data-same-data/seed-0/front-*")
        priors = {p.name: np.load(p) for p in sorted(front.glob("priors_*.npy"))}
        return recorder.digests, report, priors

    digests, report, priors = run("clean", clean, settings)
    assert len(digests) == 3  # localizer, tuner, one round of Algorithm 1
    assert report["unlabelled_patients"] == hidden
    assert report["unlabelled_slices"] == int(rows.sum())  # every slice, none chosen by label
    assert report["self_training"][1]["unlabelled_patches"] > 0  # they feed Algorithm 1
    assert sorted(name.split("-")[0] for name in priors) == [
        "priors_test.npy", "priors_train.npy", "priors_unlabelled", "priors_val.npy"]

    again = run("poisoned", poisoned, settings)
    assert again[0] == digests and again[1] == report
    for name, array in priors.items():
        np.testing.assert_array_equal(again[2][name], array)

    # the poison is not inert: with every patient annotated, the localizer would read it
    every = settings.replace(**{"self_training.unlabelled_share": 0.0})
    assert not np.array_equal(choose_training_slices(clean, "liver", every).labels,
                              choose_training_slices(poisoned, "liver", every).labels)


def test_unlabelled_settings_key_the_networks_they_change_and_leave_todays_keys_alone():
    from liverseg.config.stages import stage_tree
    from liverseg.experiments import front_key, rounds_key, tuner_key

    base = profile("smoke")
    hidden = base.replace(**{"self_training.unlabelled_share": 0.5})
    phantoms = base.replace(**{"self_training.unlabelled_phantoms": 3})
    for tree in (stage_tree(base, "rounds"), stage_tree(base, "tuner")):
        assert "unlabelled" not in json.dumps(tree)  # the default: the keys of earlier runs
    # hiding patients retrains both networks; more unlabelled phantoms change Algorithm 1 only
    assert front_key(hidden) != front_key(base) and tuner_key(hidden) != tuner_key(base)
    assert front_key(phantoms) == front_key(base) and tuner_key(phantoms) == tuner_key(base)
    assert len({rounds_key(s) for s in (base, hidden, phantoms)}) == 3
    with pytest.raises(ValueError, match="synthetic data only"):
        phantoms.for_dataset("lits")
    with pytest.raises(ValueError, match="unlabelled_phantoms must be a whole number >= 0"):
        base.replace(**{"self_training.unlabelled_phantoms": -1})


def test_unlabelled_phantoms_are_new_patients_whose_labels_are_dropped(monkeypatch):
    import dataclasses

    from liverseg.train import system

    settings = profile("smoke").replace(**{
        "self_training.unlabelled_phantoms": 2, "image_size": SIZE,
        "localization.image_size": SIZE, "tuning.image_size": SIZE, "patches.levels": (2,),
        "tuning.patch_levels": (2,), "tuning.depth": 2, "localization.depth": 2})
    assert system.unlabelled_phantom_slices(settings.replace(
        **{"self_training.unlabelled_phantoms": 0}), "axial") is None
    slices = system.unlabelled_phantom_slices(settings, "axial")
    assert not hasattr(slices, "labels")
    patients = sorted(set(slices.case_ids))
    assert len(patients) == 2 and len(slices) == 2 * settings.phantom_shape[0]
    others = [c.case_id for c in system.load_cases(settings, progress=False)
              + system.held_out_phantoms(settings, 2)]
    assert not set(patients) & set(others)  # neither training nor held-out test patients

    made = system.unlabelled_phantoms
    noise = np.random.default_rng(0)

    def poisoned(settings, n):
        return [dataclasses.replace(case, label=noise.integers(0, 3, case.label.shape)
                                    .astype(np.uint8)) for case in made(settings, n)]

    monkeypatch.setattr(system, "unlabelled_phantoms", poisoned)
    again = system.unlabelled_phantom_slices(settings, "axial")
    for name in ("images", "hu", "case_ids"):
        np.testing.assert_array_equal(getattr(again, name), getattr(slices, name))
