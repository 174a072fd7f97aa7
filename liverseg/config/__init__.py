"""Named settings profiles: ``smoke`` (CI), ``demo`` (the book, on a CPU) and ``paper`` (Table 2).

Every chapter and the command line run under one profile, so a number in the book can always be
traced to the settings behind it. Config objects are plain dataclasses (no Keras import here) and
round-trip through JSON with ``to_dict`` / ``from_dict``. The sections live in small modules
(:mod:`.networks`: the networks, training and inference; :mod:`.phantoms`; :mod:`.profiles`: the
tree, the lesion section and the named profiles; :mod:`.stages`: the stage of a run each setting
affects, which the store's keys come from); every name is importable from here. A setting
outside what it accepts raises :class:`~liverseg.errors.SettingError` naming its dotted path.

    >>> from liverseg.config import profile
    >>> p = profile("paper")
    >>> p.train.learning_rate, p.train.batch_size, p.tuning.aspp_rates, p.patches.area_threshold
    (0.0001, 4, (6, 12, 18), 0.3)
"""

import importlib

from liverseg.config._base import (APPEARANCE_MODES, COMBINATIONS, DATASETS, DICE_REDUCTIONS,
                                   FUSIONS, LESION_RUNGS, LESION_VIEWS, LOSS_SCHEMES, OPTIMIZERS,
                                   PATCH_ARRANGEMENTS, PHANTOM_PHASES, PRECISIONS, PRIOR_MODES,
                                   RESIDUAL_MERGES, SHIFT_NETWORKS, SLICE_PROFILES, STRUCTURES,
                                   UPSAMPLINGS)
from liverseg.config.phantoms import PhantomConfig
from liverseg.config.stages import EXECUTION_ONLY, KEYED_STAGES, STAGES, stage_tree
from liverseg.datasets.planes import PLANES
from liverseg.errors import SettingError

# The rest loads on first use: the sections that live beside their code (liverseg.crf,
# .preprocess, .prior_jitter, .lesion_synthesis, .train.spatial, .train.intensity) declare
# their rules with liverseg.config._base, and the tree holds them, so importing one of them
# first must not load the tree.
_LAZY = {
    "liverseg.config.networks": (
        "InferenceConfig", "LocalizationConfig", "PatchConfig", "PriorConfig",
        "SelfTrainingConfig", "SplitConfig", "TrainConfig", "TuningConfig"),
    "liverseg.config.profiles": (
        "PROFILE_NAMES", "ExperimentConfig", "LesionConfig", "Profile", "parse_assignments",
        "profile"),
    "liverseg.crf": ("CRFParams",),
    "liverseg.lesion_synthesis": ("SynthesisConfig",),
    "liverseg.preprocess": ("PreprocessConfig",),
    "liverseg.prior_jitter": ("PriorJitterConfig",),
    "liverseg.train.spatial": ("SpatialConfig",),
    "liverseg.train.intensity": ("IntensityConfig",),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = getattr(importlib.import_module(_MODULE_OF[name]), name)
    return value


def __dir__():
    return sorted({*globals(), *_MODULE_OF})
