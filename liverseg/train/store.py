"""The store of trained networks: one training path for ``liverseg train`` and the chapters.

A cascade (localizer, priors, tuner, Algorithm 1) of one plane and structure is trained on
the slices of a split by :func:`train_networks`, and every network it trains is kept in a
**store** folder, keyed by the settings it depends on, so nothing is trained twice:
``liverseg train`` (:func:`liverseg.train.system.train_system`, whose store is ``OUT/store``)
and the book's chapters (``RUN/store``) read back what the other trained with the same
settings on the same data; variants that leave the localizer and its priors alone share
them; a chapter executed again re-reads instead of re-training::

    store/slices/{plane}-{structure}/{train,val,test}/     the slices (memmaps, built once)
    store/{plane}-{structure}/data-{fingerprint}/seed-{s}/
        front-{key}/                 localizer, priors_{train,val,test}.npy
        tuner-{key}/tuner/           the tuning network
        tuner-{key}/rounds-{key}/    Algorithm 1's rounds, ``best.keras`` and ``scores.json``

(keys: :func:`front_key`, :func:`tuner_key`, :func:`rounds_key`, of the settings of each
stage as :mod:`liverseg.config.stages` declares them; the fingerprint is
:attr:`Data.fingerprint`, so networks trained on other data — another dataset folder, or
phantoms from another version of the generator — are never read back). A folder whose
stamp (``settings.json``) holds other settings — a hash collision, or keys changed by an
update — is emptied before it is used.

Scores are those of :func:`liverseg.train.scores.overlap_scores` (accuracy, Dice, foreground
IoU, mIoU of background and foreground) of the slices of one test patient stacked together at
the model's input size, thresholded at ``inference.threshold``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

import keras

from liverseg.config import ExperimentConfig, PhantomConfig, Profile
from liverseg.config.stages import stage_tree
from liverseg.datasets.split import Split, split_cases
from liverseg.errors import InvalidDataError
from liverseg.io.atomic import atomic_write_text
from liverseg.train.cascade import (Front, choose_training_slices, self_train_tuner,
                                    join_unlabelled, train_front, train_tuner,
                                    unlabelled_slices, with_unlabelled_priors)
from liverseg.train.loop import FitResult
from liverseg.train.scores import METRICS, overlap_scores
from liverseg.train.slices import SliceSet, build_slices


@dataclasses.dataclass
class Data:
    """The split and the slices every variant of a comparison shares."""

    split: Split
    train: SliceSet
    val: SliceSet
    test: SliceSet
    plane: str
    structure: str
    test_cases: list  # the test patients' Case objects (whole volumes), in split order
    fingerprint: str = ""  # of the split and the slices' values (see :func:`data_fingerprint`)


@dataclasses.dataclass
class Trained:
    """One variant trained for one seed: its networks, priors and scores (:func:`train_networks`)."""

    run: dict
    front: Front
    tuner: FitResult
    model: keras.Model  # the tuner after Algorithm 1 (the best round)
    model_path: Path  # where ``model`` is saved: Algorithm 1's best round, else the tuner


def prepare(settings: Profile, store: str | Path, *, plane: str | None = None,
            structure: str = "liver", cases=None, data_dir=None, progress: bool = True) -> Data:
    """Split the cases and cut the slices of every subset along ``plane`` into ``store``.

    ``cases`` default to :func:`liverseg.train.system.load_cases`; with
    ``settings.experiments.test_phantoms`` that many held-out phantoms join the test patients.

    Raises:
        InvalidDataError: no validation or no test patient.
        ValueError: ``test_phantoms`` on a real dataset.
    """
    from liverseg.train.system import drawn_synthesis, held_out_phantoms, load_cases, stage_cases

    plane = plane or settings.experiments.plane
    cases = load_cases(settings, data_dir, progress) if cases is None else list(cases)
    by_id = {case.case_id: case for case in cases}
    split = split_cases(by_id, settings.split.fractions, settings.split.seed)
    extra = settings.experiments.test_phantoms
    if extra:
        if settings.dataset != "synthetic":
            raise ValueError("experiments.test_phantoms adds phantoms: synthetic data only")
        held_out = held_out_phantoms(settings, extra)
        by_id.update((case.case_id, case) for case in held_out)
        split = split._replace(test=split.test + [case.case_id for case in held_out])
    if not split.val or not split.test:
        raise InvalidDataError(f"{len(cases)} cases leave no validation or no test patient; "
                               "use more cases or experiments.test_phantoms")
    folder = Path(store) / "slices" / f"{plane}-{structure}"
    if settings.dataset == "synthetic" and settings.phantoms != PhantomConfig.classic():
        # a slice folder is reused by case id; phantoms scanned otherwise are other pixels
        folder = folder.parent / f"phantoms-{settings.phantoms.key()}" / folder.name
    stage = settings.stage(structure)  # the lesion view has its own input size
    synthesis = drawn_synthesis(stage)
    if structure == "lesion" and synthesis.share:  # synthetic copies are other pixels
        drawn = dataclasses.asdict(synthesis)
        if not synthesis.per_epoch:  # the folders cut before the setting existed
            drawn.pop("per_epoch")
        folder = folder / f"synthesis-{_hash(drawn)}"
    subsets = [build_slices(stage_cases(stage, structure, subset, [by_id[i] for i in ids]),
                            plane, stage.image_size,
                            settings.preprocess, structure, settings.inference.liver_margin,
                            folder=folder / subset, lesion_view=settings.inference.lesion_view)
               for subset, ids in zip(split._fields, split)]
    return Data(split, *subsets, plane, structure, [by_id[i] for i in split.test],
                data_fingerprint(split, subsets))


def data_fingerprint(split: Split, subsets: Sequence[SliceSet], samples: int = 65536) -> str:
    """A short hash of the split and of the slices: their shapes and ``samples`` values spread
    over each stack of images and labels (a few hundred MB read on all of LiTS, not all of it)."""
    digest = hashlib.sha1(json.dumps(split._asdict(), sort_keys=True).encode())
    for subset in subsets:
        for array in (subset.images, subset.labels):
            flat = array.reshape(-1)
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(flat[::max(1, flat.size // samples)]).tobytes())
    return digest.hexdigest()[:10]


def train_networks(data: Data, settings: Profile, store: str | Path,
                   progress: bool = True, tag: str = "") -> Trained:
    """Train (or read back) the cascade of ``settings`` for its ``train.seed`` and score it.

    The localizer and priors go to :func:`front_folder`, the tuner to :func:`tuner_folder`,
    Algorithm 1 (``self_training.iterations`` rounds, none when 0) and ``scores.json`` into
    the tuner's ``rounds-{rounds_key}`` subfolder. Algorithm 1 gets the unlabelled patients'
    slices the settings ask for (``self_training.unlabelled_share`` of the training patients,
    ``self_training.unlabelled_phantoms`` more), with priors of the front's localizer. The run
    dict holds the validation scores, the per-case test scores, their mean, whether the tuner
    collapsed, its log and best epoch, Algorithm 1's history and the settings (of the
    structure's stage, :meth:`Profile.stage`).
    """
    structure = data.structure
    settings = settings.stage(structure)
    chosen = choose_training_slices(data.train, structure, settings)
    front_dir = front_folder(store, settings, data)
    tuner_dir = tuner_folder(store, settings, data)
    rounds_dir = _fresh(tuner_dir / f"rounds-{rounds_key(settings)}",
                        stage_tree(settings, "rounds"))
    tic = time.perf_counter()
    front = train_front(chosen, data.val, data.test, structure, settings, front_dir, progress,
                        tag)
    tuner = train_tuner(chosen, data.val, front, structure, settings, tuner_dir / "tuner",
                        progress, f"{tag} tuner".strip())
    run = _read_run(rounds_dir, settings)
    if run is not None:
        path = rounds_dir / "best.keras"
        if not path.is_file():
            return Trained(run, front, tuner, tuner.model, tuner.path)
        return Trained(run, front, tuner, keras.saving.load_model(path, compile=False), path)
    from liverseg.train.system import unlabelled_phantom_slices

    unlabelled = join_unlabelled(unlabelled_slices(data.train, settings),  # self_training's
                                 unlabelled_phantom_slices(settings, data.plane, structure))
    front = with_unlabelled_priors(front, unlabelled, settings, front_dir)
    model, history, best_path = self_train_tuner(tuner.model, chosen, data.val, data.test, front,
                                                 structure, settings, rounds_dir, progress, tag,
                                                 unlabelled=unlabelled)
    model_path = tuner.path
    if best_path is not None:
        model_path = rounds_dir / "best.keras"
        shutil.copyfile(best_path, model_path)
    run = _score(model, front, data.val, data.test, structure, settings)
    run.update(seed=int(settings.train.seed), best_epoch=tuner.best_epoch, log=tuner.history,
               self_training=history, seconds=round(time.perf_counter() - tic, 1),
               unlabelled_patients=sorted(set(unlabelled.case_ids.tolist())) if unlabelled else [],
               unlabelled_slices=int(len(unlabelled)) if unlabelled else 0,
               settings=settings.to_dict())
    text = json.dumps(run, indent=1)
    atomic_write_text(rounds_dir / "scores.json", text)
    return Trained(json.loads(text), front, tuner, model, model_path)  # as it reads back


def front_folder(store: str | Path, settings: Profile, data: Data) -> Path:
    """The store's folder of the localizer and priors of ``settings`` on ``data`` (created),
    for :func:`liverseg.train.cascade.train_front`. Keyed by ``data.structure``'s stage
    (:meth:`Profile.stage`), so a chapter that trains with the profile itself finds the
    networks :func:`train_networks` trained, and the other way round."""
    settings = settings.stage(data.structure)
    return _fresh(_seed_folder(store, settings, data) / f"front-{front_key(settings)}",
                  stage_tree(settings, "localizer"))


def tuner_folder(store: str | Path, settings: Profile, data: Data) -> Path:
    """The store's folder of the tuning network of ``settings`` on ``data`` (created); the
    network itself trains in its ``tuner`` subfolder
    (:func:`liverseg.train.cascade.train_tuner`). Keyed by the stage, as :func:`front_folder`."""
    settings = settings.stage(data.structure)
    return _fresh(_seed_folder(store, settings, data) / f"tuner-{tuner_key(settings)}",
                  stage_tree(settings, "tuner"))


def _seed_folder(store, settings: Profile, data: Data) -> Path:
    return (Path(store) / f"{data.plane}-{data.structure}" / f"data-{data.fingerprint}"
            / f"seed-{settings.train.seed}")


def front_key(settings: Profile) -> str:
    """A short hash of the settings the localizer and its priors depend on (the
    ``"localizer"`` stage of :mod:`liverseg.config.stages`)."""
    return _hash(stage_tree(settings, "localizer"))


def tuner_key(settings: Profile) -> str:
    """A short hash of the settings the tuning network's training depends on (the
    ``"tuner"`` stage and the earlier one)."""
    return _hash(stage_tree(settings, "tuner"))


def rounds_key(settings: Profile) -> str:
    """A short hash of the settings Algorithm 1 and the scoring depend on (every keyed
    stage, up to ``"rounds"``)."""
    return _hash(stage_tree(settings, "rounds"))


def _hash(tree: dict) -> str:
    return hashlib.sha1(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:10]


def _score(model, front, val, test, structure: str, settings: Profile) -> dict:
    from liverseg.predict import predict_tuned

    batch = settings.inference.batch_size
    val_probability = predict_tuned(model, val.images, front.val_priors, batch)
    test_probability = predict_tuned(model, test.images, front.test_priors, batch)
    return {"val": overlap_scores(val_probability, val.target(structure)),
            **per_case_run(test_probability > settings.inference.threshold, test.target(structure),
                           test.case_ids, settings.experiments.collapse_dice)}


def case_row(case_id: str, prediction: np.ndarray, reference: np.ndarray) -> dict:
    """One test patient's scores: :func:`~liverseg.train.scores.overlap_scores` of a boolean
    (or probability, thresholded at 0.5) prediction against the 0/1 reference, and voxel counts."""
    reference = np.asarray(reference) > 0.5
    prediction = np.asarray(prediction) > 0.5
    return {"case": case_id, **overlap_scores(prediction, reference),
            "reference_voxels": int(reference.sum()), "predicted_voxels": int(prediction.sum())}


def run_of_cases(cases: list[dict],
                 collapse_dice: float = ExperimentConfig.collapse_dice) -> dict:
    """A run's per-case rows, their mean per metric, and whether it collapsed
    (:func:`collapsed`)."""
    return {"test_cases": cases,
            "test_mean": {m: float(np.mean([c[m] for c in cases])) for m in METRICS},
            "collapsed": collapsed(cases, collapse_dice)}


def collapsed(cases: list[dict], collapse_dice: float = ExperimentConfig.collapse_dice) -> bool:
    """Whether a run collapsed: its Dice below ``collapse_dice`` (the setting
    ``experiments.collapse_dice``) on every patient of ``cases`` (:func:`case_row` rows) that
    has the structure."""
    with_structure = [c for c in cases if c["reference_voxels"]]
    return bool(with_structure) and all(c["dice"] < collapse_dice for c in with_structure)


def per_case_run(prediction: np.ndarray, reference: np.ndarray, case_ids: np.ndarray,
                 collapse_dice: float = ExperimentConfig.collapse_dice) -> dict:
    """:func:`run_of_cases` of slice stacks: the rows of each patient scored together."""
    cases = [case_row(case_id, prediction[case_ids == case_id], reference[case_ids == case_id])
             for case_id in dict.fromkeys(case_ids.tolist())]  # in slice order
    return run_of_cases(cases, collapse_dice)


def _read_run(folder: Path, settings: Profile) -> dict | None:
    path = folder / "scores.json"
    if not path.is_file():
        return None
    run = json.loads(path.read_text())
    try:
        saved = stage_tree(Profile.from_dict(run.get("settings") or {}), "rounds")
    except (TypeError, ValueError):  # a settings tree this version cannot read
        return None
    same = (json.dumps(saved, sort_keys=True)
            == json.dumps(stage_tree(settings, "rounds"), sort_keys=True))
    if not same:
        return None
    # experiments.collapse_dice is in no key: the flag is read with today's setting
    run["collapsed"] = collapsed(run["test_cases"], settings.experiments.collapse_dice)
    return run


def _fresh(folder: Path, tree: dict) -> Path:
    """``folder``, holding work of the settings ``tree`` only: a folder of other settings (a
    hash collision, or a key scheme changed by an update) is emptied first, since
    :func:`~liverseg.train.loop.fit` would resume from its checkpoints."""
    text = json.dumps(tree, indent=1, sort_keys=True)
    stamp = folder / "settings.json"
    if stamp.is_file() and stamp.read_text() != text:
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not stamp.is_file():
        atomic_write_text(stamp, text)
    return folder
