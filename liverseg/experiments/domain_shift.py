"""Domain shift between phantom families, before and after randomization (issue 10).

The chapter ``book/domain_shift.ipynb`` ("From phantoms to real CT") asks how much a network
loses when the scanner changes, and whether training on randomized phantoms closes that gap.
It is a 3 × 3 experiment, per seed of ``experiments.seeds``:

* **training family** — the axial liver localization network (``networks="localizer"``,
  :func:`train_localizer`; the chapter's choice, to fit the ``smoke`` time budget) or the
  cascade of :mod:`liverseg.train.store` (``networks="cascade"``: localizer, priors,
  tuner; :func:`~liverseg.train.store.train_networks`), trained on ``"classic"``
  phantoms (:meth:`PhantomConfig.classic`, those of every other chapter, whose networks the
  store already holds), on ``"randomized"`` ones (``PhantomConfig()``, the mixture of four
  contrast phases, 8–30 HU noise, thick slices, streaks, metal, and whatever anatomical
  variety the generator has) or on ``"appearance"`` ones (:data:`APPEARANCE`: the mixture with
  its tissues' HU and texture drawn anew per patient and per epoch — issue 17's lever);
* **test family** — the same test patients (the split's and the held-out phantoms) scanned as
  ``"classic"`` phantoms or as :data:`SHIFTED` ones (arterial phase only, 22–30 HU noise of a
  coarse grain, 3–5 mm slices, a wider field of view, streaks in half the scans, and the
  liver shapes of :data:`SHAPE_SHIFT`): what the classic family never shows and the
  randomized family covers; or as :data:`HARDER` ones (issue 17): the shifted scanner with
  every soft tissue's HU and texture drawn from wide ranges, patchy liver enhancement and
  large tumours in every patient — what neither training family covers.

The patient of a phantom seed (organs, lesions) does not depend on how it is scanned, so both
test families hold the same patients and the per-patient gap
``Dice(classic scan) − Dice(shifted scan)`` measures the shift alone. :func:`gaps` gives it
per training family and seed; the paired difference of the two gaps
(``Comparison.difference``) says whether randomization closes it beyond the seeds' noise.

Layout in the run's store (besides :mod:`~liverseg.train.store`'s networks)::

    store/phantoms-{key}/slices/{plane}-{structure}/{train,val,test}/   another family's data
    store/phantoms-{key}/rescanned/{plane}-{structure}/                 test patients rescanned
    .../front-{key}/on-{fingerprint}.json                  a localizer's scores on a test set
    .../tuner-{key}/rounds-{key}/on-{fingerprint}.json     a cascade's scores on a test set
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from liverseg.config import SHIFT_NETWORKS, PhantomConfig, Profile
from liverseg.datasets.split import Split
from liverseg.errors import InvalidDataError
from liverseg.experiments.comparison import METRICS, Comparison
from liverseg.io.atomic import atomic_write_text
from liverseg.train.store import (Data, Trained, collapsed, data_fingerprint, front_folder,
                                  per_case_run, prepare, rounds_key, train_networks,
                                  tuner_folder)
from liverseg.train.loop import FitResult
from liverseg.train.slices import SliceSet, build_slices

#: The anatomy ("shape") part of the shift — a large left lobe and often a Riedel's lobe — when
#: the phantom generator has those knobs (``PhantomConfig.left_lobe_scale``,
#: ``riedel_probability``); without them the shift is of the acquisition alone.
SHAPE_SHIFT = {"left_lobe_scale": (1.3, 1.5), "riedel_probability": 0.5}

#: The shifted test family: a scanner outside the classic phantoms on every acquisition knob of
#: the generator (contrast phase, noise level and grain, slice profile, field of view, streaks)
#: and an anatomy at the edge of the randomized mixture's (:data:`SHAPE_SHIFT`); everything it
#: does not name is the mixture's, so the family lies inside the support of ``PhantomConfig()``.
SHIFTED = dataclasses.replace(
    PhantomConfig(), phases=("arterial",), phase_weights=(1.0,), noise_hu=(22.0, 30.0),
    noise_correlation_mm=(0.9, 1.2), psf_mm=(0.8, 1.1), slice_thickness_mm=(3.0, 4.0, 5.0),
    slice_profile="thickness", fov_margin=(1.3, 1.5), table_probability=0.9,
    streak_probability=0.5, streak_hu=(20.0, 60.0), metal_probability=0.0,
    **{k: v for k, v in SHAPE_SHIFT.items()
       if k in {f.name for f in dataclasses.fields(PhantomConfig)}},
)
#: The harder test family (issue 17): what no training family covers — every soft tissue's HU
#: and texture drawn anew per patient from wide ranges under a bias field and a gamma
#: (``appearance="randomized"``, after SynthSeg), the liver enhanced unevenly (patchy
#: perfusion of 20–60 HU), and in every patient tumours of 15–50 mm — on the shifted scanner.
HARDER = dataclasses.replace(
    SHIFTED, appearance="randomized", liver_perfusion_hu=(20.0, 60.0), healthy_probability=0.0,
    lesion_radius_mm=(15.0, 50.0), multifocal_probability=0.0,
)
#: The appearance lever (issue 17) as a training family: the randomized mixture with every soft
#: tissue's HU and texture drawn per patient (``appearance="randomized"``), patchy liver
#: enhancement up to 40 HU, and each training phantom drawn anew every epoch
#: (``appearance_draws`` 19: twenty appearances of each over twenty epochs).
APPEARANCE = dataclasses.replace(
    PhantomConfig(), appearance="randomized", liver_perfusion_hu=(0.0, 40.0), appearance_draws=19,
)
#: The reach lever (issue 17) as a training family: the mixture scanned from anything between
#: the liver alone and the whole abdomen along z (0–60 mm above the liver's dome, 0–180 mm below
#: its tip; the mixture's scans reach 15–60 and 50–180 mm: the liver fills at most about two
#: thirds of their slices).
REACH = dataclasses.replace(
    PhantomConfig(), scan_above_liver_mm=(0.0, 60.0), scan_below_liver_mm=(0.0, 180.0),
)
#: The liver-protocol test family: the mixture's scanner, but each scan reaching 0–10 mm above
#: the liver and 0–15 mm below it, so the liver fills the coronal and sagittal slices from top
#: to bottom (as in the real scan of the project's real-CT check: 119 slices of 1.6 mm around a
#: 1.9 L liver).
LIVER_PROTOCOL = dataclasses.replace(
    PhantomConfig(), scan_above_liver_mm=(0.0, 10.0), scan_below_liver_mm=(0.0, 15.0),
)
#: the reach experiment (:func:`run_reach`): trained on the mixture and on :data:`REACH`,
#: tested on the mixture's scans and on :data:`LIVER_PROTOCOL`'s, along the coronal plane,
#: where the reach changes what a slice shows (an axial slice is the same slice either way)
REACH_TRAIN = ("randomized", "reach")
REACH_TEST = ("randomized", "liver_protocol")
TRAIN_FAMILIES = ("classic", "randomized", "appearance")
TEST_FAMILIES = ("classic", "shifted", "harder")
NETWORKS = SHIFT_NETWORKS
LABELS = {"classic": "classic phantoms", "randomized": "randomized phantoms",
          "shifted": "shifted phantoms", "harder": "harder phantoms",
          "appearance": "phantoms of randomized appearance",
          "reach": "phantoms of any reach along z", "liver_protocol": "liver-protocol scans"}
#: The knobs :func:`families_table` shows: the acquisition knobs the shift moves, then the
#: shape knobs of :data:`SHAPE_SHIFT`.
TABLE_KNOBS = ("phases", "phase_weights", "noise_hu", "noise_correlation_mm", "slice_profile",
               "slice_thickness_mm", "fov_margin", "streak_probability", "metal_probability",
               *SHAPE_SHIFT, "appearance", "appearance_draws", "liver_perfusion_hu",
               "healthy_probability", "lesion_radius_mm")


def families(shifted: PhantomConfig = SHIFTED, randomized: PhantomConfig | None = None,
             harder: PhantomConfig = HARDER,
             appearance: PhantomConfig = APPEARANCE) -> dict[str, PhantomConfig]:
    """The five phantom families by name: ``classic``, ``randomized``, ``appearance`` (trained
    on), ``shifted`` and ``harder`` (tested on; ``classic`` too)."""
    return {"classic": PhantomConfig.classic(),
            "randomized": PhantomConfig() if randomized is None else randomized,
            "appearance": appearance, "shifted": shifted, "harder": harder}


def reach_families(randomized: PhantomConfig | None = None) -> dict[str, PhantomConfig]:
    """The families of the reach experiment by name: ``randomized`` (the mixture),
    ``reach`` (:data:`REACH`) and ``liver_protocol`` (:data:`LIVER_PROTOCOL`)."""
    return {"randomized": PhantomConfig() if randomized is None else randomized,
            "reach": REACH, "liver_protocol": LIVER_PROTOCOL}


def cell(train: str, test: str) -> str:
    """The variant name of one cell of the train × test table: ``"{train}_on_{test}"``."""
    return f"{train}_on_{test}"


def cell_labels(tests: Sequence[str] = TEST_FAMILIES,
                trains: Sequence[str] = TRAIN_FAMILIES) -> dict[str, str]:
    """``"classic → shifted"`` for each cell ``cell(train, test)``: the row labels of the
    chapter's tables and plots (``tests``: ``(dataset,)`` for :func:`real_scans`' cells)."""
    return {cell(train, test): f"{train} → {test}" for train in trains for test in tests}


def phantom_settings(settings: Profile) -> Profile:
    """The synthetic settings the experiment trains with, whatever dataset ``settings`` is on:
    the same profile on phantoms (with its held-out test phantoms, which a real dataset's
    settings drop) and without self-training, as the networks the chapters share
    (:data:`~liverseg.experiments.chapter.SHARED_NETWORKS`), so that the classic localizers
    are read back from the store."""
    from liverseg.config import profile
    from liverseg.experiments.chapter import SHARED_NETWORKS

    return profile(settings.name).for_dataset("synthetic").replace(**SHARED_NETWORKS)


def families_table(phantoms: Mapping[str, PhantomConfig],
                   knobs: Sequence[str] = TABLE_KNOBS) -> str:
    """A Markdown table of how each family scans its patients: one row per knob of ``knobs``
    that every family has (a shape knob only where the generator has it), one column per
    family."""
    from liverseg.experiments.tables import markdown_table

    rows = [[f"`{knob}`", *(getattr(family, knob) for family in phantoms.values())]
            for knob in knobs if all(hasattr(family, knob) for family in phantoms.values())]
    return markdown_table(["setting", *phantoms], rows)


def phantoms_key(phantoms: PhantomConfig) -> str:
    """A short hash of a phantom family's settings (:meth:`PhantomConfig.key`, the one rule)."""
    return phantoms.key()


def family_store(settings: Profile, store: str | Path, phantoms: PhantomConfig) -> Path:
    """Where the slices of ``settings`` scanned as ``phantoms`` live: the store itself for the
    profile's own phantoms (so every chapter shares them), else ``store/phantoms-{key}`` — a
    slice folder is keyed by its cases' ids, not by their pixels, so two families of the same
    patients must not share one."""
    if phantoms_key(phantoms) == phantoms_key(settings.phantoms):
        return Path(store)
    return Path(store) / f"phantoms-{phantoms_key(phantoms)}"


def family_data(settings: Profile, store: str | Path, phantoms: PhantomConfig, *,
                plane: str | None = None, structure: str = "liver",
                progress: bool = True) -> Data:
    """:func:`~liverseg.train.store.prepare` of the phantoms of ``settings`` scanned as
    ``phantoms`` (same patients, same split, same held-out test phantoms)."""
    return prepare(settings.replace(phantoms=phantoms), family_store(settings, store, phantoms),
                   plane=plane, structure=structure, progress=progress)


def rescan(case_ids: Sequence[str], settings: Profile, phantoms: PhantomConfig) -> list:
    """The phantoms ``case_ids`` (same patients: anatomy, lesions) scanned as ``phantoms``, at
    the profile's volume shape (:attr:`~liverseg.config.Profile.phantom_shape`) as :func:`liverseg.train.system.load_cases`."""
    from liverseg.datasets.synthetic import make_case, phantom_seed

    return [make_case(phantom_seed(i), shape=settings.phantom_shape, config=phantoms)
            for i in case_ids]


def rescanned_test(data: Data, settings: Profile, store: str | Path,
                   phantoms: PhantomConfig) -> SliceSet:
    """The slices of ``data``'s test patients scanned as ``phantoms``, cut like ``data``'s
    (plane, size, preprocessing, structure) into ``store/phantoms-{key}/rescanned/``."""
    cases = rescan(data.split.test, settings, phantoms)
    folder = (Path(store) / f"phantoms-{phantoms_key(phantoms)}" / "rescanned"
              / f"{data.plane}-{data.structure}")
    return build_slices(cases, data.plane, settings.image_size, settings.preprocess,
                        data.structure, settings.inference.liver_margin, folder=folder,
                        lesion_view=settings.inference.lesion_view)


def slices_fingerprint(test: SliceSet) -> str:
    """A short hash of a set of test slices (their patients and values)."""
    ids = list(dict.fromkeys(np.asarray(test.case_ids).tolist()))
    return data_fingerprint(Split([], [], ids), [test])


@dataclasses.dataclass
class TrainedLocalizer:
    """The localization network alone, trained for one seed (:func:`train_localizer`)."""

    localizer: FitResult
    folder: Path  # where scores on test slices are cached


def train_localizer(data: Data, settings: Profile, store: str | Path, progress: bool = True,
                    tag: str = "") -> TrainedLocalizer:
    """Train (or read back) the localization network of ``settings`` on ``data``'s training
    slices, where :func:`~liverseg.train.cascade.train_front` keeps it
    (``front_folder(...)/localizer``), so the cascade of the same settings reuses it and it
    reuses the cascade's; no priors are made."""
    from liverseg.train.cascade import _fit_localizer, choose_training_slices

    structure = data.structure
    chosen = choose_training_slices(data.train, structure, settings)
    folder = front_folder(store, settings, data)
    localizer = _fit_localizer(settings, structure, (chosen.images[..., None], chosen.labels),
                               (data.val.images[..., None], data.val.labels),
                               folder / "localizer", progress, f"{tag} localizer".strip(),
                               case_ids=chosen.case_ids)
    return TrainedLocalizer(localizer, folder)


def score_on(trained: Trained | TrainedLocalizer, test: SliceSet, settings: Profile,
             structure: str = "liver", cache: str | Path | None = None) -> dict:
    """Score a trained network on test slices (others than those it was scored on when
    trained): a cascade (:class:`~liverseg.train.store.Trained`) by its localizer's
    priors (Grad-CAM + CRF, :func:`liverseg.predict.predict_priors`) and its tuner's mask at
    0.5; a :class:`TrainedLocalizer` by its own probability at 0.5. Then
    :func:`~liverseg.train.store.per_case_run` per patient (``test_cases``,
    ``test_mean``, ``collapsed``: by ``experiments.collapse_dice``, also of a run read back);
    a cascade's run also gives each patient's ``prior_coverage`` (the share of its reference
    voxels inside the ROI prior; ``None`` without any) and their mean over the patients with
    the structure, ``prior_coverage`` (a prior that leaves part of the liver outside caps the
    tuner); every run gives ``volume_ratio`` the same way (:func:`with_volume_ratio`: a network
    that shrinks the liver it does not recognise shows it here before its Dice does).
    ``cache``: a JSON file read back when it exists, else written."""
    if cache is not None and Path(cache).is_file():
        run = json.loads(Path(cache).read_text())
        return {**run, "collapsed": collapsed(run["test_cases"],
                                              settings.experiments.collapse_dice)}
    from liverseg.predict import predict_priors, predict_probability, predict_tuned

    batch = settings.inference.batch_size
    if isinstance(trained, TrainedLocalizer):
        probability = predict_probability(trained.localizer.model, test.images, batch)
    else:
        priors = predict_priors(trained.front.localizer.model, test.images, test.hu,
                                settings.prior, batch)
        probability = predict_tuned(trained.model, test.images, priors, batch)
    reference = test.target(structure)
    run = per_case_run(probability > settings.inference.threshold, reference, test.case_ids,
                       settings.experiments.collapse_dice)
    run = with_volume_ratio(run, probability > settings.inference.threshold, reference,
                            test.case_ids)
    if not isinstance(trained, TrainedLocalizer):
        run = with_prior_coverage(run, priors, reference, test.case_ids)
    if cache is not None:
        atomic_write_text(Path(cache), json.dumps(run, indent=1))
    return run


def run_domain_shift(settings: Profile, store: str | Path, *, shifted: PhantomConfig = SHIFTED,
                     randomized: PhantomConfig | None = None, harder: PhantomConfig = HARDER,
                     appearance: PhantomConfig = APPEARANCE, seeds: Sequence[int] | None = None,
                     plane: str | None = None, structure: str = "liver",
                     networks: str = "cascade", progress: bool = True,
                     phantoms: Mapping[str, PhantomConfig] | None = None,
                     trains: Sequence[str] = TRAIN_FAMILIES,
                     tests: Sequence[str] = TEST_FAMILIES) -> Comparison:
    """Train the network(s) on each training family for each seed and score it on each test family.

    Returns a :class:`~liverseg.train.store.Comparison` whose variants are the
    cells ``cell(train, test)`` (each run: ``seed``, ``test_cases``, ``test_mean``,
    ``collapsed``, ``train``, ``test``); each run also keeps, as ``own_family``, the network's
    ``test_mean`` on its own family's test phantoms (what ``train_networks`` scores).
    ``settings`` must be a synthetic profile; ``settings.phantoms`` is not used (the families
    are :func:`families`). ``networks``: ``"cascade"`` (localizer, priors and tuner, scored by
    the tuner's mask) or ``"localizer"`` (the localization network alone, scored by its own
    mask: no priors, no tuner; a third of the training time). ``phantoms`` (default
    :func:`families` of the four families given) names the families that ``trains`` and
    ``tests`` pick; the first training family's test slices are its own, every other test
    family rescans those patients.

    Raises:
        ValueError: ``settings.dataset`` is not ``"synthetic"``; unknown ``networks``; a
            family that ``phantoms`` does not name.
    """
    if networks not in NETWORKS:
        raise ValueError(f"networks must be one of {NETWORKS}, got {networks!r}")
    if settings.dataset != "synthetic":
        raise ValueError("the domain-shift experiment trains on phantoms: synthetic settings only")
    started = time.perf_counter()
    found = dict(families(shifted, randomized, harder, appearance) if phantoms is None
                 else phantoms)
    unknown = [name for name in (*trains, *tests) if name not in found]
    if unknown:
        raise ValueError(f"no phantom family named {unknown}; the families are {list(found)}")
    seeds = [int(s) for s in (settings.experiments.seeds if seeds is None else seeds)]
    data = {name: family_data(settings, store, found[name], plane=plane, structure=structure,
                              progress=progress) for name in trains}
    reference = data[trains[0]]
    for name, other in data.items():
        if other.split.test != reference.split.test:
            raise ValueError(f"the {name} phantoms split into other test patients")
    test_slices = {name: rescanned_test(reference, settings, store, found[name])
                   if name != trains[0] else reference.test for name in tests}
    runs = score_families(settings, store, data, test_slices, seeds, structure, progress, found,
                          networks)
    variants = {cell(train, test): {"train": train, "test": test, "networks": networks}
                for train in trains for test in tests}
    return Comparison(
        experiment="domain_shift", plane=reference.plane, structure=reference.structure,
        seeds=seeds, variants=variants, runs=runs, split=reference.split._asdict(),
        settings=settings.to_dict(), seconds=round(time.perf_counter() - started, 1))


def with_volume_ratio(run: dict, predicted: np.ndarray, reference: np.ndarray,
                      case_ids: np.ndarray) -> dict:
    """``run`` (:func:`~liverseg.train.store.per_case_run` of the same slices) with each
    patient's ``volume_ratio`` — predicted voxels over reference voxels, ``None`` where it has
    no reference voxel — and their mean, ``volume_ratio`` (``None`` when no patient has one)."""
    return _per_case_share(run, "volume_ratio", np.asarray(predicted) > 0.5,
                           np.asarray(reference) > 0.5, case_ids)


def _per_case_share(run: dict, name: str, counted: np.ndarray, reference: np.ndarray,
                    case_ids: np.ndarray) -> dict:
    """``run`` with each patient's |counted| / |reference| as ``name`` and their mean."""
    ids = np.asarray(case_ids)
    cases = []
    for case in run["test_cases"]:
        mine = ids == case["case"]
        total = int(reference[mine].sum())
        cases.append({**case, name: int(counted[mine].sum()) / total if total else None})
    values = [c[name] for c in cases if c[name] is not None]
    return {**run, "test_cases": cases, name: float(np.mean(values)) if values else None}


def with_prior_coverage(run: dict, priors: np.ndarray, reference: np.ndarray,
                        case_ids: np.ndarray) -> dict:
    """``run`` (:func:`~liverseg.train.store.per_case_run` of the same slices) with each
    patient's ``prior_coverage`` — |reference ∩ prior| / |reference| over its slices,
    ``None`` where it has no reference voxel — and their mean, ``prior_coverage`` (``None``
    when no patient has one)."""
    liver = np.asarray(reference) > 0.5
    return _per_case_share(run, "prior_coverage", liver & (np.asarray(priors) > 0.5), liver,
                           case_ids)


def score_families(settings: Profile, store: str | Path, data: Mapping[str, Data],
                   tests: Mapping[str, SliceSet], seeds: Sequence[int], structure: str = "liver",
                   progress: bool = True, phantoms: Mapping[str, PhantomConfig] | None = None,
                   networks: str = "cascade") -> list[dict]:
    """For each seed and training family (``data``: its name → its :class:`Data`, the name a
    key of :func:`families`), train or read back the network(s) (``networks="cascade"``:
    ``train_networks``; ``"localizer"``: :func:`train_localizer`) and score them on each test
    set of ``tests`` (name → slices) and on its own family's test patients with
    :func:`score_on`, cached beside the network (so that every cell, the own family's too,
    has the cascade's prior coverage and volume ratio). One run dict per
    (seed, train, test), with ``own_family``: the ``test_mean`` on its own family's test
    phantoms. ``phantoms``: the families by name (default :func:`families`)."""
    found = dict(phantoms or families())
    runs = []
    for seed in seeds:
        for train, train_data in data.items():
            seeded = settings.replace(phantoms=found[train], **{"train.seed": int(seed)})
            tag = f"{train} phantoms seed {seed}"
            if networks == "cascade":
                trained = train_networks(train_data, seeded, store, progress, tag)
                folder = tuner_folder(store, seeded, train_data) / f"rounds-{rounds_key(seeded)}"
            else:
                trained = train_localizer(train_data, seeded, store, progress, tag)
                folder = trained.folder
            own = score_on(trained, train_data.test, seeded, structure,
                           folder / f"on-{slices_fingerprint(train_data.test)}.json")
            for test, slices in tests.items():
                run = own if test == train else score_on(
                    trained, slices, seeded, structure,
                    folder / f"on-{slices_fingerprint(slices)}.json")
                runs.append({"variant": cell(train, test), "seed": int(seed), "train": train,
                             "test": test, "networks": networks,
                             "own_family": own["test_mean"], **run})
            del trained
    return runs


def run_reach(settings: Profile, store: str | Path, *, plane: str = "coronal",
              seeds: Sequence[int] | None = None, networks: str = "localizer",
              randomized: PhantomConfig | None = None, progress: bool = True) -> Comparison:
    """The reach experiment: :func:`run_domain_shift` of :data:`REACH_TRAIN` ×
    :data:`REACH_TEST` (:func:`reach_families`) along ``plane``."""
    return run_domain_shift(settings, store, seeds=seeds, plane=plane, networks=networks,
                            progress=progress, phantoms=reach_families(randomized),
                            trains=REACH_TRAIN, tests=REACH_TEST)


def summarize_reach(comparison: Comparison) -> tuple[dict, dict]:
    """The reach section's numbers on Dice, as ``(glued, saved)``: ``reach_{cell}`` (mean ±
    sd over seeds), ``reach_gap_{train}`` (mixture's scans − liver-protocol scans, signed) and
    ``reach_lever`` (gap(randomized) − gap(reach), paired by seed, with its verdict: positive
    means the wider reach closes the gap); ``saved`` keeps the gaps and the lever."""
    from liverseg.experiments.tables import describe_difference, mean_sd

    summary = comparison.summary()
    gap = gaps(comparison, REACH_TEST[0], REACH_TEST[1])
    gap_summary = gap.summary()
    lever = gap.difference(*REACH_TRAIN)
    glued = {f"reach_{name}": mean_sd(summary[name]["dice"]) for name in comparison.variants}
    glued.update({f"reach_gap_{train}": mean_sd(gap_summary[train]["dice"], signed=True)
                  for train in gap.variants})
    glued["reach_lever"] = describe_difference(lever)
    return glued, {"gaps": gap_summary, "lever": lever}


def real_scans(settings: Profile, real: Profile, store: str | Path, data_dir, *,
               randomized: PhantomConfig | None = None, seeds: Sequence[int] | None = None,
               plane: str | None = None, structure: str = "liver", networks: str = "cascade",
               progress: bool = True) -> Comparison:
    """The phantom-trained networks of :func:`run_domain_shift` (``settings``: the synthetic
    profile; read back from the store) on the test patients of a real dataset (``real``: the
    profile on ``"lits"`` or ``"ircadb"``, whose root is ``data_dir``). Variants:
    ``cell(train, real.dataset)``."""
    started = time.perf_counter()
    found = families(randomized=randomized)
    seeds = [int(s) for s in (settings.experiments.seeds if seeds is None else seeds)]
    data = {name: family_data(settings, store, found[name], plane=plane, structure=structure,
                              progress=progress) for name in TRAIN_FAMILIES}
    test = real_test_slices(real, store, data_dir, plane=data["classic"].plane,
                            structure=structure, progress=progress)
    runs = score_families(settings, store, data, {real.dataset: test}, seeds, structure,
                          progress, found, networks)
    ids = list(dict.fromkeys(np.asarray(test.case_ids).tolist()))
    return Comparison(
        experiment="domain_shift_real", plane=data["classic"].plane, structure=structure,
        seeds=seeds, variants={cell(t, real.dataset): {"train": t, "test": real.dataset}
                               for t in TRAIN_FAMILIES},
        runs=runs, split={"train": [], "val": [], "test": ids}, settings=real.to_dict(),
        seconds=round(time.perf_counter() - started, 1))


def gaps(comparison: Comparison, reference: str = "classic", target: str = "shifted") -> Comparison:
    """Per training family and seed, the gap ``score(reference test) − score(target test)``
    of every metric, per patient (the same patients in both test families) and their mean.

    The result is a :class:`Comparison` with one variant per training family, so that its
    ``summary()`` is the gap's mean ± sd over seeds and ``difference("classic",
    "randomized")`` the paired difference of the gaps with its within-noise verdict.
    """
    trains = list(dict.fromkeys(v["train"] for v in comparison.variants.values()))
    runs = []
    for train in trains:
        targets = {run["seed"]: run for run in comparison.runs_of(cell(train, target))}
        for run in comparison.runs_of(cell(train, reference)):
            other = targets.get(run["seed"])
            if other is None:
                continue
            shifted = {case["case"]: case for case in other["test_cases"]}
            cases = [{"case": case["case"], **{m: case[m] - shifted[case["case"]][m]
                                               for m in METRICS}}
                     for case in run["test_cases"] if case["case"] in shifted]
            runs.append({"variant": train, "seed": run["seed"], "test_cases": cases,
                         "test_mean": {m: run["test_mean"][m] - other["test_mean"][m]
                                       for m in METRICS},
                         "collapsed": False})
    return Comparison(
        experiment=f"{comparison.experiment}_gaps", plane=comparison.plane,
        structure=comparison.structure, seeds=comparison.seeds,
        variants={train: {"gap": f"{reference} − {target}"} for train in trains}, runs=runs,
        split=comparison.split, settings=comparison.settings, seconds=0.0)


def own_family(comparison: Comparison, metric: str = "dice") -> dict[str, dict]:
    """Per training family, the :func:`~liverseg.experiments.spread` over seeds of its
    networks' ``metric`` on their own family's test phantoms (each run's ``own_family``)."""
    from liverseg.experiments.comparison import spread

    trains = dict.fromkeys(v["train"] for v in comparison.variants.values())
    return {train: spread([run["own_family"][metric]
                           for run in comparison.runs_of(cell(train, TEST_FAMILIES[0]))])
            for train in trains}


def summarize(comparison: Comparison, gap: Comparison | None = None,
              phantoms: Mapping[str, PhantomConfig] | None = None) -> tuple[dict, dict]:
    """The chapter's numbers on Dice, as ``(glued, saved)``.

    ``glued``: the texts its prose glues — ``dice_{cell}`` (mean over seeds),
    ``gap_{train}`` (the gap's mean ± sd, signed), ``own_randomized`` (the randomized network
    on its own family) and ``gap_difference`` (gap(classic) − gap(randomized), paired by seed,
    with its verdict on the noise), and the same for the harder family (``gap_harder_{train}``,
    ``gap_harder_difference``) with, when the comparison trained it, the appearance lever's
    ``gap_harder_lever`` (gap(randomized) − gap(appearance) on the harder family, paired). ``saved``: what its results file keeps beside the
    comparison — ``gaps`` (the gaps' summary), ``gap_difference``, ``own_family``,
    ``gaps_harder``, ``gap_harder_difference``, ``gap_harder_lever`` and, given
    ``phantoms``, ``families`` (each family's settings). ``gap``: :func:`gaps` of
    ``comparison`` when already computed.
    """
    from liverseg.experiments.tables import describe_difference, mean_sd

    gap = gaps(comparison) if gap is None else gap
    summary, gap_summary = comparison.summary(), gap.summary()
    own = own_family(comparison)
    difference = gap.difference("classic", "randomized")
    glued = {f"dice_{name}": f"{summary[name]['dice']['mean']:.3f}"
             for name in comparison.variants}
    glued.update({f"gap_{train}": mean_sd(gap_summary[train]["dice"], signed=True)
                  for train in gap.variants})
    glued["own_randomized"] = f"{own['randomized']['mean']:.3f}"
    glued["gap_difference"] = describe_difference(difference)
    harder = gaps(comparison, target="harder")
    harder_summary = harder.summary()
    harder_difference = harder.difference("classic", "randomized")
    glued.update({f"gap_harder_{train}": mean_sd(harder_summary[train]["dice"], signed=True)
                  for train in harder.variants})
    glued["gap_harder_difference"] = describe_difference(harder_difference)
    saved = {"gaps": gap_summary, "gap_difference": difference, "own_family": own,
             "gaps_harder": harder_summary, "gap_harder_difference": harder_difference}
    if "appearance" in harder.variants:  # the appearance lever: gap(randomized) − gap(appearance)
        lever = harder.difference("randomized", "appearance")
        glued["gap_harder_lever"] = describe_difference(lever)
        saved["gap_harder_lever"] = lever
    if phantoms is not None:
        saved["families"] = {name: dataclasses.asdict(family) for name, family in phantoms.items()}
    return glued, saved


#: the run-level measures :func:`table_2x2` shows where every run has them
MEASURE_TITLES = {"prior_coverage": "liver inside the ROI prior",
                  "volume_ratio": "predicted / reference liver volume"}


def table_2x2(comparison: Comparison, metric: str = "dice") -> str:
    """A Markdown table: training family × test family, ``metric`` mean ± sd over seeds, and
    each training family's gap from its first test family (classic) to each other one; then a
    table of each of :data:`MEASURE_TITLES` every run measured: the predicted over the
    reference volume, and, for cascades, the share of the liver inside the ROI prior (the
    tuner never looks outside it)."""
    from liverseg.experiments.tables import mean_sd

    summary = comparison.summary()
    tests = list(dict.fromkeys(v["test"] for v in comparison.variants.values()))
    trains = list(dict.fromkeys(v["train"] for v in comparison.variants.values()))
    gap = {test: gaps(comparison, tests[0], test).summary() for test in tests[1:]}
    lines = ["| trained on | " + " | ".join(f"tested on {LABELS.get(t, t)}" for t in tests)
             + "".join(f" | gap ({tests[0]} − {t})" for t in tests[1:]) + " |",
             "|---|" + "---|" * (2 * len(tests) - 1)]
    for train in trains:
        cells = [mean_sd(summary[cell(train, test)][metric]) for test in tests]
        cells += [mean_sd(gap[test][train][metric]) for test in tests[1:]]
        lines.append(f"| {LABELS.get(train, train)} | " + " | ".join(cells) + " |")
    for measure, title in MEASURE_TITLES.items():
        if all(measure in row for row in summary.values()):
            lines += ["", f"| {title}, trained on | "
                      + " | ".join(f"tested on {LABELS.get(t, t)}" for t in tests) + " |",
                      "|---|" + "---|" * len(tests)]
            lines += [f"| {LABELS.get(train, train)} | " + " | ".join(
                mean_sd(summary[cell(train, test)][measure]) for test in tests) + " |"
                for train in trains]
    return "\n".join(lines)


def real_test_slices(settings: Profile, store: str | Path, data_dir, *,
                     plane: str | None = None, structure: str = "liver",
                     progress: bool = True) -> SliceSet:
    """The test patients of a real dataset (``settings.dataset`` ``"lits"`` / ``"ircadb"``,
    split as every chapter splits it) cut at the profile's size into ``store/real-{dataset}``,
    for :func:`score_on` of phantom-trained networks."""
    from liverseg.datasets.split import split_cases
    from liverseg.train.system import load_cases

    plane = plane or settings.experiments.plane
    cases = {case.case_id: case for case in load_cases(settings, data_dir, progress)}
    split = split_cases(cases, settings.split.fractions, settings.split.seed)
    if not split.test:
        raise InvalidDataError(f"{len(cases)} {settings.dataset} cases leave no test patient; "
                               "use more cases (n_cases)", data_dir)
    folder = Path(store) / f"real-{settings.dataset}" / f"{plane}-{structure}"
    return build_slices([cases[i] for i in split.test], plane, settings.image_size,
                        settings.preprocess, structure, settings.inference.liver_margin,
                        folder=folder, lesion_view=settings.inference.lesion_view)


def plot_families(settings: Profile, case_id: str, phantoms: Mapping[str, PhantomConfig],
                  window: tuple[float, float] = (-160.0, 240.0), axes=None):
    """One patient scanned as each family: the axial slice with the most liver, in HU
    (soft-tissue window), the reference liver outlined. Returns the axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, len(phantoms), figsize=(3.2 * len(phantoms), 3.4))
    for ax, (name, config) in zip(np.atleast_1d(axes), phantoms.items()):
        case = rescan([case_id], settings, config)[0]
        liver = case.label > 0
        k = int(np.argmax(liver.sum(axis=(1, 2))))
        ax.imshow(case.image.array[k], cmap="gray", vmin=window[0], vmax=window[1])
        ax.contour(liver[k], levels=[0.5], colors="tab:orange", linewidths=0.8)
        ax.set_title(LABELS.get(name, name), fontsize=9)
        ax.axis("off")
    return axes
