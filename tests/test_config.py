"""Profiles and config objects: plain dataclasses, Table 2 defaults, JSON round trip."""

import json
import subprocess
import sys

import pytest

from liverseg.config import (
    PhantomConfig,
    PROFILE_NAMES, LocalizationConfig, Profile, TrainConfig, TuningConfig, profile,
)


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
    ("self_training.unlabelled_seed", -1), ("train.slices_on_disk", 1),
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
