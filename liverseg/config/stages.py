"""Which stage of a run each setting affects: the one declaration the store's keys come from.

A trained network is stored under a hash of the settings it depends on
(:mod:`liverseg.train.store`). Rather than lists of what to leave out of each key, every
setting (a dotted path, or a section prefix) declares here the stage it affects, and a stage's
key hashes every setting of that stage and of the stages before it (:func:`stage_tree`), so
a change retrains exactly the networks that depend on it:

* ``"execution"``: where a run is computed, not what it learns (never keyed);
* ``"choice"``: which runs to make (never keyed; their data is in the data fingerprint);
* ``"data"``: what the data is, keyed by the data fingerprint instead of the settings;
* ``"localizer"``: the localizer and its priors (the store's "front");
* ``"tuner"``: the tuning network's training;
* ``"rounds"``: Algorithm 1 and the scoring.

A setting declared nowhere is a ``"localizer"`` one: a new setting forgotten here retrains
everything rather than silently reusing a network trained without it. Settings added after
stores existed declare when they are left out of the key (:attr:`Declaration.unkeyed_if`: at their
old behaviour), so that the keys of the earlier runs stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

#: the stages in the order a run meets them; each key covers its stage and the earlier ones
KEYED_STAGES = ("localizer", "tuner", "rounds")
STAGES = ("execution", "choice", "data", *KEYED_STAGES)


@dataclass(frozen=True)
class Declaration:
    """One setting's declaration: its ``stage`` (of :data:`STAGES`); ``unkeyed_if``: left out
    of every key while this holds of its value (a setting added after stores existed, at the
    behaviour from before it); ``hoisted``: keyed at the top of the tree in the keys before its
    section's stage, where the first stores keyed it (kept so their keys stay)."""

    stage: str
    unkeyed_if: Optional[Callable[[Any], bool]] = None
    hoisted: bool = False


def _off(value) -> bool:
    return not value


def _unset(value) -> bool:
    return value is None


#: the declarations, by dotted path or section prefix; the most specific one applies
DECLARED: dict[str, Declaration] = {
    "train.devices": Declaration("execution"),
    # which runs and how they are read; the held-out phantoms (experiments.held_out_seed) are
    # test data, keyed by the data fingerprint; a stored run's collapse flag
    # (experiments.collapse_dice) is recomputed when it is read back
    "experiments": Declaration("choice"),
    "phantoms": Declaration("data"),
    "tuning": Declaration("tuner"),
    "train.loss_scheme": Declaration("tuner"),
    "train.prior_jitter": Declaration("tuner", unkeyed_if=lambda jitter: not jitter["share"]),
    "patches": Declaration("rounds"),
    "self_training": Declaration("rounds"),
    # the hidden patients' labels: the localizer too learns from the other patients only
    "self_training.unlabelled_share": Declaration("localizer", unkeyed_if=_off, hoisted=True),
    "self_training.unlabelled_phantoms": Declaration("rounds", unkeyed_if=_off),
    # the unlabelled phantoms' dataset seed (their slices are in no data fingerprint); 23456:
    # the module constant it was before it was a setting
    "self_training.unlabelled_seed": Declaration("rounds",
                                                 unkeyed_if=lambda seed: seed == 23456),
    "lesion.synthesis.per_epoch": Declaration("localizer", unkeyed_if=_off),
    "train.small_lesion_weight": Declaration("localizer", unkeyed_if=_off),
    "train.early_stopping_start": Declaration("localizer", unkeyed_if=_off),
    "train.flips": Declaration("localizer", unkeyed_if=_off),
    "train.spatial": Declaration("localizer", unkeyed_if=lambda spatial: not spatial["share"]),
    "train.spatial.elastic": Declaration("localizer", unkeyed_if=_off),
    "preprocess.zscore_stats": Declaration("localizer", unkeyed_if=lambda stats: stats is None),
    "train.intensity": Declaration("localizer",
                                   unkeyed_if=lambda intensity: not intensity["share"]),
    "train.keep_best_after_start": Declaration("localizer", unkeyed_if=_off),
    # lesion overrides added after stores existed: a stage's tree holds every override unset
    # (LesionConfig.applied), so while unset they stay out of the liver's keys and the lesion's
    **{f"lesion.{name}": Declaration("localizer", unkeyed_if=_unset)
       for name in ("small_lesion_weight", "prior_margin", "early_stopping_start", "flips",
                    "keep_best_after_start", "spatial_share", "intensity_share")},
    # the priors every tuner learns from; pydensecrf, the engine before the setting, unkeyed
    "prior.crf.engine": Declaration("localizer", unkeyed_if=lambda engine: engine == "pydensecrf"),
    "inference": Declaration("rounds"),
    # these cut the lesion view every lesion network learns from
    "inference.liver_margin": Declaration("localizer"),
    "inference.lesion_view": Declaration("localizer"),
    # undeclared, hence "localizer": name, image_size, n_cases, dataset, planes, preprocess,
    # localization, prior, split, lesion (a stage's tree holds only ``lesion.synthesis``) and
    # the rest of train
}

#: the settings that change only where a run is computed (:meth:`Profile.learned_settings`)
EXECUTION_ONLY = tuple(path for path, declared in DECLARED.items()
                       if declared.stage == "execution")


def declaration(dotted: str) -> Declaration:
    """The declaration of a setting: that of its path or its nearest declared section,
    ``"localizer"`` if none (a forgotten setting retrains rather than reuses)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        found = DECLARED.get(".".join(parts[:end]))
        if found is not None:
            return found
    return Declaration("localizer")


def stage_tree(settings, stage: str) -> dict:
    """The settings tree ``stage``'s key hashes (of :data:`KEYED_STAGES`): every setting of
    ``settings`` (a :class:`~liverseg.config.Profile`) of that stage and the earlier ones."""
    if stage not in KEYED_STAGES:
        raise ValueError(f"stage must be one of {KEYED_STAGES}, got {stage!r}")
    keyed = KEYED_STAGES[:KEYED_STAGES.index(stage) + 1]

    def keep(dotted, value):
        own = DECLARED.get(dotted)
        if own is not None and own.unkeyed_if is not None and own.unkeyed_if(value):
            return False
        return (isinstance(value, dict) and bool(value)) or declaration(dotted).stage in keyed

    tree = _pruned(settings.to_dict(), "", keep)
    for dotted, declared in DECLARED.items():  # hoisted out of a section this key leaves out
        section, _, name = dotted.rpartition(".")
        if declared.hoisted and declaration(section).stage not in keyed:
            value = _pop(tree, dotted)
            if value is not _MISSING:
                tree[name] = value
    return tree


def learned_tree(tree: dict) -> dict:
    """``tree`` (a :meth:`Profile.to_dict`) without its ``"execution"`` settings."""
    return _pruned(tree, "", lambda dotted, value: declaration(dotted).stage != "execution")


def _pruned(node: dict, path: str, keep: Callable[[str, Any], bool]) -> dict:
    """``node`` without the settings ``keep(dotted, value)`` refuses; a section emptied by it
    goes too."""
    out = {}
    for key, value in node.items():
        dotted = f"{path}.{key}" if path else key
        if not keep(dotted, value):
            continue
        if isinstance(value, dict) and value:
            value = _pruned(value, dotted, keep)
            if not value:
                continue
        out[key] = value
    return out


_MISSING = object()


def _pop(tree: dict, dotted: str):
    """Take the setting ``dotted`` out of ``tree`` (:data:`_MISSING` if absent), and the
    sections it empties."""
    *path, last = dotted.split(".")
    parents = [tree]
    for part in path:
        child = parents[-1].get(part)
        if not isinstance(child, dict):
            return _MISSING
        parents.append(child)
    value = parents[-1].pop(last, _MISSING)
    for parent, part in zip(reversed(parents[:-1]), reversed(path)):
        if not parent[part]:
            del parent[part]
    return value
