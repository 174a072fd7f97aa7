"""Fair comparisons of settings: variants × seeds, scored per held-out patient.

Every experiment chapter asks "does this part of the paper help?" the same way: the same split
of the same cases, one set of slices, and for each seed and each variant (a named set of
setting changes) the cascade trained along one plane — by the one training path,
:func:`liverseg.train.store.train_networks`, which keeps every network in the run's store and
reads back what any chapter or ``liverseg train`` trained with the same settings — then its
tuning network scored on every **test** patient (never on the validation slices that chose its
epoch).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Sequence

from liverseg.config import Profile
from liverseg.experiments.comparison import Comparison, Variant
from liverseg.train.store import Data, prepare, train_networks

# settings a variant may not change: all variants of a comparison share the cases and slices
SHARED = ("name", "image_size", "n_cases", "dataset", "planes", "preprocess", "split")


def compare(
    experiment: str,
    variants: Iterable[Variant],
    settings: Profile,
    store: str | Path,
    *,
    seeds: Sequence[int] | None = None,
    data: Data | None = None,
    progress: bool = True,
) -> Comparison:
    """Train and score every variant for every seed (:func:`~liverseg.train.store.train_networks`).

    Args:
        experiment: a name for the results (``Comparison.experiment``).
        variants: the rows; each changes some settings of ``settings`` (not those in
            :data:`SHARED`: the rows of one comparison see the same slices).
        settings: the profile every variant starts from.
        store: the run's store folder (see the module doc; an earlier run's work is reused).
        seeds: training seeds (``train.seed``); default ``settings.experiments.seeds``.
        data: the split and slices (default :func:`prepare` of ``settings``).
    Raises:
        ValueError: a variant changes a shared setting, or two variants share a name.
    """
    started = time.perf_counter()
    variants = list(variants)
    _check_variants(variants, settings)
    seeds = [int(s) for s in (settings.experiments.seeds if seeds is None else seeds)]
    data = data or prepare(settings, store, progress=progress)
    runs = []
    for seed in seeds:
        seeded = settings.replace(**{"train.seed": seed})
        for variant in variants:
            trained = train_networks(data, seeded.replace(**variant.changes), store, progress,
                                     f"{variant.name} seed {seed}")
            runs.append({"variant": variant.name, **trained.run})
            del trained
    return Comparison(
        experiment=experiment, plane=data.plane, structure=data.structure, seeds=seeds,
        variants={v.name: {"changes": dict(v.changes)} for v in variants}, runs=runs,
        split=data.split._asdict(), settings=settings.to_dict(),
        seconds=round(time.perf_counter() - started, 1))


def _check_variants(variants: list[Variant], settings: Profile) -> None:
    names = [v.name for v in variants]
    if not variants or len(set(names)) != len(names):
        raise ValueError(f"variants need distinct names, got {names}")
    for variant in variants:
        changed = settings.replace(**variant.changes).to_dict()  # also checks the keys exist
        base = settings.to_dict()
        shared = [key for key in SHARED if changed[key] != base[key]]
        if shared:
            raise ValueError(f"variant {variant.name!r} changes {shared}, which every variant "
                             "of a comparison must share")
