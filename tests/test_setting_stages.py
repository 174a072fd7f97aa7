"""The store's keys come from the stage each setting declares (liverseg.config.stages): a changed
setting retrains exactly the networks of its stage and the later ones, and a setting nobody
declared retrains everything rather than silently reusing a stale network."""

import json

import pytest

import liverseg.config as config
from liverseg.config import profile, stages
from liverseg.config.stages import stage_tree
from liverseg.train.store import front_key, rounds_key, tuner_key

KEYS = {"front": front_key, "tuner": tuner_key, "rounds": rounds_key}
#: the keys a change of a setting of each stage must change (the issue's table)
CHANGES = {"localizer": {"front", "tuner", "rounds"}, "tuner": {"tuner", "rounds"},
           "rounds": {"rounds"}, "data": set(), "choice": set(), "execution": set()}
#: settings that must change together for the tree to validate
LINKED = {"image_size": ("image_size", "localization.image_size", "tuning.image_size")}
LINKED.update({name: LINKED["image_size"] for name in LINKED["image_size"]})


def _expected_stage(dotted: str) -> str:
    """The issue's declaration, spelled out independently of the module's table."""
    if dotted == "train.devices":
        return "execution"
    section = dotted.split(".")[0]
    if section == "experiments":
        return "choice"
    if section == "phantoms":
        return "data"
    if section == "tuning" or dotted == "train.loss_scheme" or dotted.startswith(
            "train.prior_jitter."):
        return "tuner"
    if dotted in ("inference.liver_margin", "inference.lesion_view",
                  "self_training.unlabelled_share"):
        return "localizer"
    if section in ("patches", "self_training", "inference"):
        return "rounds"
    return "localizer"


def _leaves(node: dict, path: str = ""):
    for key, value in node.items():
        dotted = f"{path}.{key}" if path else key
        if isinstance(value, dict) and value:
            yield from _leaves(value, dotted)
        else:
            yield dotted, value


def _allowed_strings() -> list[tuple]:
    return [value for name, value in vars(config).items() if name.isupper()
            and isinstance(value, tuple) and value and all(isinstance(v, str) for v in value)]


def _candidates(value):
    """Other values for a setting, most plausible first (validation may refuse some)."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value * 2, value - 1]
    if isinstance(value, float):
        return [value / 2 if value else 0.25, value + 0.1, 0.5, 0.1, value * 2]
    if isinstance(value, str):
        others = [v for allowed in _allowed_strings() if value in allowed for v in allowed]
        return [v for v in others if v != value] + [f"{value}_changed", "miou", "annotation"]
    if value is None:
        return [1, 2, 8, 16, 0.5, True, "axial", ("axial",)]
    if isinstance(value, tuple) and value:
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        out = [value[:-1], value[::-1], value[1:], value + (value[-1],)]
        if numbers:
            out += [value[:-1] + (value[-1] * 2,), tuple(v / 2 for v in value)]
        return [v for v in out if v != value]
    return []


def _perturbed(settings, dotted, value):
    for candidate in _candidates(value):
        try:
            return settings.replace(**{name: candidate for name in LINKED.get(dotted, (dotted,))})
        except (ValueError, TypeError, IndexError):  # refused by the tree's checks
            continue
    return None


def _keys(settings) -> dict:
    return {name: key(settings) for name, key in KEYS.items()}


def test_every_setting_changes_the_keys_of_its_stage_and_the_later_ones():
    # every setting that is keyed only once set is set, so that each one's change shows
    base = profile("demo").replace(**{"train.prior_jitter.share": 0.3,
                                      "train.spatial.share": 0.5,
                                      "train.intensity.share": 0.5,
                                      "preprocess.zscore_stats": (-72.0, 58.0),
                                      "self_training.unlabelled_share": 0.25,
                                      "self_training.unlabelled_phantoms": 2})
    before = _keys(base)
    leaves = list(_leaves(base.to_dict()))
    checked, skipped, wrong = 0, [], []
    for dotted, value in leaves:
        changed = _perturbed(base, dotted, value)
        if changed is None:
            skipped.append(dotted)
            continue
        after = _keys(changed)
        moved = {name for name in KEYS if after[name] != before[name]}
        expected = set().union(*(CHANGES[_expected_stage(name)]
                                 for name in LINKED.get(dotted, (dotted,))))
        if moved != expected:
            wrong.append((dotted, sorted(moved), sorted(expected)))
        checked += 1
    print("not perturbed:", skipped)
    assert not wrong, wrong
    assert checked >= 0.9 * len(leaves), f"only {checked} of {len(leaves)} leaves: {skipped}"


def test_an_undeclared_setting_is_keyed_at_the_localizer_stage(monkeypatch):
    base = profile("demo")

    class WithNewSettings:  # a profile with settings added after the declaration was written
        def to_dict(self):
            tree = base.to_dict()
            tree["train"]["new_setting"] = 1
            tree["new_section"] = {"value": 2}
            return tree

    for stage in stages.KEYED_STAGES:
        tree = stage_tree(WithNewSettings(), stage)
        assert tree["train"]["new_setting"] == 1 and tree["new_section"] == {"value": 2}
    # a declaration dropped from the table: the setting retrains the localizer too
    monkeypatch.delitem(stages.DECLARED, "train.loss_scheme")
    uniform = base.replace(**{"train.loss_scheme": "uniform"})
    assert front_key(uniform) != front_key(base)


def test_settings_added_after_stores_existed_leave_the_old_keys_until_set():
    base = profile("demo")
    for stage in stages.KEYED_STAGES:
        text = json.dumps(stage_tree(base, stage))
        assert "prior_jitter" not in text and "unlabelled" not in text
    # jitter's other settings change nothing while its share is 0
    assert _keys(base.replace(**{"train.prior_jitter.kinds": ("drop",)})) == _keys(base)
    # the hidden patients' share: at the top of the front and tuner trees, as the first
    # stores keyed it, and in its section in the rounds tree
    hidden = base.replace(**{"self_training.unlabelled_share": 0.25})
    for stage in ("localizer", "tuner"):
        tree = stage_tree(hidden, stage)
        assert tree["unlabelled_share"] == 0.25 and "self_training" not in tree
    assert stage_tree(hidden, "rounds")["self_training"]["unlabelled_share"] == 0.25
    # the unlabelled phantoms' seed: keyed (Algorithm 1 only) once moved off its old constant
    moved = _keys(base.replace(**{"self_training.unlabelled_seed": 1}))
    assert {name for name in KEYS if moved[name] != _keys(base)[name]} == {"rounds"}


def test_learned_settings_leave_out_the_execution_stage_only():
    tree = profile("demo").to_dict()
    learned = profile("demo").learned_settings()
    assert stages.EXECUTION_ONLY == ("train.devices",)
    del tree["train"]["devices"]
    assert learned == tree
    with pytest.raises(ValueError, match="stage must be one of"):
        stage_tree(profile("demo"), "data")
