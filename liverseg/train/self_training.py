"""Algorithm 1 of the paper: iterative, patch-wise self-training of the tuning network.

Step 1–2: choose μ and cut every training slice into the patches of each level
(:mod:`liverseg.patches`), keeping those whose annotated share μ = A / C reaches the
threshold (Eq. 7); each patch is resized to the network's input, with its piece of the ROI
prior. Steps 3–6, repeated: the current network segments the patches (S), the patches join the
training slices with those masks as their labels (X ∪ P, Y ∪ S), and the network is
fine-tuned. Step 7: stop when the validation score no longer improves (``patience`` rounds)
or after ``iterations`` rounds; the best round's weights are kept. The patches are always cut
from the original slices, and their masks are re-predicted by the current network in every
round, so X ∪ P does not grow with patches of patches. ``pseudo_labels="annotation"`` uses
the reference masks instead of S (an ablation).

By default every training patient is annotated, so P are tiles of annotated slices and μ is
their annotated share. With ``SelfTrainingConfig.unlabelled_share`` > 0, some training
patients are unlabelled (:func:`unlabelled_patients`): the cascade trains without them and
gives :func:`self_train` only their slices and priors; ``unlabelled_phantoms`` adds phantoms
no network has seen (:func:`liverseg.train.system.unlabelled_phantom_slices`) the same way.
Each round the current network segments their whole slices; μ = Â / C is then the
*predicted* share of each tile, and the kept tiles join P with the network's masks S of them
as labels (the reading of the book's Algorithm 1 chapter).

With ``train.prior_jitter``, the priors of each round's training pairs (never those the
network segments the patches with, nor the validation ones) are perturbed as the tuner's
first training's are (:mod:`liverseg.prior_jitter`).

Each round's training is a resumable :func:`liverseg.train.loop.fit` in ``workdir/round-K``;
the history (Table 5's rows) is ``workdir/history.json``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import keras
import numpy as np

from liverseg import losses, patches
from liverseg.config import Profile
from liverseg.errors import InvalidDataError
from liverseg.io.atomic import atomic_write_text
from liverseg.lesion_synthesis import source_case_id
from liverseg.predict import predict_tuned
from liverseg.prior_jitter import prior_augment
from liverseg.train.loop import ConcatenatedRows, fit
from liverseg.train.scores import overlap_scores


def patch_pairs(images, priors, targets, settings: Profile):
    """Algorithm 1's patches P of the training slices, at the network's input size.

    Returns ``(images, priors, targets)`` stacks ``(M, S, S)``: the patches of every level of
    ``settings.patches.levels`` whose μ reaches ``settings.patches.area_threshold``.
    """
    found = patches.extract_patches(
        images, targets, levels=settings.patches.levels,
        threshold=settings.patches.area_threshold, extra={"prior": priors},
        output_size=settings.image_size,
    )
    return found.images, found.extra["prior"], found.labels.astype(np.float32)


def unlabelled_patients(case_ids, share: float, seed: int) -> list[str]:
    """The training patients Algorithm 1 treats as unlabelled, sorted.

    ``case_ids``: the patient of each training slice (a synthetic copy,
    :func:`liverseg.lesion_synthesis.with_synthetic_copies`, counts as its patient);
    ``share``: ``SelfTrainingConfig.unlabelled_share``; ``seed``: ``split.seed``, so every
    training seed of a comparison hides the same patients. ``round(share × n)`` of the ``n``
    patients, at least one and at most ``n − 1``; none when ``share`` is 0.

    Raises :class:`InvalidDataError` for a share outside ``[0, 1)`` or a positive share with
    fewer than two patients (one must stay annotated).
    """
    if not 0.0 <= share < 1.0:
        raise InvalidDataError(f"unlabelled_share must be in [0, 1), got {share}")
    patients = sorted({source_case_id(c) for c in np.asarray(case_ids).tolist()})
    if not share:
        return []
    if len(patients) < 2:
        raise InvalidDataError(f"unlabelled_share {share} needs at least two training patients "
                               f"(one stays annotated), got {len(patients)}")
    count = min(max(int(np.floor(share * len(patients) + 0.5)), 1), len(patients) - 1)
    order = np.random.default_rng((seed, 23)).permutation(len(patients))
    return sorted(patients[i] for i in order[:count])


def unlabelled_patches(model: keras.Model, images, priors, settings: Profile):
    """Algorithm 1's patches of unlabelled slices, chosen by the network's own segmentation.

    ``images``, ``priors``: ``(N, S, S)`` slices of the unlabelled patients. ``model``
    segments each slice (``inference.threshold``); a tile is kept when its predicted share μ = Â / C
    reaches ``settings.patches.area_threshold``. Returns ``(images, priors)`` of the kept
    patches, ``(M, S, S)`` at the network's input size (their labels S are the network's
    masks of the patches themselves, as for the annotated patients' patches).
    """
    batch = settings.inference.batch_size
    predicted = predict_tuned(model, images, priors, batch) > settings.inference.threshold
    found = patches.extract_patches(
        images, predicted, levels=settings.patches.levels,
        threshold=settings.patches.area_threshold, extra={"prior": priors},
        output_size=settings.image_size,
    )
    return found.images, found.extra["prior"]


def self_train(
    tuner: keras.Model,
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    settings: Profile,
    workdir: str | Path,
    progress: bool = True,
    desc: str = "",
    unlabelled: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[keras.Model, list[dict], Path | None]:
    """Run Algorithm 1 on a trained tuning network.

    ``train``, ``val``, ``test``: ``(images, priors, targets)`` stacks ``(N, S, S)``.
    ``unlabelled``: ``(images, priors)`` stacks ``(U, S, S)`` of the unlabelled patients'
    slices — no labels — whose patches join P each round (:func:`unlabelled_patches`);
    ``None`` (the default) or empty: only the annotated slices are cut.
    Returns the network of the best round, the history: one row per round (round 0 is the
    network before self-training) with the number of patches added, the training pairs of the
    round, the Dice of the pseudo-labels S against the patches' annotation (annotated patches
    only), with ``unlabelled`` the number of its patches among those added
    (``unlabelled_patches``), and the validation (and test) accuracy, Dice, IoU and mIoU
    (:func:`~liverseg.train.scores.overlap_scores`), and the best round's saved model
    (``None`` when round 0, the network given, stays the best).

    Raises :class:`InvalidDataError` for ``unlabelled`` slices with
    ``pseudo_labels="annotation"`` (they have none).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    st, batch = settings.self_training, settings.inference.batch_size
    n_levels = len(settings.tuning.output_names)
    loss = losses.tuning_losses(settings.train, n_levels)
    targets = functools.partial(losses.multi_level_targets, n_levels=n_levels)  # per batch
    val_xy = _inputs(val)

    has_unlabelled = unlabelled is not None and len(unlabelled[0]) > 0
    if has_unlabelled and st.pseudo_labels != "prediction":
        raise InvalidDataError("unlabelled slices need pseudo_labels='prediction': they have no "
                               "annotation to label their patches")

    def row(model, iteration, n_patches, pairs, pseudo_dice=None, n_unlabelled=0):
        entry = {"iteration": iteration, "patches_added": n_patches, "training_pairs": pairs,
                 "pseudo_label_dice": pseudo_dice}
        if has_unlabelled:
            entry["unlabelled_patches"] = n_unlabelled
        for name, data in (("val", val), ("test", test)):
            if data is not None:
                entry[name] = overlap_scores(predict_tuned(model, data[0], data[1], batch), data[2])
        return entry

    history = [row(tuner, 0, 0, int(len(train[0])))]
    best_score, best_round, wait = history[0]["val"][st.metric], 0, 0
    best, best_path = tuner, None
    if st.iterations < 1:
        return tuner, history, None
    p_images, p_priors, p_annotations = patch_pairs(*train, settings)
    model, threshold = tuner, settings.inference.threshold
    for iteration in range(1, st.iterations + 1):
        if st.pseudo_labels == "prediction":
            p_labels = (predict_tuned(model, p_images, p_priors, batch) > threshold
                        ).astype(np.float32)
        else:
            p_labels = p_annotations
        images, priors, labels = [train[0], p_images], [train[1], p_priors], [train[2], p_labels]
        n_unlabelled = 0
        if has_unlabelled:  # μ from this round's segmentation, S of the kept patches
            u_images, u_priors = unlabelled_patches(model, *unlabelled, settings)
            images.append(u_images)
            priors.append(u_priors)
            labels.append((predict_tuned(model, u_images, u_priors, batch) > threshold)
                          .astype(np.float32))
            n_unlabelled = int(len(u_images))
        # X ∪ P, Y ∪ S: read batch by batch from all parts, never copied into one array
        x = {"image": ConcatenatedRows(*(part[..., None] for part in images)),
             "prior": ConcatenatedRows(*(part[..., None] for part in priors))}
        y = ConcatenatedRows(*labels)
        previous = model
        result = fit(
            lambda: _copy(previous), loss, (x, y), val_xy,
            workdir / f"round-{iteration}", settings.train, epochs=st.fine_tune_epochs,
            seed=settings.train.seed + iteration, progress=progress,
            desc=f"{desc} self-training round {iteration}", targets=targets,
            augment=prior_augment(settings.train.prior_jitter),  # training rows only
        )
        model = result.model
        history.append(row(model, iteration, int(len(p_images)) + n_unlabelled, int(len(y)),
                           overlap_scores(p_labels, p_annotations)["dice"], n_unlabelled))
        atomic_write_text(workdir / "history.json", json.dumps(history, indent=1))
        score = history[-1]["val"][st.metric]
        if score > best_score + st.min_delta:
            best_score, best_round, best, wait = score, iteration, model, 0
            best_path = result.path
        else:
            wait += 1
            if wait >= st.patience:
                break
    for entry in history:
        entry["kept"] = entry["iteration"] == best_round
    atomic_write_text(workdir / "history.json", json.dumps(history, indent=1))
    return best, history, best_path


def _copy(model: keras.Model) -> keras.Model:
    """A new model with ``model``'s weights: fine-tuning must not change the earlier rounds'."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def _inputs(data):
    """``fit``'s ``(x, y)`` of ``(images, priors, targets)``: ``y`` the ``(N, S, S)`` masks, made
    multi-level batch by batch by ``fit``'s ``targets``."""
    images, priors, targets = data
    return {"image": images[..., None], "prior": priors[..., None]}, targets
