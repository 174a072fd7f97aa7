"""The whole system of the paper, trained: both cascades on every plane of the profile.

:func:`train_system` splits the patients 70 / 20 / 10 (:func:`liverseg.datasets.split.split_cases`),
and for each plane trains the liver cascade and, inside the liver, the lesion cascade (the
two-stage reading of Christ et al.: the lesion networks see the reference liver, grown by
``InferenceConfig.liver_margin`` voxels, cut out as :mod:`liverseg.lesion_view` says, and learn
the lesion label 2 as their foreground). It writes into ``out``:

* ``model/`` — the model folder that ``liverseg segment`` reads (:mod:`liverseg.model_folder`);
* ``store/`` — the slices, checkpoints, logs and priors of every cascade, in the layout of
  :mod:`liverseg.train.store` (the book's chapters use the same one): a killed run resumes
  from them, and a chapter run on ``out`` with the same settings reads the networks back;
* ``split.json`` — the patients of each subset (the held-out phantoms of
  ``experiments.test_phantoms`` among the test patients);
* ``training.json`` — the settings tree and every cascade's report (slice counts, logs,
  validation/test scores per network, Algorithm 1's history), written at the end.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import keras
import numpy as np

from liverseg import __version__
from liverseg.config import Profile
from liverseg.datasets.split import save_split
from liverseg.errors import InvalidDataError
from liverseg.io.atomic import atomic_write_text
from liverseg.lesion_synthesis import with_synthetic_copies
from liverseg.model_folder import write_model_folder
from liverseg.train.cascade import UnlabelledSlices
from liverseg.train.slices import build_slices


def load_cases(settings: Profile, data_dir=None, progress: bool = True) -> list:
    """The cases a profile trains on: synthetic phantoms, or LiTS / 3D-IRCADb-01 from ``data_dir``.

    Phantoms are :attr:`~liverseg.config.Profile.phantom_shape` volumes, ``n_cases`` of them,
    made from ``settings.split.seed`` and scanned as ``settings.phantoms`` says; a real dataset
    gives its first ``n_cases`` cases (all if ``None``).
    """
    from liverseg.datasets import ircadb, lits, synthetic

    if settings.dataset == "synthetic":
        return list(synthetic.iter_cases(settings.n_cases or 10, seed=settings.split.seed,
                                         shape=settings.phantom_shape, config=settings.phantoms))
    if not data_dir:
        raise InvalidDataError(f"dataset {settings.dataset!r} needs --data-dir")
    module = {"lits": lits, "ircadb": ircadb}[settings.dataset]
    cases = []
    for case in module.iter_cases(data_dir, progress=progress):
        cases.append(case)
        if settings.n_cases and len(cases) >= settings.n_cases:
            break
    return cases


def held_out_phantoms(settings: Profile, n_cases: int) -> list:
    """``n_cases`` phantoms like :func:`load_cases`'s but of another dataset seed
    (``experiments.held_out_seed + split.seed``), so none of them is in the training data."""
    from liverseg.datasets import synthetic

    seed = settings.experiments.held_out_seed + settings.split.seed
    return list(synthetic.iter_cases(n_cases, seed=seed,
                                     shape=settings.phantom_shape, config=settings.phantoms))


def unlabelled_phantoms(settings: Profile, n_cases: int) -> list:
    """``n_cases`` phantoms like :func:`load_cases`'s but of a dataset seed of their own
    (``self_training.unlabelled_seed + split.seed``): neither training nor held-out test
    patients."""
    from liverseg.datasets import synthetic

    seed = settings.self_training.unlabelled_seed + settings.split.seed
    return list(synthetic.iter_cases(n_cases, seed=seed,
                                     shape=settings.phantom_shape, config=settings.phantoms))


def unlabelled_phantom_slices(settings: Profile, plane: str,
                              structure: str = "liver") -> UnlabelledSlices | None:
    """The slices along ``plane`` of the ``self_training.unlabelled_phantoms`` phantoms of
    :func:`unlabelled_phantoms`, as ``structure``'s networks see them, without their labels
    (dropped here, before anything else sees them; a lesion view is still cut around the
    reference liver). ``None`` when the setting is 0."""
    count = settings.self_training.unlabelled_phantoms
    if not count:
        return None
    stage = settings.stage(structure)
    slices = build_slices(unlabelled_phantoms(settings, count), plane, stage.image_size,
                          settings.preprocess, structure, settings.inference.liver_margin,
                          lesion_view=settings.inference.lesion_view)
    return UnlabelledSlices(np.asarray(slices.images), np.asarray(slices.hu),
                            np.asarray(slices.case_ids))


def train_system(settings: Profile, out, cases=None, data_dir=None, progress: bool = True) -> Path:
    """Train every network of the system; return the model folder ``out/model``.

    ``cases`` (a list of :class:`~liverseg.datasets.base.Case`) defaults to
    :func:`load_cases`. Each cascade is trained through the store of trained networks,
    ``out/store`` (:func:`liverseg.train.store.prepare` and
    :func:`~liverseg.train.store.train_networks`: the one training path, the book's chapters
    train with it too), so rerunning with the same ``out`` resumes — finished networks are
    read back, a network that was being trained continues from its last epoch — and a
    chapter run on ``out`` (``run_dir``) with the same settings and data reads these networks
    back instead of training them again. A different settings tree in an existing ``out`` is
    refused.
    """
    from liverseg.train.store import prepare, train_networks

    out = Path(out)
    _check_same_settings(out, settings)
    started = time.perf_counter()
    cases = load_cases(settings, data_dir, progress) if cases is None else list(cases)
    out.mkdir(parents=True, exist_ok=True)  # only once there is something to train on
    if not (out / "settings.json").is_file():
        atomic_write_text(out / "settings.json",
                          json.dumps(settings.to_dict(), indent=1, sort_keys=True))
    structures = ("liver", "lesion") if settings.inference.lesions else ("liver",)
    networks, reports, split = {}, {}, None
    for plane in settings.planes:
        for structure in structures:
            data = prepare(settings, out / "store", plane=plane, structure=structure,
                           cases=cases, progress=progress)
            trained = train_networks(data, settings, out / "store", progress,
                                     f"{plane}/{structure}")
            networks[plane, structure, "localizer"] = trained.front.localizer.path
            networks[plane, structure, "tuner"] = trained.model_path
            reports[f"{plane}/{structure}"] = cascade_report(trained, data)
            split = data.split
            del data, trained
    save_split(split, out / "split.json")
    seconds = time.perf_counter() - started
    info = {"keras_backend": keras.backend.backend(), "keras_version": keras.__version__,
            "train_seconds": round(seconds, 1), "split": split._asdict()}
    model_dir = write_model_folder(out / "model", settings, networks, info).parent
    summary = {"liverseg_version": __version__, "settings": settings.to_dict(), **info,
               "cascades": reports}
    atomic_write_text(out / "training.json", json.dumps(summary, indent=1) + "\n")
    return model_dir


def cascade_report(trained, data) -> dict:
    """What ``training.json`` says of one cascade (a :class:`~liverseg.train.store.Trained` on
    its :class:`~liverseg.train.store.Data`): slice counts, each network's best epoch, log and
    validation scores, the test patients' mean scores, Algorithm 1's history, and the box
    prior's coverage of the structure on the validation slices and the tuner inside and
    outside it."""
    from liverseg.metrics import prior_scores
    from liverseg.predict import predict_probability, predict_tuned
    from liverseg.train.cascade import choose_training_slices
    from liverseg.train.scores import overlap_scores

    stage = Profile.from_dict(trained.run["settings"])
    structure, val, front = data.structure, data.val, trained.front
    batch = stage.inference.batch_size
    target = val.target(structure)
    tuned = predict_tuned(trained.model, val.images, front.val_priors, batch)
    return {
        "structure": structure,
        "train_slices": int(len(choose_training_slices(data.train, structure, stage))),
        "val_slices": int(len(val)),
        "localizer": {"best_epoch": front.localizer.best_epoch, "log": front.localizer.history,
                      "val": overlap_scores(predict_probability(front.localizer.model,
                                                                val.images, batch), target)},
        "tuner": {"best_epoch": trained.tuner.best_epoch, "log": trained.tuner.history,
                  "val": overlap_scores(tuned, target)},
        "test": trained.run["test_mean"],
        "self_training": trained.run["self_training"],
        "prior_val": prior_scores(front.val_priors > 0.5, target > 0.5, tuned > 0.5),
    }


def stage_cases(stage: Profile, structure: str, subset: str, cases: list) -> list:
    """The cases a stage cuts its ``subset`` slices from: the liver stage's training phantoms
    are joined by their appearance draws (``phantoms.appearance_draws``,
    :func:`liverseg.datasets.synthetic.with_appearance_draws`, drawn with ``split.seed``); the
    lesion stage's training cases are joined by their synthetic copies (``lesion.synthesis``,
    :func:`liverseg.lesion_synthesis.with_synthetic_copies`, drawn with ``split.seed``), and
    so are its validation cases with ``lesion.synthesis.validation`` (draw 1 alone with
    ``per_epoch``: the epoch is chosen on the same lesions every epoch); test cases never."""
    if structure == "liver":
        if subset != "train" or stage.dataset != "synthetic" or not stage.phantoms.appearance_draws:
            return cases
        from liverseg.datasets.synthetic import with_appearance_draws

        return with_appearance_draws(cases, stage.split.seed, stage.phantom_shape, stage.phantoms)
    synthesis = drawn_synthesis(stage, subset)
    joined = subset == "train" or (subset == "val" and synthesis.validation)
    if not joined:
        return cases
    return with_synthetic_copies(cases, stage.split.seed, synthesis)


def drawn_synthesis(stage: Profile, subset: str = "train"):
    """The lesion stage's ``lesion.synthesis`` as :func:`stage_cases` draws it for ``subset``:
    with ``per_epoch``, validation gets draw 1 alone, and training no more draws than its
    epoch budget (``train.epochs``) reads."""
    synthesis = stage.lesion.synthesis
    if not synthesis.per_epoch:
        return synthesis
    copies = 1 if subset == "val" else min(synthesis.copies, stage.train.epochs)
    return dataclasses.replace(synthesis, copies=copies)


def _check_same_settings(out: Path, settings: Profile) -> None:
    """Refuse to resume a run of other settings. The saved tree is read back through
    :class:`Profile` first, so a run saved before a setting existed (which then takes its
    default) resumes when that default is what ``settings`` holds; ``experiments`` (which
    training does not read) and the execution-only settings (``train.devices``) may differ."""
    path = out / "settings.json"
    if path.is_file():
        try:
            saved = Profile.from_dict(json.loads(path.read_text())).learned_settings()
            saved = json.loads(json.dumps(saved))  # tuples → lists, as ``current``
        except (ValueError, TypeError) as error:
            raise InvalidDataError(f"unreadable settings ({error})", path) from error
        current = json.loads(json.dumps(settings.learned_settings()))
        for tree in (saved, current):
            tree.pop("experiments")  # the experiment chapters' settings; training ignores them
        if saved != current:
            raise InvalidDataError(
                "this folder holds a run with other settings; choose a new --out or delete it", out)
