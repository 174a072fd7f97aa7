"""Named settings profiles: ``smoke`` (CI), ``demo`` (the book, on a CPU) and ``paper`` (Table 2).

Every chapter and the command line run under one profile, so a number in the book can always be
traced to the settings behind it. Config objects are plain dataclasses (no Keras import here) and
round-trip through JSON with ``to_dict`` / ``from_dict``. The sections live in small modules
(:mod:`.networks`: the networks, training and inference; :mod:`.phantoms`; :mod:`.profiles`: the
tree, the lesion section and the named profiles; :mod:`.stages`: the stage of a run each setting
affects, which the store's keys come from); every name is importable from here.

    >>> from liverseg.config import profile
    >>> p = profile("paper")
    >>> p.train.learning_rate, p.train.batch_size, p.tuning.aspp_rates, p.patches.area_threshold
    (0.0001, 4, (6, 12, 18), 0.3)
"""

from liverseg.config._base import (APPEARANCE_MODES, DATASETS, DICE_REDUCTIONS,
                                   FUSIONS, LESION_VIEWS, OPTIMIZERS, PATCH_ARRANGEMENTS,
                                   PHANTOM_PHASES, PRECISIONS, PRIOR_MODES, RESIDUAL_MERGES,
                                   SLICE_PROFILES, STRUCTURES, UPSAMPLINGS)
from liverseg.config.networks import (InferenceConfig, LocalizationConfig, PatchConfig,
                                      PriorConfig, SelfTrainingConfig, SplitConfig, TrainConfig,
                                      TuningConfig)
from liverseg.config.phantoms import PhantomConfig
from liverseg.config.profiles import PROFILE_NAMES, ExperimentConfig, LesionConfig, Profile, profile
from liverseg.config.stages import EXECUTION_ONLY, KEYED_STAGES, STAGES, stage_tree
from liverseg.crf import CRFParams
from liverseg.datasets.planes import PLANES
from liverseg.lesion_synthesis import SynthesisConfig
from liverseg.preprocess import PreprocessConfig
from liverseg.prior_jitter import PriorJitterConfig
