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
from liverseg.io.atomic import atomic_write_text
from liverseg.predict import predict_tuned
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


def self_train(
    tuner: keras.Model,
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    settings: Profile,
    workdir: str | Path,
    progress: bool = True,
    desc: str = "",
) -> tuple[keras.Model, list[dict], Path | None]:
    """Run Algorithm 1 on a trained tuning network.

    ``train``, ``val``, ``test``: ``(images, priors, targets)`` stacks ``(N, S, S)``.
    Returns the network of the best round, the history: one row per round (round 0 is the
    network before self-training) with the number of patches added, the training pairs of the
    round, the Dice of the pseudo-labels S against the patches' annotation, and the
    validation (and test) accuracy, Dice, IoU and mIoU (:func:`~liverseg.train.scores.overlap_scores`), and the
    best round's saved model (``None`` when round 0, the network given, stays the best).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    st, batch = settings.self_training, settings.inference.batch_size
    n_levels = len(settings.tuning.output_names)
    loss = losses.tuning_losses(settings.train, n_levels)
    targets = functools.partial(losses.multi_level_targets, n_levels=n_levels)  # per batch
    val_xy = _inputs(val)

    def row(model, iteration, n_patches, pairs, pseudo_dice=None):
        entry = {"iteration": iteration, "patches_added": n_patches, "training_pairs": pairs,
                 "pseudo_label_dice": pseudo_dice}
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
    model = tuner
    for iteration in range(1, st.iterations + 1):
        if st.pseudo_labels == "prediction":
            p_labels = (predict_tuned(model, p_images, p_priors, batch) > 0.5).astype(np.float32)
        else:
            p_labels = p_annotations
        # X ∪ P, Y ∪ S: read batch by batch from both, never copied into one array
        x = {"image": ConcatenatedRows(train[0][..., None], p_images[..., None]),
             "prior": ConcatenatedRows(train[1][..., None], p_priors[..., None])}
        y = ConcatenatedRows(train[2], p_labels)
        previous = model
        result = fit(
            lambda: _copy(previous), loss, (x, y), val_xy,
            workdir / f"round-{iteration}", settings.train, epochs=st.fine_tune_epochs,
            seed=settings.train.seed + iteration, progress=progress,
            desc=f"{desc} self-training round {iteration}", targets=targets,
        )
        model = result.model
        history.append(row(model, iteration, int(len(p_images)), int(len(y)),
                           overlap_scores(p_labels, p_annotations)["dice"]))
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
