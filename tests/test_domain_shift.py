"""The domain-shift chapter's experiment: test patients rescanned as another phantom family,
the 2 × 2 table and the gaps, on tiny phantoms with the training faked."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from liverseg import config
from liverseg.config import PhantomConfig
from liverseg.datasets.synthetic import make_case, phantom_seed
from liverseg.datasets.synthetic.phantom import make_phantom
from liverseg.experiments import domain_shift
from liverseg.train.store import per_case_run
from liverseg.train.slices import build_slices

SIZE = 32


def tiny_settings(seeds=(0, 1)):
    return config.profile("smoke").replace(**{
        "image_size": SIZE, "localization.image_size": SIZE, "tuning.image_size": SIZE,
        "n_cases": 3, "experiments.test_phantoms": 2, "experiments.seeds": seeds,
        "self_training.iterations": 0})


def test_phantom_seed_reads_the_ids_make_case_writes():
    assert phantom_seed("phantom-0-3") == (0, 3)
    assert phantom_seed("phantom-12345-1") == (12345, 1)
    assert make_case((12345, 1), shape=(4, 16, 16)).case_id == "phantom-12345-1"
    for bad in ("volume-3", "phantom-", "phantom-a-1", "3Dircadb1.1"):
        with pytest.raises(ValueError, match="not the id of a phantom"):
            phantom_seed(bad)


def test_the_shifted_family_lies_outside_the_classic_and_inside_the_mixture():
    shifted, classic, mixture = (domain_shift.SHIFTED, PhantomConfig.classic(), PhantomConfig())
    assert not set(shifted.phases) & set(classic.phases)
    assert set(shifted.phases) <= set(mixture.phases)
    assert shifted.noise_hu[0] > classic.noise_hu[1]
    assert mixture.noise_hu[0] <= shifted.noise_hu[0] <= shifted.noise_hu[1] <= mixture.noise_hu[1]
    assert shifted.fov_margin[0] > classic.fov_margin[1]
    assert set(shifted.slice_thickness_mm) <= set(mixture.slice_thickness_mm)


def test_rescan_scans_the_same_patients_as_the_family_says():
    settings = tiny_settings()
    ids = ["phantom-0-1", "phantom-12345-0"]
    shifted = domain_shift.rescan(ids, settings, domain_shift.SHIFTED)
    classic = domain_shift.rescan(ids, settings, PhantomConfig.classic())
    assert [c.case_id for c in shifted] == ids == [c.case_id for c in classic]
    for case_id, case, plain in zip(ids, shifted, classic):
        seed = phantom_seed(case_id)
        phantom = make_phantom(seed, shape=(SIZE // 2, SIZE, SIZE), config=domain_shift.SHIFTED)
        assert phantom.phase == "arterial"
        assert 22.0 <= phantom.noise_hu <= 30.0
        np.testing.assert_array_equal(case.image.array, phantom.case.image.array)
        reference = make_phantom(seed, shape=(SIZE // 2, SIZE, SIZE))  # the classic phantoms
        assert reference.phase in ("unenhanced", "portal_venous")
        np.testing.assert_array_equal(plain.image.array, reference.case.image.array)
        assert not np.array_equal(case.image.array, plain.image.array)


def _fake_prediction(hu, seed, family):
    """A deterministic 'network': HU above a threshold that depends on the seed and family."""
    return np.asarray(hu) > {"classic": 60.0, "randomized": 40.0, "appearance": 50.0,
                             "reach": 45.0}[family] + 10.0 * seed


def _family_of(settings):
    found = {**domain_shift.families(), **domain_shift.reach_families()}
    return next(name for name, family in found.items() if family == settings.phantoms)


@pytest.fixture
def faked(monkeypatch):
    calls = {"train": [], "score": []}

    def train_networks(data, settings, store, progress=True, tag=""):
        family, seed = _family_of(settings), settings.train.seed
        calls["train"].append((family, seed, data, settings))
        run = per_case_run(_fake_prediction(data.test.hu, seed, family),
                           data.test.target("liver"), data.test.case_ids)
        return types.SimpleNamespace(run=run, family=family, seed=seed)

    def score_on(trained, test, settings, structure="liver", cache=None):
        calls["score"].append((trained.family, trained.seed, test))
        return per_case_run(_fake_prediction(test.hu, trained.seed, trained.family),
                            test.target(structure), test.case_ids)

    def train_localizer(data, settings, store, progress=True, tag=""):
        family, seed = _family_of(settings), settings.train.seed
        calls["train"].append((family, seed, data, settings))
        return types.SimpleNamespace(family=family, seed=seed, folder=store)

    monkeypatch.setattr(domain_shift, "train_networks", train_networks)
    monkeypatch.setattr(domain_shift, "train_localizer", train_localizer)
    monkeypatch.setattr(domain_shift, "score_on", score_on)
    monkeypatch.setattr(domain_shift, "tuner_folder", lambda store, settings, data: store)
    return calls


def _dice(prediction, reference):
    prediction, reference = prediction.astype(bool), reference.astype(bool)
    total = prediction.sum() + reference.sum()
    return 1.0 if total == 0 else 2.0 * (prediction & reference).sum() / total


@pytest.mark.parametrize("networks", ["localizer", "cascade"])
def test_each_network_is_tested_on_both_families_and_the_gaps_match_numpy(tmp_path, faked,
                                                                          networks):
    settings = tiny_settings()
    comparison = domain_shift.run_domain_shift(settings, tmp_path, networks=networks,
                                               progress=False)

    # training: each family once per seed, on the same patients scanned as that family
    trained = {(family, seed): (data, s) for family, seed, data, s in faked["train"]}
    assert sorted(trained) == [(f, s) for f in ("appearance", "classic", "randomized")
                               for s in (0, 1)]
    classic, _ = trained["classic", 0]
    randomized, randomized_settings = trained["randomized", 0]
    assert randomized_settings.phantoms == PhantomConfig()
    assert randomized.split == classic.split
    assert list(randomized.train.case_ids) == list(classic.train.case_ids)
    assert not np.array_equal(np.asarray(randomized.train.hu), np.asarray(classic.train.hu))
    assert (tmp_path / f"phantoms-{domain_shift.phantoms_key(PhantomConfig())}").is_dir()
    # the appearance family: the same patients, each training phantom drawn 19 times more
    appearance, _ = trained["appearance", 0]
    assert appearance.split == classic.split
    assert set(appearance.train.case_ids.tolist()) >= set(classic.train.case_ids.tolist())
    assert len(appearance.train) == 20 * len(classic.train)

    # testing: the classic test slices, and the same patients rescanned as the shifted family
    test_ids = classic.split.test
    shifted_cases = [make_case(phantom_seed(i), shape=(SIZE // 2, SIZE, SIZE),
                               config=domain_shift.SHIFTED) for i in test_ids]
    expected_shifted = build_slices(shifted_cases, "axial", SIZE, settings.preprocess, "liver",
                                    settings.inference.liver_margin)
    harder_cases = [make_case(phantom_seed(i), shape=(SIZE // 2, SIZE, SIZE),
                              config=domain_shift.HARDER) for i in test_ids]
    expected_harder = build_slices(harder_cases, "axial", SIZE, settings.preprocess, "liver",
                                   settings.inference.liver_margin)
    scored = {(family, seed): [] for family in ("classic", "randomized", "appearance")
              for seed in (0, 1)}
    for family, seed, slices in faked["score"]:
        scored[family, seed].append(slices)
    for (family, seed), sets in scored.items():
        # its own family's test slices first, through score_on (a cascade's too: its prior
        # coverage and volume ratio are measured there)
        own_test, *sets = sets
        expected_own = {"classic": classic, "randomized": randomized,
                        "appearance": appearance}[family].test
        np.testing.assert_array_equal(own_test.images, expected_own.images)
        if family == "classic":  # its own test slices are the classic cell's
            shifted, harder = sets
        else:
            classic_test, shifted, harder = sets
            np.testing.assert_array_equal(classic_test.images, classic.test.images)
        np.testing.assert_array_equal(shifted.images, expected_shifted.images)
        np.testing.assert_array_equal(shifted.labels, expected_shifted.labels)
        np.testing.assert_array_equal(harder.images, expected_harder.images)
    # the harder family: the same patients, tumours in each, an appearance no family trains on
    assert [c.case_id for c in harder_cases] == [c.case_id for c in shifted_cases]
    assert all((case.label == 2).any() for case in harder_cases)

    # the train × test table and the gaps, against numpy
    tests = {"classic": classic.test, "shifted": expected_shifted, "harder": expected_harder}
    dice = {}
    for train in ("classic", "randomized", "appearance"):
        for test, slices in tests.items():
            for seed in (0, 1):
                prediction = _fake_prediction(slices.hu, seed, train)
                reference = np.asarray(slices.labels) > 0
                ids = np.asarray(slices.case_ids)
                dice[train, test, seed] = np.mean([_dice(prediction[ids == i], reference[ids == i])
                                                   for i in test_ids])
    summary = comparison.summary()
    for train in ("classic", "randomized", "appearance"):
        for test in ("classic", "shifted", "harder"):
            values = [dice[train, test, seed] for seed in (0, 1)]
            cell = summary[domain_shift.cell(train, test)]["dice"]
            assert cell["mean"] == pytest.approx(np.mean(values))
            assert cell["sd"] == pytest.approx(np.std(values, ddof=1))
    gaps = domain_shift.gaps(comparison)
    gap = {train: np.array([dice[train, "classic", s] - dice[train, "shifted", s] for s in (0, 1)])
           for train in ("classic", "randomized", "appearance")}
    for train, values in gap.items():
        assert gaps.summary()[train]["dice"]["mean"] == pytest.approx(values.mean())
        assert gaps.summary()[train]["dice"]["sd"] == pytest.approx(values.std(ddof=1))
        run = gaps.runs_of(train)[0]
        assert [c["case"] for c in run["test_cases"]] == test_ids
        assert np.mean([c["dice"] for c in run["test_cases"]]) == pytest.approx(values[0])
    difference = gaps.difference("classic", "randomized")
    assert difference["mean"] == pytest.approx((gap["classic"] - gap["randomized"]).mean())
    assert difference["sd"] == pytest.approx((gap["classic"] - gap["randomized"]).std(ddof=1))
    assert difference["within_noise"] in (True, False)

    harder_gap = np.array([dice["randomized", "classic", s] - dice["randomized", "harder", s]
                           for s in (0, 1)])
    assert domain_shift.gaps(comparison, target="harder").summary()["randomized"]["dice"][
        "mean"] == pytest.approx(harder_gap.mean())

    table = domain_shift.table_2x2(comparison).splitlines()
    assert table[0].startswith("| trained on | tested on classic phantoms |")
    assert table[0].endswith("| gap (classic − shifted) | gap (classic − harder) |")
    row = f"{np.mean([dice['randomized', 'shifted', s] for s in (0, 1)]):.3f}"
    cells = table[3].split(" | ")
    assert row in cells[2] and f"{gap['randomized'].mean():.3f}" in cells[4]
    assert f"{harder_gap.mean():.3f}" in cells[5]

    path = comparison.save(tmp_path / "results" / "domain_shift.json", gaps=gaps.summary(),
                           gap_difference=difference)
    saved = json.loads(path.read_text())
    assert {"experiment", "runs", "summary", "split", "settings", "seeds", "gaps",
            "gap_difference"} <= set(saved)
    assert saved["experiment"] == "domain_shift" and saved["seeds"] == [0, 1]
    assert set(saved["summary"]) == {f"{train}_on_{test}"
                                     for train in ("classic", "randomized", "appearance")
                                     for test in ("classic", "shifted", "harder")}
    assert {run["own_family"]["dice"] >= 0 for run in saved["runs"]} == {True}


def test_the_reach_experiment_tests_coronal_slices_of_liver_protocol_rescans(tmp_path, faked):
    settings = tiny_settings()
    comparison = domain_shift.run_reach(settings, tmp_path, progress=False)

    # trained on the mixture and on the mixture of any reach, coronal slices of the same patients
    trained = {(family, seed): (data, s) for family, seed, data, s in faked["train"]}
    assert sorted(trained) == [(f, s) for f in ("randomized", "reach") for s in (0, 1)]
    mixture, _ = trained["randomized", 0]
    reach, reach_settings = trained["reach", 0]
    assert reach_settings.phantoms == domain_shift.REACH
    assert mixture.plane == reach.plane == comparison.plane == "coronal"
    assert reach.split == mixture.split
    # tested on the mixture's own test slices and on those patients as liver-protocol scans
    protocol_cases = [make_case(phantom_seed(i), shape=(SIZE // 2, SIZE, SIZE),
                                config=domain_shift.LIVER_PROTOCOL) for i in mixture.split.test]
    expected = build_slices(protocol_cases, "coronal", SIZE, settings.preprocess, "liver",
                            settings.inference.liver_margin)
    tested = [slices for family, seed, slices in faked["score"] if (family, seed) == ("reach", 0)]
    _, mixture_test, protocol = tested  # (a localizer is scored on its own family's first)
    np.testing.assert_array_equal(mixture_test.images, mixture.test.images)
    np.testing.assert_array_equal(protocol.images, expected.images)
    # the liver fills more of a liver-protocol scan's slices than of the mixture's
    def liver_rows(slices):
        return (np.asarray(slices.labels) > 0).any(axis=2).mean()
    assert liver_rows(expected) > liver_rows(mixture.test)

    # the gaps and the lever, against numpy
    dice = {}
    for train in ("randomized", "reach"):
        for test, slices in (("randomized", mixture.test), ("liver_protocol", expected)):
            ids = np.asarray(slices.case_ids)
            reference = np.asarray(slices.labels) > 0
            for seed in (0, 1):
                prediction = _fake_prediction(slices.hu, seed, train)
                dice[train, test, seed] = np.mean([_dice(prediction[ids == i], reference[ids == i])
                                                   for i in mixture.split.test])
    gap = {train: np.array([dice[train, "randomized", s] - dice[train, "liver_protocol", s]
                            for s in (0, 1)]) for train in ("randomized", "reach")}
    glued, saved = domain_shift.summarize_reach(comparison)
    lever = gap["randomized"] - gap["reach"]
    assert saved["lever"]["mean"] == pytest.approx(lever.mean())
    assert saved["lever"]["sd"] == pytest.approx(lever.std(ddof=1))
    assert saved["gaps"]["reach"]["dice"]["mean"] == pytest.approx(gap["reach"].mean())
    assert glued["reach_reach_on_liver_protocol"].startswith(
        f"{np.mean([dice['reach', 'liver_protocol', s] for s in (0, 1)]):.3f}")
    assert glued["reach_lever"].startswith(f"{lever.mean():+.3f}")
    with pytest.raises(ValueError, match="no phantom family named"):
        domain_shift.run_domain_shift(settings, tmp_path, trains=("classic", "reach"))


def test_the_experiment_trains_on_phantoms_only(tmp_path):
    with pytest.raises(ValueError, match="synthetic"):
        domain_shift.run_domain_shift(tiny_settings().replace(dataset="lits"), tmp_path)
    with pytest.raises(ValueError, match="networks must be one of"):
        domain_shift.run_domain_shift(tiny_settings(), tmp_path, networks="tuner")


@pytest.mark.slow
def test_a_localizer_is_trained_once_and_scored_on_other_slices_through_the_cache(tmp_path,
                                                                                 monkeypatch):
    import keras

    settings = tiny_settings(seeds=(0,)).replace(**{"train.epochs": 1})
    data = domain_shift.family_data(settings, tmp_path, PhantomConfig.classic(), progress=False)
    trained = domain_shift.train_localizer(data, settings, tmp_path, progress=False)
    assert (domain_shift.front_folder(tmp_path, settings, data) / "localizer").is_dir()
    shifted = domain_shift.rescanned_test(data, settings, tmp_path, domain_shift.SHIFTED)
    assert list(dict.fromkeys(shifted.case_ids.tolist())) == data.split.test
    cache = tmp_path / "scores.json"
    run = domain_shift.score_on(trained, shifted, settings, cache=cache)
    assert [c["case"] for c in run["test_cases"]] == data.split.test
    dice = [c["dice"] for c in run["test_cases"]]
    assert run["test_mean"]["dice"] == pytest.approx(np.mean(dice))
    assert json.loads(cache.read_text()) == run
    assert domain_shift.slices_fingerprint(shifted) != domain_shift.slices_fingerprint(data.test)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished network was trained again")

    monkeypatch.setattr(keras.Model, "fit", no_training)
    again = domain_shift.train_localizer(data, settings, tmp_path, progress=False)
    assert domain_shift.score_on(again, shifted, settings, cache=cache) == run


def test_a_cascade_is_scored_with_the_share_of_the_liver_inside_its_prior(tmp_path, monkeypatch):
    import liverseg.predict

    # two patients of four slices; the liver is the left half of patient a's slices and the
    # whole of patient b's second slice; the prior is the left quarter of every slice
    size = 8
    reference = np.zeros((8, size, size), np.uint8)
    reference[:4, :, : size // 2] = 1
    reference[5] = 1
    prior = np.zeros((8, size, size), np.float32)
    prior[:, :, : size // 4] = 1
    test = types.SimpleNamespace(images=np.zeros((8, size, size), np.float32), hu=None,
                                 case_ids=np.array(["a"] * 4 + ["b"] * 4),
                                 target=lambda structure: reference.astype(np.float32))
    monkeypatch.setattr(liverseg.predict, "predict_priors", lambda *args, **kwargs: prior)
    monkeypatch.setattr(liverseg.predict, "predict_tuned",
                        lambda model, images, priors, batch: priors)  # marks its prior
    cascade = types.SimpleNamespace(front=types.SimpleNamespace(
        localizer=types.SimpleNamespace(model=None)), model=None)
    cache = tmp_path / "scores.json"
    run = domain_shift.score_on(cascade, test, tiny_settings(), cache=cache)
    coverage = {case["case"]: case["prior_coverage"] for case in run["test_cases"]}
    assert coverage == {"a": pytest.approx(0.5), "b": pytest.approx(0.25)}
    assert run["prior_coverage"] == pytest.approx(0.375)
    # the tuner marks its prior: a quarter of each slice against half of a's, all of b's one
    volume = {case["case"]: case["volume_ratio"] for case in run["test_cases"]}
    assert volume == {"a": pytest.approx(0.5), "b": pytest.approx(1.0)}
    assert run["volume_ratio"] == pytest.approx(0.75)
    # a patient without liver has no coverage and does not count in the mean
    reference[5] = 0
    run = domain_shift.score_on(cascade, test, tiny_settings())
    assert [c["prior_coverage"] for c in run["test_cases"]] == [pytest.approx(0.5), None]
    assert run["prior_coverage"] == pytest.approx(0.5)
    # read back from the cache as it was written
    assert json.loads(cache.read_text())["prior_coverage"] == pytest.approx(0.375)
    # a localizer alone has no prior to cover anything
    monkeypatch.setattr(liverseg.predict, "predict_probability",
                        lambda model, images, batch: prior)
    alone = domain_shift.TrainedLocalizer(types.SimpleNamespace(model=None), tmp_path)
    scored = domain_shift.score_on(alone, test, tiny_settings())
    assert "prior_coverage" not in scored and scored["volume_ratio"] == pytest.approx(0.5)
