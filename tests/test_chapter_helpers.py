"""The library functions the book's chapters call for their tables, glued texts and results
files, on small hand-made comparisons (no training)."""

from __future__ import annotations

import dataclasses
import types

import pytest

from liverseg import config
from liverseg.experiments import domain_shift
from liverseg.experiments import self_training as chapter_self_training
from liverseg.experiments.comparison import METRICS, Comparison
from liverseg.experiments.tables import mean_sd


def _comparison(variants, runs) -> Comparison:
    return Comparison("t", "axial", "liver", sorted({run["seed"] for run in runs}), variants,
                      runs, {"train": [], "val": [], "test": ["p1"]}, {}, 0.0)


def test_mean_sd_signed_keeps_the_sign_of_a_difference():
    assert mean_sd({"mean": 0.0123, "sd": 0.004, "n": 2}, signed=True) == "+0.012 ± 0.004"
    assert mean_sd({"mean": -0.0123, "sd": 0.0, "n": 1}, signed=True) == "-0.012"
    assert mean_sd({"mean": 0.0123, "sd": 0.004, "n": 2}) == "0.012 ± 0.004"


# -- domain shift -------------------------------------------------------------------------

def test_the_families_table_has_a_row_per_knob_every_family_has():
    found = {"a": types.SimpleNamespace(noise_hu=(10, 20), riedel_probability=0.1),
             "b": types.SimpleNamespace(noise_hu=(22, 30))}
    lines = domain_shift.families_table(found, knobs=("noise_hu", "riedel_probability"))
    assert lines.splitlines() == ["| setting | a | b |", "|---|---|---|",
                                  "| `noise_hu` | (10, 20) | (22, 30) |"]


def test_the_families_table_shows_the_four_families_settings():
    families = domain_shift.families()
    lines = domain_shift.families_table(families).splitlines()
    assert lines[0] == "| setting | classic | randomized | appearance | shifted | harder |"
    phases = next(line for line in lines if line.startswith("| `phases` |"))
    assert phases.endswith(f"| {families['shifted'].phases} | {families['harder'].phases} |")
    appearance = next(line for line in lines if line.startswith("| `appearance` |"))
    assert appearance.endswith("| realistic | randomized | realistic | randomized |")
    draws = next(line for line in lines if line.startswith("| `appearance_draws` |"))
    assert draws == "| `appearance_draws` | 0 | 0 | 19 | 0 | 0 |"
    shown = {line.split("`")[1] for line in lines[2:]}
    fields = {field.name for field in dataclasses.fields(config.PhantomConfig)}
    assert shown == {knob for knob in domain_shift.TABLE_KNOBS if knob in fields}


def test_the_phantom_settings_are_the_profile_on_phantoms_without_self_training():
    smoke = config.profile("smoke")
    on_lits = smoke.for_dataset("lits")
    assert on_lits.experiments.test_phantoms == 0 < smoke.experiments.test_phantoms
    base = domain_shift.phantom_settings(on_lits)
    assert base.dataset == "synthetic" and base.name == "smoke"
    assert base.experiments.test_phantoms == smoke.experiments.test_phantoms
    assert base.self_training.iterations == 0
    assert base == domain_shift.phantom_settings(smoke.for_dataset("synthetic"))


def test_the_domain_shift_chapter_trains_localizers_under_smoke_and_cascades_under_demo():
    assert config.profile("smoke").experiments.shift_networks == "localizer"
    assert config.profile("demo").experiments.shift_networks == "cascade"
    with pytest.raises(config.SettingError, match="shift_networks"):
        config.profile("smoke").replace(**{"experiments.shift_networks": "tuner"})
    assert domain_shift.NETWORKS == config.SHIFT_NETWORKS


def test_cell_labels_name_each_training_and_test_family():
    labels = domain_shift.cell_labels()
    assert list(labels)[:3] == ["classic_on_classic", "classic_on_shifted", "classic_on_harder"]
    assert len(labels) == 9 and labels["appearance_on_harder"] == "appearance → harder"
    assert labels["randomized_on_shifted"] == "randomized → shifted"
    assert domain_shift.cell_labels(("lits",)) == {"classic_on_lits": "classic → lits",
                                                    "randomized_on_lits": "randomized → lits",
                                                    "appearance_on_lits": "appearance → lits"}


def _domain_shift_comparison(appearance: bool = False) -> Comparison:
    """Dice per (train, test) and seed; own_family: each network on its own family's test."""
    dice = {("classic", "classic"): (0.9, 0.8), ("classic", "shifted"): (0.5, 0.6),
            ("classic", "harder"): (0.3, 0.2),
            ("randomized", "classic"): (0.85, 0.75), ("randomized", "shifted"): (0.8, 0.7),
            ("randomized", "harder"): (0.6, 0.6)}
    if appearance:
        dice.update({("appearance", "classic"): (0.8, 0.8), ("appearance", "shifted"): (0.8, 0.7),
                     ("appearance", "harder"): (0.75, 0.7)})
    own = {"classic": (0.9, 0.8), "randomized": (0.95, 0.93), "appearance": (0.9, 0.9)}
    runs = []
    for (train, test), values in dice.items():
        for seed, value in enumerate(values):
            scores = {metric: value for metric in METRICS}
            runs.append({"variant": domain_shift.cell(train, test), "seed": seed, "train": train,
                         "test": test, "test_cases": [{"case": "p1", **scores}],
                         "test_mean": scores, "collapsed": False,
                         "own_family": {"dice": own[train][seed]}})
    variants = {domain_shift.cell(train, test): {"train": train, "test": test}
                for train, test in dice}
    return _comparison(variants, runs)


def test_summarize_glues_the_dice_the_signed_gaps_and_their_paired_difference():
    comparison = _domain_shift_comparison()
    families = domain_shift.families()
    glued, saved = domain_shift.summarize(comparison, phantoms=families)
    assert glued["dice_classic_on_classic"] == "0.850"
    assert glued["dice_randomized_on_shifted"] == "0.750"
    assert glued["gap_classic"] == "+0.300 ± 0.141"  # gaps 0.4 and 0.2
    assert glued["gap_randomized"] == "+0.050 ± 0.000"
    assert glued["own_randomized"] == "0.940"
    # gap(classic) − gap(randomized) per seed: 0.35, 0.15; t(0.975, 1) ≈ 12.7: within the noise
    assert glued["gap_difference"] == ("+0.250 ± 0.141 over 2 seeds, within the noise "
                                       "(paired t-test, 95 %)")
    # the harder family: gaps 0.6, 0.6 (classic) and 0.25, 0.15 (randomized)
    assert glued["gap_harder_classic"] == "+0.600 ± 0.000"
    assert glued["gap_harder_randomized"] == "+0.200 ± 0.071"
    assert glued["gap_harder_difference"].startswith("+0.400 ± 0.071 over 2 seeds")
    assert set(saved) == {"gaps", "gap_difference", "own_family", "families", "gaps_harder",
                          "gap_harder_difference"}
    assert saved["gaps"]["classic"]["dice"]["mean"] == pytest.approx(0.3)
    assert saved["gap_difference"]["mean"] == pytest.approx(0.25)
    assert saved["own_family"]["classic"]["mean"] == pytest.approx(0.85)
    assert saved["families"]["shifted"] == dataclasses.asdict(families["shifted"])
    given, without_families = domain_shift.summarize(comparison, domain_shift.gaps(comparison))
    assert given == glued and "families" not in without_families
    assert "gap_harder_lever" not in glued  # no appearance family trained
    # with it: gap(randomized) − gap(appearance) on the harder family, per seed 0.25 − 0.05 and
    # 0.15 − 0.1
    glued, saved = domain_shift.summarize(_domain_shift_comparison(appearance=True))
    assert glued["gap_harder_appearance"] == "+0.075 ± 0.035"
    assert glued["gap_harder_lever"].startswith("+0.125 ± 0.106 over 2 seeds")
    assert saved["gap_harder_lever"]["mean"] == pytest.approx(0.125)


def test_a_negative_gap_is_glued_with_its_sign():
    comparison = _domain_shift_comparison()
    for run in comparison.runs_of("randomized_on_shifted"):
        run["test_mean"] = {metric: 0.9 for metric in METRICS}
        run["test_cases"] = [{"case": "p1", **run["test_mean"]}]
    glued, _ = domain_shift.summarize(comparison)
    assert glued["gap_randomized"] == "-0.100 ± 0.071"  # 0.85 − 0.9, 0.75 − 0.9


def test_the_2x2_table_of_cascades_adds_the_liver_inside_their_priors():
    comparison = _domain_shift_comparison()
    plain = domain_shift.table_2x2(comparison)
    assert "ROI prior" not in plain and "prior_coverage" not in comparison.summary()["classic_on_classic"]
    for run in comparison.runs:  # cascades: the share of the liver inside each run's prior
        run["prior_coverage"] = {"classic": 0.9, "shifted": 0.7, "harder": 0.5}[run["test"]] + 0.02 * run["seed"]
    lines = domain_shift.table_2x2(comparison).splitlines()
    assert lines[:len(plain.splitlines())] == plain.splitlines()
    coverage = lines[len(plain.splitlines()) + 1:]
    assert coverage[0].startswith("| liver inside the ROI prior, trained on | tested on classic")
    assert coverage[3] == "| randomized phantoms | 0.910 ± 0.014 | 0.710 ± 0.014 | 0.510 ± 0.014 |"
    # a comparison where one run has no coverage (a localizer's) shows none
    del comparison.runs[0]["prior_coverage"]
    assert domain_shift.table_2x2(comparison) == plain
    for run in comparison.runs:  # every run gives the predicted over the reference volume
        run["volume_ratio"] = 0.8 if run["test"] == "classic" else 0.6
    volume = domain_shift.table_2x2(comparison).splitlines()[len(plain.splitlines()) + 1:]
    assert volume[0].startswith("| predicted / reference liver volume, trained on |")
    assert volume[2] == "| classic phantoms | 0.800 ± 0.000 | 0.600 ± 0.000 | 0.600 ± 0.000 |"


# -- self-training ------------------------------------------------------------------------

def test_the_unlabelled_variant_adds_phantoms_or_hides_half_the_patients():
    smoke = config.profile("smoke")
    changes = chapter_self_training.unlabelled_changes(smoke, 4)
    assert changes == {"self_training.unlabelled_phantoms": 4}
    assert smoke.replace(**changes).self_training.unlabelled_phantoms == 4
    lits = smoke.for_dataset("lits")
    changes = chapter_self_training.unlabelled_changes(lits, 4)
    assert changes == {"self_training.unlabelled_share": 0.5}
    assert lits.replace(**changes).self_training.unlabelled_share == 0.5
    with pytest.raises(ValueError):  # the phantoms' change is refused on a real dataset
        lits.replace(**{"self_training.unlabelled_phantoms": 4})


def _round(iteration, test, kept=False, **extra):
    return {"iteration": iteration, "val": {"dice": 0.5}, "test": {"dice": test},
            "kept": kept, **extra}


def _self_training_comparison() -> Comparison:
    runs = [
        {"variant": "prediction", "seed": 0, "seconds": 10.0, "test_mean": {"dice": 0.7},
         "self_training": [_round(0, 0.6), _round(1, 0.7, kept=True), _round(2, 0.65)]},
        {"variant": "prediction", "seed": 1, "seconds": 10.0, "test_mean": {"dice": 0.5},
         "self_training": [_round(0, 0.5, kept=True), _round(1, 0.45)]},
        {"variant": "unlabelled", "seed": 0, "seconds": 20.4, "test_mean": {"dice": 0.75},
         "self_training": [_round(0, 0.6), _round(1, 0.62, unlabelled_patches=12),
                           _round(2, 0.75, kept=True, unlabelled_patches=9)]},
        {"variant": "unlabelled", "seed": 1, "seconds": 30.3, "test_mean": {"dice": 0.5},
         "self_training": [_round(0, 0.5, kept=True), _round(1, 0.4)]},
    ]
    return _comparison({"prediction": {}, "unlabelled": {}}, runs)


def test_the_kept_rounds_and_their_gain_over_round_0_are_read_per_seed():
    comparison = _self_training_comparison()
    assert chapter_self_training.kept_rounds(comparison) == {"prediction": [1, 0],
                                                             "unlabelled": [2, 0]}
    gain = chapter_self_training.round_gain(comparison, "prediction")
    assert gain["mean"] == pytest.approx(0.05) and gain["n"] == 2  # 0.7 − 0.6, 0.5 − 0.5
    assert gain["sd"] == pytest.approx(0.0707, abs=1e-4)
    val = chapter_self_training.round_gain(comparison, "prediction", subset="val")
    assert val["mean"] == 0.0
    glued = chapter_self_training.rounds_glue(
        chapter_self_training.kept_rounds(comparison), {"prediction": gain})
    assert glued == {"kept_prediction": "1, 0", "kept_unlabelled": "2, 0",
                     "gain_prediction": "0.050 ± 0.071"}


def test_a_history_without_a_kept_round_is_an_error():
    run = {"seed": 3, "self_training": [_round(0, 0.5), _round(1, 0.6)]}
    with pytest.raises(ValueError, match="seed 3"):
        chapter_self_training.kept_round(run)


def test_the_unlabelled_summary_counts_the_patches_and_pairs_the_test_dice():
    comparison = _self_training_comparison()
    changes = {"self_training.unlabelled_phantoms": 4}
    summary = chapter_self_training.unlabelled_summary(comparison, changes)
    assert summary["changes"] == changes
    assert summary["unlabelled_patches_per_round"] == [[12, 9], [0]]  # rounds 1…N per seed
    assert summary["test_dice_minus_prediction"]["mean"] == pytest.approx(0.025)  # 0.05, 0
    assert summary["seconds"] == pytest.approx(50.7)
    glued = chapter_self_training.unlabelled_glue(summary)
    assert glued == {
        "unlabelled_changes": "`self_training.unlabelled_phantoms` = 4",
        "unlabelled_patches": "12, 9; 0",
        "unlabelled_versus": "+0.025 ± 0.035 over 2 seeds, within the noise (paired t-test, 95 %)",
        "unlabelled_seconds": "51"}
