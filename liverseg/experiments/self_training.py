"""What the self-training chapter reads off a comparison of Algorithm 1's variants.

``book/self_training.ipynb`` compares three variants of Algorithm 1 (the network's masks as
pseudo-labels, the patches' annotations instead, and the weakly labelled reading with
unlabelled patients) over seeds; each run keeps its rounds' history in ``run["self_training"]``
(one row per round N, the kept round marked ``kept``). The functions here choose the weakly
labelled variant's settings, read the kept rounds and their gain over round 0, and sum up what
the unlabelled patients added, with the texts the chapter glues into its prose.

Reads results only: no Keras, so the chapter's numbers are tested without training.
"""

from __future__ import annotations

from typing import Mapping

from liverseg.config import Profile
from liverseg.experiments.comparison import Comparison, spread
from liverseg.experiments.tables import describe_difference, mean_sd

#: The share of the training patients that lose their labels on a real dataset, where there
#: are no spare patients to add unlabelled.
UNLABELLED_SHARE = 0.5


def unlabelled_changes(settings: Profile, n_train: int) -> dict:
    """The setting changes of the weakly labelled variant: on phantoms, as many unlabelled
    phantoms as there are annotated training patients (``n_train``), so that half the
    patients Algorithm 1 learns from are unlabelled; on a real dataset, which has no spare
    patients, :data:`UNLABELLED_SHARE` of the training patients lose their labels."""
    if settings.dataset == "synthetic":
        return {"self_training.unlabelled_phantoms": int(n_train)}
    return {"self_training.unlabelled_share": UNLABELLED_SHARE}


def kept_round(run: Mapping) -> dict:
    """The row of the round Algorithm 1 kept (best by validation) in one run's history.

    Raises:
        ValueError: the run's history marks no round as kept.
    """
    for row in run["self_training"]:
        if row.get("kept"):
            return row
    raise ValueError(f"the run of seed {run.get('seed')} kept no round of Algorithm 1")


def kept_rounds(comparison: Comparison) -> dict[str, list[int]]:
    """Per variant, the round N each seed kept (0: no round beat the network before
    Algorithm 1 on validation), in seed order."""
    return {name: [kept_round(run)["iteration"] for run in comparison.runs_of(name)]
            for name in comparison.variants}


def round_gain(comparison: Comparison, variant: str, subset: str = "test",
               metric: str = "dice") -> dict:
    """The :func:`~liverseg.experiments.spread` over seeds of ``metric`` on ``subset`` of the
    kept round minus round 0 (paired by seed: the same run), what Algorithm 1 gained."""
    return spread([kept_round(run)[subset][metric] - run["self_training"][0][subset][metric]
                   for run in comparison.runs_of(variant)])


def rounds_glue(kept: Mapping[str, list[int]], gains: Mapping[str, Mapping]) -> dict[str, str]:
    """The texts the chapter glues per variant: ``kept_{variant}`` (the kept rounds, per seed)
    and ``gain_{variant}`` (the gain's mean ± sd)."""
    return {**{f"kept_{name}": ", ".join(map(str, rounds)) for name, rounds in kept.items()},
            **{f"gain_{name}": mean_sd(gain) for name, gain in gains.items()}}


def unlabelled_summary(comparison: Comparison, changes: Mapping, variant: str = "unlabelled",
                       reference: str = "prediction") -> dict:
    """What the weakly labelled variant did, as the results file keeps it: its ``changes``,
    the patches of unlabelled slices each round added per seed
    (``unlabelled_patches_per_round``, rounds 1…N), its test Dice minus that of ``reference``
    (paired by seed, ``test_dice_minus_prediction``) and the ``seconds`` its runs took."""
    runs = comparison.runs_of(variant)
    return {"changes": dict(changes),
            "unlabelled_patches_per_round": [[row.get("unlabelled_patches", 0)
                                              for row in run["self_training"][1:]]
                                             for run in runs],
            "test_dice_minus_prediction": comparison.difference(variant, reference),
            "seconds": sum(run["seconds"] for run in runs)}


def unlabelled_glue(summary: Mapping) -> dict[str, str]:
    """The texts the chapter glues from :func:`unlabelled_summary`: ``unlabelled_changes``,
    ``unlabelled_patches`` (per round; seeds separated by semicolons), ``unlabelled_versus``
    and ``unlabelled_seconds``."""
    return {
        "unlabelled_changes": ", ".join(f"`{k}` = {v}" for k, v in summary["changes"].items()),
        "unlabelled_patches": "; ".join(", ".join(map(str, seed))
                                        for seed in summary["unlabelled_patches_per_round"]),
        "unlabelled_versus": describe_difference(summary["test_dice_minus_prediction"]),
        "unlabelled_seconds": f"{summary['seconds']:.0f}",
    }
