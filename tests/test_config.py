"""Profiles and config objects: plain dataclasses, Table 2 defaults, JSON round trip."""

import dataclasses
import json
import math
import re
import subprocess
import sys

import pytest

from liverseg.config import (
    PhantomConfig,
    PROFILE_NAMES, CRFParams, LocalizationConfig, PriorJitterConfig, Profile, SynthesisConfig,
    TrainConfig, TuningConfig, profile,
)
from liverseg.errors import LiversegError, SettingError


@pytest.mark.parametrize("name", ["smoke", "demo", "paper"])
def test_profiles_exist_and_are_consistent(name):
    p = profile(name)
    assert isinstance(p, Profile) and p.name == name
    assert p.localization.image_size == p.tuning.image_size == p.image_size
    assert p.image_size % 2**p.tuning.depth == 0


def test_profile_sizes_grow_from_smoke_to_paper():
    smoke, demo, paper = (profile(n) for n in ("smoke", "demo", "paper"))
    assert smoke.image_size <= demo.image_size < paper.image_size == 512
    assert smoke.n_cases < demo.n_cases and paper.n_cases is None  # paper: every case
    for net in ("localization", "tuning"):
        sizes = [(getattr(p, net).base_filters, getattr(p, net).depth)
                 for p in (smoke, demo, paper)]
        assert sizes == sorted(sizes) and sizes[0] < sizes[1] < sizes[2], net
    assert len(smoke.experiments.seeds) == 1 and len(demo.experiments.seeds) >= 3
    assert smoke.train.epochs < paper.train.epochs


def test_profile_returns_a_fresh_object():
    p = profile("smoke")
    p.train.epochs = 999
    p.tuning.aspp_rates = (1,)
    assert profile("smoke").train.epochs != 999
    assert profile("smoke").tuning.aspp_rates != (1,)


def test_paper_profile_matches_table_2():
    p = profile("paper")
    assert p.image_size == 512
    assert p.train.optimizer == "adam"
    assert p.train.learning_rate == pytest.approx(1e-4)
    assert p.train.batch_size == 4
    assert p.train.epochs == 100
    assert p.train.early_stopping_patience == 50
    assert p.localization.dropout == p.tuning.dropout == pytest.approx(0.2)
    assert p.tuning.aspp_rates == (6, 12, 18)  # Section 3.5
    # Table 3: patches at the levels whose feature maps are 256, 128 and 64 pixels.
    assert [p.image_size // 2 ** (lv - 1) for lv in p.tuning.patch_levels] == [256, 128, 64]
    assert p.patches.area_threshold == pytest.approx(0.3)  # Eq. (7)


def test_defaults_are_the_paper_configuration():
    assert TuningConfig() == profile("paper").tuning
    assert LocalizationConfig() == profile("paper").localization
    assert TrainConfig() == profile("paper").train


@pytest.mark.parametrize("name", ["smoke", "demo", "paper"])
def test_to_dict_from_dict_round_trip_through_json(name):
    p = profile(name)
    p.tuning.aspp_rates = (4, 8, 12, 16)  # the Fig. 10 reading
    back = Profile.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p
    assert isinstance(back.tuning.dilation_rates, tuple)


def test_from_dict_rejects_unknown_keys():
    data = TuningConfig().to_dict()
    data["aspp_ratez"] = [1, 2]
    with pytest.raises(ValueError, match="aspp_ratez"):
        TuningConfig.from_dict(data)


def test_a_tree_saved_with_the_retired_slices_on_disk_setting_reads_back():
    # the setting chose RAM or memmaps before every run cut its slices into the store's memmaps
    saved = profile("smoke").to_dict()
    saved["train"]["slices_on_disk"] = True
    assert Profile.from_dict(saved) == profile("smoke")
    saved["train"]["slices_on_diks"] = True  # a typo is still refused
    with pytest.raises(ValueError, match="slices_on_diks"):
        Profile.from_dict(saved)


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        profile("huge")
    for name in PROFILE_NAMES:
        assert name in str(err.value)
    assert "huge" in str(err.value)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 100}, "divisible"),
        ({"patch_levels": (1, 2)}, "patch_levels"),
        ({"patch_levels": (5,)}, "patch_levels"),
        ({"patch_arrangement": "shuffle"}, "patch_arrangement"),
        ({"dropout": 1.5}, "dropout"),
        ({"base_filters": 6, "dilation_rates": (1, 2, 4, 8)}, "divide"),
        ({"upsampling": "nearest-ish"}, "upsampling"),
    ],
)
def test_invalid_tuning_config_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TuningConfig(**kwargs)


@pytest.mark.parametrize("setting, value", [
    ("experiments.held_out_seed", -1), ("experiments.held_out_seed", 1.5),
    ("experiments.collapse_dice", 1.5), ("experiments.collapse_dice", float("nan")),
    ("self_training.unlabelled_seed", -1),
])
def test_invalid_stray_constants_turned_settings_are_rejected(setting, value):
    with pytest.raises(ValueError, match=setting.replace(".", r"\.")):
        profile("smoke").replace(**{setting: value})


def test_profile_rejects_mismatched_image_sizes():
    with pytest.raises(ValueError, match="image_size"):
        Profile(name="x", image_size=64, n_cases=1, tuning=TuningConfig(image_size=128))


def test_output_names_follow_deep_supervision():
    assert TuningConfig().output_names == ("level_1", "level_2", "level_3", "level_4")
    assert TuningConfig(deep_supervision=False).output_names == ("level_1",)


def test_config_module_does_not_import_keras():
    code = "import sys, liverseg.config; print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_run_saved_before_a_setting_existed_resumes_but_other_settings_do_not(tmp_path):
    from liverseg.errors import InvalidDataError
    from liverseg.train.system import _check_same_settings

    settings = profile("smoke")
    saved = settings.to_dict()
    del saved["experiments"]  # written by a version without this setting
    del saved["phantoms"]  # nor this one: its phantoms were the classic ones, as smoke's are
    (tmp_path / "settings.json").write_text(json.dumps(saved))
    _check_same_settings(tmp_path, settings)
    with pytest.raises(InvalidDataError, match="other settings"):  # the mixture is other data
        _check_same_settings(tmp_path, settings.replace(**{"phantoms": PhantomConfig().to_dict()}))
    _check_same_settings(tmp_path, settings.replace(**{"experiments.seeds": (7,)}))
    with pytest.raises(InvalidDataError, match="other settings"):
        _check_same_settings(tmp_path, settings.replace(**{"train.epochs": 3}))
    (tmp_path / "settings.json").write_text('{"name": 1}')
    with pytest.raises(InvalidDataError, match="unreadable settings"):
        _check_same_settings(tmp_path, settings)


# --- one rule per setting, one error type (issue 18) ---------------------------------------------

#: fields that accept any value; empty today: a new field must declare its rule or be listed here
UNCONSTRAINED: set[str] = set()


def _sections(cls=Profile):
    yield cls
    for f in dataclasses.fields(cls):
        if "section" in f.metadata:
            yield from _sections(f.metadata["section"])


@pytest.mark.parametrize("setting, value", [
    ("train.batch_size", 0),  # at_least
    ("train.batch_size", 2.5),  # whole
    ("train.learning_rate", 0.0),  # above
    ("train.learning_rate", float("inf")),
    ("localization.dropout", 1.0),  # below
    ("phantoms.vessel_generations", 6),  # at_most
    ("train.dice_over", "mean"),  # choices
    ("train.jit_compile", 1),  # a bool choice takes only a bool
    ("lesion.prior_keep_largest", 1),  # flag, optional
    ("train.seed", True),  # a bool is no seed
    ("experiments.held_out_seed", True),
    ("experiments.seeds", ()),  # non-empty items
    ("phantoms.phases", ("late", "late")),  # distinct items
    ("phantoms.noise_hu", (30.0, 8.0)),  # an ordered pair
    ("phantoms.noise_hu", (8.0,)),
    ("phantoms.noise_hu", "loud"),
    ("phantoms.lesion_contrast_normal_hu", (45.0, -1.0)),  # an unordered pair
    ("phantoms.appearance_gamma_window_hu", (100.0, 100.0)),  # a strictly ordered pair
    ("inference.fill", "2d"),  # optional choices
    ("lesion.synthesis.count", (1.5, 3)),
    ("lesion.synthesis.radius_classes_mm", (4.0, -8.0)),
    ("train.prior_jitter.shrink", (0.2, 1.0)),
    ("train.prior_jitter.kinds", "drop"),  # a string is not a tuple of kinds
    ("prior.crf.iterations", 0),
    ("prior.crf.window", (200.0, -100.0)),
    ("preprocess.median_dims", 4),
    ("preprocess.window", (-100.0, float("inf"))),
    ("image_size", "64"),
])
def test_each_kind_of_rule_refuses_a_bad_value_naming_the_setting(setting, value):
    with pytest.raises(SettingError, match=rf"^{re.escape(setting)} must be .*, got "):
        profile("smoke").replace(**{setting: value})


@pytest.mark.parametrize("setting", ["phantoms.table_probability", "experiments.collapse_dice",
                                     "train.positive_share", "lesion.synthesis.share",
                                     "train.prior_jitter.share", "prior.crf.clip"])
def test_nan_is_refused_wherever_a_range_is(setting):
    with pytest.raises(SettingError, match=re.escape(setting)):
        profile("smoke").replace(**{setting: math.nan})
    with pytest.raises(SettingError, match=r"phantoms\.noise_hu"):
        PhantomConfig(noise_hu=(8.0, math.nan))


def test_setting_error_is_a_value_error_and_a_liverseg_error():
    with pytest.raises(SettingError) as err:
        TrainConfig(batch_size=0)
    assert isinstance(err.value, ValueError) and isinstance(err.value, LiversegError)
    assert str(err.value) == "train.batch_size must be a whole number >= 1, got 0"


@pytest.mark.parametrize("make, match", [
    (lambda: TrainConfig(batch_size=6, devices=4), r"train\.batch_size=6 must be a multiple of"),
    (lambda: TuningConfig(patch_levels=(2, 5)), r"tuning\.patch_levels must lie in 2\.\.depth"),
    (lambda: PhantomConfig(phase_weights=(0.5, 0.5, 0.5, 0.5)), r"phantoms\.phase_weights .* sum to 1"),
    (lambda: PhantomConfig(appearance_draws=2), r"phantoms\.appearance_draws needs"),
    (lambda: PhantomConfig(multifocal_count=(15, 199)), r"phantoms\.multifocal_count .* at most 200"),
    (lambda: SynthesisConfig(hyperdense_fraction=0.6, rim_fraction=0.6),
     r"lesion\.synthesis\.hyperdense_fraction"),
    (lambda: Profile("x", 64, 5), r"localization\.image_size=512 differs"),
])
def test_a_rule_across_fields_raises_a_setting_error_naming_the_setting(make, match):
    with pytest.raises(SettingError, match=match):
        make()


def test_unknown_settings_are_setting_errors_naming_the_section():
    with pytest.raises(SettingError, match=r"train\.prior_jitter has no settings \['size'\]"):
        PriorJitterConfig.from_dict({"size": 2})
    with pytest.raises(SettingError, match="profile has no setting 'train.epoch'"):
        profile("smoke").replace(**{"train.epoch": 3})


def test_values_are_normalised_as_before():
    assert PriorJitterConfig(kinds=["drop"], shrink=[0, 0.5]).kinds == ("drop",)
    assert PriorJitterConfig(shrink=[0, 0.5]).shrink == (0.0, 0.5)
    radii = SynthesisConfig(radius_classes_mm=[4, 8], count=[1.0, 3]).radius_classes_mm
    assert radii == (4.0, 8.0) and all(type(r) is float for r in radii)
    assert SynthesisConfig(count=[1.0, 3]).count == (1, 3)
    draws = PhantomConfig(appearance="randomized", appearance_draws=2.0).appearance_draws
    assert draws == 2 and type(draws) is int
    assert CRFParams(window=[-100, 200]).window == (-100, 200)  # a frozen section too
    assert PhantomConfig(noise_hu=(8, 30)).noise_hu == (8, 30)  # no conversion where none was


def test_every_setting_declares_a_rule_or_is_listed_as_free():
    missing = [f"{cls.__name__}.{f.name}" for cls in _sections() for f in dataclasses.fields(cls)
               if "rule" not in f.metadata and f"{cls.__name__}.{f.name}" not in UNCONSTRAINED]
    assert not missing, f"declare a rule with setting(...) or list them in UNCONSTRAINED: {missing}"
    assert len(set(_sections())) == 18  # the whole tree was walked


def test_set_assignments_read_json_values_and_keep_other_text():
    from liverseg.config import parse_assignments

    changes = parse_assignments(["train.epochs=5", "planes=[\"axial\"]", "prior.crf.engine=grid"])
    assert changes == {"train.epochs": 5, "planes": ["axial"], "prior.crf.engine": "grid"}
    assert profile("smoke").replace(**changes).prior.crf.engine == "grid"
    with pytest.raises(SettingError, match="KEY=VALUE"):
        parse_assignments(["train.epochs"])
