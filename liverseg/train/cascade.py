"""One cascade of the paper for one structure and one plane: localizer → ROI prior → tuner.

:func:`train_front` trains the localization network on whole slices and makes the ROI priors
the tuning network learns from, :func:`train_tuner` trains the tuning network with the
multi-level loss, and :func:`self_train_tuner` runs Algorithm 1 on it
(:mod:`liverseg.train.self_training`); :func:`liverseg.train.store.train_networks` runs the
three, keeping each in the store of trained networks. The tuning network's training priors
are **out-of-fold** (``TrainConfig.prior_folds`` ≥ 2): the training patients are cut into
folds, a localizer is trained on all folds but one and makes the priors of that one, so the
tuner learns from priors as imperfect as those it gets at inference, never from a localizer
looking at its own training slices. Validation priors come from the final localizer, which
never saw those patients. Every step writes into its own folder and is skipped when already
finished, so a killed run resumes where it stopped.

With ``SelfTrainingConfig.unlabelled_share`` > 0 some training patients are unlabelled
(:func:`~liverseg.train.self_training.unlabelled_patients`): :func:`choose_training_slices`
leaves them out, so neither network nor any prior of the annotated patients learns from their
labels; :func:`unlabelled_slices` gives their slices without labels, the final localizer makes
their priors (``Front.unlabelled_priors``) and Algorithm 1 cuts them into patches.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path

import keras
import numpy as np

from liverseg import losses, models
from liverseg.config import Profile
from liverseg.io.atomic import atomic_path
from liverseg.lesion_synthesis import epoch_rows, source_case_id
from liverseg.predict import predict_priors
from liverseg.prior_jitter import prior_augment
from liverseg.train.loop import FitResult, fit
from liverseg.train.self_training import self_train, unlabelled_patients
from liverseg.train.slices import SliceSet, balanced_order, target_mask, training_indices


@dataclasses.dataclass(frozen=True)
class UnlabelledSlices:
    """The slices of the patients Algorithm 1 treats as unlabelled: what a network may see of
    them. ``images`` (network input) and ``hu`` (for the CRF) are ``(N, S, S)`` float32,
    ``case_ids`` ``(N,)``; there are no labels."""

    images: np.ndarray
    hu: np.ndarray
    case_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


@dataclasses.dataclass
class Front:
    """The first half of a cascade: the localizer and the ROI priors the tuner learns and is
    judged with. Arrays ``(N, S, S)`` float32 0/1; ``test`` is ``None`` without test slices."""

    localizer: FitResult
    train_priors: np.ndarray
    val_priors: np.ndarray
    test_priors: np.ndarray | None
    unlabelled_priors: np.ndarray | None = None  # of :func:`unlabelled_slices`, if any


def choose_training_slices(train: SliceSet, structure: str, settings: Profile) -> SliceSet:
    """The training slices a cascade learns from, in memory: of the annotated patients (all
    but the unlabelled ones, :func:`labelled_rows`), every slice with ``structure`` plus
    ``train.empty_slice_fraction`` of the others (drawn with ``train.seed``). The unlabelled
    patients' labels are not read."""
    t = settings.train
    rows = labelled_rows(train, settings)
    if rows is None:  # every patient annotated: as before the setting existed
        return train.take(training_indices(train.labels, structure, t.empty_slice_fraction,
                                           t.seed))
    return train.take(rows[training_indices(train.labels[rows], structure,
                                            t.empty_slice_fraction, t.seed)])


def labelled_rows(train: SliceSet, settings: Profile) -> np.ndarray | None:
    """Indices (sorted, int64) of the slices of the annotated training patients, ``None`` when
    every patient is (``self_training.unlabelled_share`` 0). A synthetic copy of an unlabelled
    patient is left out with it (it was made from its labels)."""
    hidden = _unlabelled_mask(train, settings)
    return None if hidden is None else np.flatnonzero(~hidden).astype(np.int64)


def unlabelled_slices(train: SliceSet, settings: Profile) -> UnlabelledSlices | None:
    """The unlabelled patients' own slices (not their synthetic copies), every one of them —
    none is chosen by its label — without labels; ``None`` when every patient is annotated."""
    hidden = _unlabelled_mask(train, settings)
    if hidden is None:
        return None
    rows = np.flatnonzero(hidden & (train.case_ids.astype(object) == _sources(train.case_ids)))
    return UnlabelledSlices(np.asarray(train.images[rows]), np.asarray(train.hu[rows]),
                            np.asarray(train.case_ids[rows]))


def join_unlabelled(*parts: UnlabelledSlices | None) -> UnlabelledSlices | None:
    """The slices of every part one after the other (``None`` parts skipped; ``None`` if all
    are)."""
    parts = [part for part in parts if part is not None]
    if len(parts) < 2:
        return parts[0] if parts else None
    return UnlabelledSlices(*(np.concatenate([getattr(part, name) for part in parts])
                              for name in ("images", "hu", "case_ids")))


def _sources(case_ids: np.ndarray) -> np.ndarray:
    """The patient of each slice (a synthetic copy's is its source's), as an object array."""
    return np.array([source_case_id(c) for c in case_ids.tolist()], dtype=object)


def _unlabelled_mask(train: SliceSet, settings: Profile) -> np.ndarray | None:
    """Per slice of ``train``: is its patient unlabelled? ``None`` when none is."""
    share = settings.self_training.unlabelled_share
    if not share:
        return None
    hidden = unlabelled_patients(train.case_ids, share, settings.split.seed)
    return np.isin(_sources(train.case_ids), hidden)


def train_front(chosen: SliceSet, val: SliceSet, test: SliceSet | None, structure: str,
                settings: Profile, workdir: str | Path, progress: bool = True,
                tag: str = "", unlabelled: UnlabelledSlices | None = None) -> Front:
    """Train the localizer in ``workdir/localizer`` and make the priors of every subset.

    Training priors are out-of-fold (:func:`out_of_fold_priors`), validation and test priors
    come from the final localizer, and so do those of the ``unlabelled`` slices (a localizer
    that never saw their labels); all are cached as ``priors_{train,val,test}.npy`` and
    ``priors_unlabelled-{digest of the slices}.npy`` in ``workdir``, so a second call with the
    same folder trains and predicts nothing.
    """
    workdir = Path(workdir)
    batch = settings.inference.batch_size
    localizer = _fit_localizer(settings, structure, (chosen.images[..., None], chosen.labels),
                               (val.images[..., None], val.labels), workdir / "localizer",
                               progress, f"{tag} localizer".strip(), case_ids=chosen.case_ids)
    train_priors = _cached(workdir / "priors_train.npy",
                           lambda: out_of_fold_priors(chosen, structure, settings, workdir,
                                                       localizer, progress, tag))
    val_priors = _cached(workdir / "priors_val.npy",
                         lambda: predict_priors(localizer.model, val.images, val.hu,
                                                settings.prior, batch))
    test_priors = None
    if test is not None and len(test):
        test_priors = _cached(workdir / "priors_test.npy",
                              lambda: predict_priors(localizer.model, test.images, test.hu,
                                                     settings.prior, batch))
    front = Front(localizer, train_priors, val_priors, test_priors)
    return with_unlabelled_priors(front, unlabelled, settings, workdir)


def with_unlabelled_priors(front: Front, unlabelled: UnlabelledSlices | None, settings: Profile,
                           workdir: str | Path) -> Front:
    """``front`` with the priors of the ``unlabelled`` slices (``None`` or empty: none), made
    by its final localizer and cached in ``workdir`` as :func:`train_front` says."""
    if unlabelled is None or not len(unlabelled):
        return dataclasses.replace(front, unlabelled_priors=None)
    priors = _cached(Path(workdir) / f"priors_unlabelled-{_digest(unlabelled)}.npy",
                     lambda: predict_priors(front.localizer.model, unlabelled.images,
                                            unlabelled.hu, settings.prior,
                                            settings.inference.batch_size))
    return dataclasses.replace(front, unlabelled_priors=priors)


def train_tuner(chosen: SliceSet, val: SliceSet, front: Front, structure: str, settings: Profile,
                workdir: str | Path, progress: bool = True, desc: str = "tuner") -> FitResult:
    """Train the tuning network with the multi-level loss (``train.loss_scheme``) on the
    chosen slices and their priors, choosing the epoch on the validation slices. With
    ``train.prior_jitter`` a share of the training priors of every epoch is perturbed
    (:func:`liverseg.prior_jitter.prior_augment`); the validation priors never are."""
    n_levels = len(settings.tuning.output_names)
    return fit(
        lambda: models.build_tuning_net(settings),
        losses.tuning_losses(settings.train, n_levels),
        ({"image": chosen.images[..., None], "prior": front.train_priors[..., None]},
         chosen.labels),
        ({"image": val.images[..., None], "prior": front.val_priors[..., None]}, val.labels),
        workdir, settings.train, progress=progress, desc=desc,
        targets=functools.partial(tuner_targets, structure=structure, n_levels=n_levels),
        sampler=epoch_sampler(chosen.labels, structure, settings, chosen.case_ids),
        augment=prior_augment(settings.train.prior_jitter),
    )


def self_train_tuner(tuner: keras.Model, chosen: SliceSet, val: SliceSet, test: SliceSet | None,
                     front: Front, structure: str, settings: Profile, workdir: str | Path,
                     progress: bool = True, tag: str = "",
                     unlabelled: UnlabelledSlices | None = None):
    """Algorithm 1 on a trained tuner (:func:`liverseg.train.self_training.self_train`), with
    the test slices scored in its history when there are any, and the ``unlabelled`` slices
    (with ``front.unlabelled_priors``) cut into patches when there are any. With copies read
    one per epoch (:func:`epoch_draws`) it cuts the rows of epoch 0.

    Raises ``ValueError`` for ``unlabelled`` slices without ``front.unlabelled_priors``."""
    test_inputs = None
    if test is not None and len(test):
        test_inputs = (test.images, front.test_priors, test.target(structure))
    unlabelled_inputs = None
    if unlabelled is not None and len(unlabelled):
        if front.unlabelled_priors is None:
            raise ValueError("unlabelled slices need their priors: pass them to train_front")
        unlabelled_inputs = (unlabelled.images, front.unlabelled_priors)
    draws = epoch_draws(settings, structure)
    rows = (epoch_rows(chosen.case_ids, draws, 0, originals=structure == "lesion") if draws
            else slice(None))  # as epoch 0 reads
    return self_train(
        tuner,
        (chosen.images[rows], front.train_priors[rows], chosen.target(structure)[rows]),
        (val.images, front.val_priors, val.target(structure)),
        test_inputs, settings, workdir, progress=progress, desc=tag,
        unlabelled=unlabelled_inputs,
    )


def localizer_targets(labels: np.ndarray, structure: str) -> np.ndarray:
    """The localization network's target of a batch of 0/1/2 labels: ``(B, S, S, 1)`` 0/1."""
    return target_mask(labels, structure)[..., None]


def tuner_targets(labels: np.ndarray, structure: str, n_levels: int) -> dict[str, np.ndarray]:
    """The tuning network's multi-level targets of a batch of 0/1/2 labels."""
    return losses.multi_level_targets(localizer_targets(labels, structure), n_levels)


def _fit_localizer(settings, structure, train, val, workdir, progress, desc, epochs=None,
                   case_ids=None):
    """``train``, ``val``: (images ``(N, S, S, 1)``, 0/1/2 labels ``(N, S, S)``); ``case_ids``
    the training slices' patients (:func:`epoch_sampler`)."""
    return fit(lambda: models.build_localization_net(settings),
               losses.localization_loss(settings.train),
               train, val, workdir, settings.train, epochs=epochs, progress=progress, desc=desc,
               targets=functools.partial(localizer_targets, structure=structure),
               sampler=epoch_sampler(train[1], structure, settings, case_ids))


def epoch_draws(settings: Profile, structure: str) -> int:
    """How many drawn copies of each training volume are read one per epoch
    (:func:`~liverseg.lesion_synthesis.epoch_rows`): the lesion stage's synthetic lesions with
    ``lesion.synthesis.per_epoch`` (read beside the volumes), the liver stage's phantom
    appearances (``phantoms.appearance_draws``, read instead of them: the phantom as made is
    draw 0); 0 when every row is read every epoch."""
    if structure == "lesion":
        synthesis = settings.lesion.synthesis
        return int(synthesis.copies) if synthesis.share and synthesis.per_epoch else 0
    return settings.phantoms.appearance_draws if settings.dataset == "synthetic" else 0


def epoch_sampler(labels: np.ndarray, structure: str, settings: Profile,
                  case_ids: np.ndarray | None = None):
    """The rows each training epoch reads, in order: ``None`` (a plain shuffle of every row)
    unless ``train.positive_share`` asks for batches rich in ``structure``
    (:func:`~liverseg.train.slices.balanced_order`) or the volumes have drawn copies read one
    per epoch (:func:`epoch_draws`, with the slices' ``case_ids``)."""
    t, draws = settings.train, epoch_draws(settings, structure)
    if not t.positive_share and not draws:
        return None
    if draws and case_ids is None:
        raise ValueError("drawn copies read one per epoch need the slices' case ids")
    present = target_mask(labels, structure).any(axis=(1, 2))
    return functools.partial(_epoch_order, present, case_ids if draws else None,
                             max(draws, 1), structure == "lesion", t.batch_size,
                             t.positive_share, t.seed)


def _epoch_order(present: np.ndarray, case_ids: np.ndarray | None, draws: int, originals: bool,
                 batch_size: int, share: float, seed: int, epoch: int) -> np.ndarray:
    """:func:`epoch_sampler`'s order of ``epoch``: the epoch's rows (every row when
    ``case_ids`` is ``None``), lesion-rich with ``share``, else shuffled with (seed, epoch)."""
    rows = (np.arange(len(present), dtype=np.int64) if case_ids is None
            else epoch_rows(case_ids, draws, epoch, originals))
    if share:
        return rows[balanced_order(present[rows], batch_size, share, seed, epoch)]
    return rows[np.random.default_rng((seed, epoch)).permutation(len(rows))]


def out_of_fold_priors(chosen: SliceSet, structure: str, settings: Profile, workdir,
                       localizer, progress: bool = True, tag: str = "") -> np.ndarray:
    """Priors ``(N, S, S)`` of the training slices ``chosen``, each made by a localizer that
    did not train on its patient.

    ``localizer`` is the :class:`~liverseg.train.loop.FitResult` of the main localizer; with
    ``TrainConfig.prior_folds`` < 2 (or fewer patients than folds) its in-sample priors are
    returned instead. The fold localizers train in ``workdir/localizer_fold{k}`` without
    validation patients of their own, for as many epochs as early stopping chose for the
    main localizer.
    """
    folds = fold_of_cases(chosen.case_ids, settings.train.prior_folds, settings.train.seed)
    batch = settings.inference.batch_size
    if folds is None:  # one fold, or too few patients: in-sample priors
        return predict_priors(localizer.model, chosen.images, chosen.hu, settings.prior, batch)
    priors = np.zeros(chosen.images.shape, np.float32)
    for k in range(settings.train.prior_folds):
        held = folds == k
        inner = chosen.take(~held)
        model = _fit_localizer(
            settings, structure, (inner.images[..., None], inner.labels), None,
            workdir / f"localizer_fold{k}", progress, f"{tag} localizer fold {k}",
            epochs=localizer.best_epoch, case_ids=inner.case_ids,
        ).model
        priors[held] = predict_priors(model, chosen.images[held], chosen.hu[held],
                                      settings.prior, batch)
    return priors


def fold_of_cases(case_ids: np.ndarray, n_folds: int, seed: int) -> np.ndarray | None:
    """Fold number of each slice, folds made of whole patients (a synthetic copy of a volume,
    :func:`liverseg.lesion_synthesis.with_synthetic_copies`, in its patient's fold); ``None``
    if fewer than ``n_folds`` patients (or ``n_folds`` < 2)."""
    sources = [source_case_id(c) for c in case_ids.tolist()]  # a synthetic copy: its patient
    patients = sorted(set(sources))
    if n_folds < 2 or len(patients) < n_folds:
        return None
    order = np.random.default_rng((seed, 11)).permutation(len(patients))
    fold = {patients[i]: rank % n_folds for rank, i in enumerate(order)}
    return np.array([fold[c] for c in sources])


def _digest(unlabelled: UnlabelledSlices) -> str:
    """A short hash of which slices these are: their patients, shape and some pixels."""
    digest = hashlib.sha1("|".join(map(str, unlabelled.case_ids.tolist())).encode())
    digest.update(str(unlabelled.images.shape).encode())
    flat = np.ascontiguousarray(unlabelled.images).reshape(-1)
    digest.update(np.ascontiguousarray(flat[::max(1, flat.size // 65536)]).tobytes())
    return digest.hexdigest()[:10]


def _cached(path: Path, compute) -> np.ndarray:
    if path.is_file():
        return np.load(path)
    array = np.asarray(compute(), np.float32)
    with atomic_path(path) as tmp:
        np.save(tmp, array)
    return array
