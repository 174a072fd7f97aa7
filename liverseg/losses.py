"""Losses of the tuning network (paper section 3.6): BCE, Dice, their weighted sum and the
multi-level (deep supervision) loss.

``keras``/``keras.ops`` only (TensorFlow, JAX, PyTorch); every loss is a registered
serializable class, so a compiled model saves to ``.keras`` and loads back without
``custom_objects``. Provides ``DiceLoss`` (Eq. 5), ``BceDiceLoss`` (Eq. 6,
``α·l_bce + β·l_dice``), ``multi_level_weights``/``multi_level_losses`` (one ``(α, β)`` and
one loss per side output ``level_1`` (full resolution) ... ``level_n`` (deepest,
``H / 2**(n-1)``), for ``model.compile(loss=...)``) and ``multi_level_targets`` (NumPy) /
``multi_level_targets_ops`` (``keras.ops``), the label batch resized to every level.

Per-sample reduction: ``DiceLoss`` and ``BceDiceLoss`` give one value per sample (Eq. 4 and
5 over one image's pixels), which Keras' ``"sum_over_batch_size"`` averages over the batch
(for plain BCE use ``keras.losses.BinaryCrossentropy``).

Weight schemes (``multi_level_weights``, ``n = n_levels``):

``"paper"``           ``level_k``: ``α = k − 1``, ``β = n + 2 − k``, i.e. the paper's ``α = N − i``,
                      ``β = i`` with ``N = n + 1``, ``i = n + 2 − k`` (final output: pure Dice).
``"paper_reversed"``  ``level_k``: ``α = n − k``, ``β = k`` (``i = k`` counted from the top).
``"uniform"``         ``α = β = 1`` at every level.
``"final_only"``      ``α = β = 1`` at ``level_1``, ``(0, 0)`` elsewhere (Table 4's "without").

``normalize=True`` divides every weight by ``Σ(α + β)`` (off by default, as in the paper).
The paper's sentence behind the weighting: "We believe that dice must be considered in loss
function in deep layer to preserve the final segmentation result and avoid unbalanced data
in the background." The reasoning behind the α/β reading is in the book chapter
``book/networks.ipynb`` (section 'The multi-level loss').

Label resizing (``method``): ``"average"`` (default: the foreground fraction of each
``2**(k-1)``-pixel block), ``"max"`` (any foreground) or ``"nearest"`` (the pixel nearest the
block's centre).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from liverseg.errors import ShapeError

DICE_REDUCTIONS = ("sample", "batch")

__all__ = [
    "BceDiceLoss",
    "DICE_REDUCTIONS",
    "DiceLoss",
    "WEIGHT_SCHEMES",
    "level_name",
    "localization_loss",
    "multi_level_losses",
    "multi_level_targets",
    "multi_level_targets_ops",
    "multi_level_weights",
    "small_lesion_weights",
    "tuning_losses",
]

WEIGHT_SCHEMES = ("paper", "paper_reversed", "uniform", "final_only")
TARGET_METHODS = ("average", "max", "nearest")


def level_name(k: int) -> str:
    """Output name of decoder level ``k`` (1 = full resolution) in the tuning network."""
    return f"level_{k}"


def _spatial_axes(x) -> tuple[int, ...]:
    return tuple(range(1, len(x.shape)))


def _soft_dice_loss(y_true, y_pred, smooth, over="sample"):
    axes = _spatial_axes(y_pred)
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    if over == "batch":  # one Dice of the whole batch, given to every sample
        ones = ops.ones_like(intersection)
        return ones - (2.0 * ops.sum(intersection) + smooth) / (ops.sum(total) + smooth) * ones
    return 1.0 - (2.0 * intersection + smooth) / (total + smooth)


SMALL_WINDOW = 15  # pixels: the window whose lesion share tells a small lesion from a large one


def small_lesion_weights(y_true, positive_weight: float, small_weight: float):
    """The foreground pixels' BCE weight, raised where the foreground is small:
    ``positive_weight × (1 + small_weight × (1 − d))``, ``d`` the foreground share of the
    :data:`SMALL_WINDOW`² window around the pixel — about 1 inside a large lesion (its
    weight stays ``positive_weight``), a few hundredths in a lesion of a few pixels. A batch
    Dice and a uniform weight let the large lesions, which hold most of the foreground
    pixels, decide what the network learns; this gives the small ones a say without
    counting components. ``y_true``: ``(batch, h, w, 1)``."""
    density = ops.average_pool(y_true, SMALL_WINDOW, strides=1, padding="same")
    return positive_weight * (1.0 + small_weight * (1.0 - density))


def _bce_per_sample(y_true, y_pred, from_logits, positive_weight=1.0):
    # Keras' BCE clips probabilities to [eps, 1 - eps] and averages over the last axis;
    # the remaining spatial mean makes it Eq. 4 for one image. ``positive_weight``: a number
    # or a per-pixel tensor shaped as ``y_true``.
    if not hasattr(positive_weight, "shape") and positive_weight == 1.0:
        pixelwise = keras.losses.binary_crossentropy(y_true, y_pred, from_logits=from_logits)
    else:  # -(w·y·log p + (1 − y)·log(1 − p)), clipped as Keras clips
        p = ops.sigmoid(y_pred) if from_logits else y_pred
        eps = keras.config.epsilon()
        p = ops.clip(p, eps, 1.0 - eps)
        pixelwise = -ops.mean(positive_weight * y_true * ops.log(p)
                              + (1.0 - y_true) * ops.log(1.0 - p), axis=-1)
    axes = _spatial_axes(pixelwise)
    return ops.mean(pixelwise, axis=axes) if axes else pixelwise


def _match_rank(y_true, y_pred):
    y_true = ops.cast(y_true, y_pred.dtype)
    if len(y_true.shape) == len(y_pred.shape) - 1:
        y_true = ops.expand_dims(y_true, -1)
    return y_true


@keras.saving.register_keras_serializable(package="liverseg")
class DiceLoss(keras.losses.Loss):
    """Soft Dice loss of Eq. 5, ``1 − (2·Σ y·ŷ + s) / (Σ ŷ + Σ y + s)``, per sample.

    Args:
        smooth: the ``+1`` of Eq. 5; keeps the loss defined (and 0) for empty targets
            predicted empty.
        from_logits: apply a sigmoid to ``y_pred`` first.
    """

    def __init__(
        self,
        smooth: float = 1.0,
        from_logits: bool = False,
        reduction="sum_over_batch_size",
        name: str = "dice_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.smooth = float(smooth)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_true = _match_rank(y_true, y_pred)
        if self.from_logits:
            y_pred = ops.sigmoid(y_pred)
        return _soft_dice_loss(y_true, y_pred, self.smooth)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth, "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="liverseg")
class BceDiceLoss(keras.losses.Loss):
    """``α·l_bce + β·l_dice`` (Eq. 6), both terms per sample (Eq. 4 and Eq. 5).

    Args:
        alpha: weight of the binary cross-entropy (Keras' clipped BCE).
        beta: weight of the soft Dice loss.
        smooth: Dice smoothing term.
        from_logits: ``y_pred`` are logits rather than sigmoid probabilities.
        positive_weight: weight of the foreground pixels' BCE term (1: Eq. 4). Small lesions
            are a fraction of a percent of the pixels; with Eq. 4 a network learns "no lesion
            anywhere" (the book's lesion chapter shows it), a weight of ~10 lets it out.
        dice_over: ``"sample"`` (Eq. 5 for each image, the paper) or ``"batch"`` (one Dice of
            the whole batch, so a slice without foreground does not reward an empty answer).
        small_weight: raises the foreground weight of small lesions' pixels up to
            ``1 + small_weight`` times ``positive_weight`` (:func:`small_lesion_weights`);
            0, the default, leaves it uniform.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 1.0,
        smooth: float = 1.0,
        from_logits: bool = False,
        positive_weight: float = 1.0,
        dice_over: str = "sample",
        small_weight: float = 0.0,
        reduction="sum_over_batch_size",
        name: str = "bce_dice_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if dice_over not in DICE_REDUCTIONS:
            raise ValueError(f"dice_over must be one of {DICE_REDUCTIONS}, got {dice_over!r}")
        if positive_weight <= 0:
            raise ValueError(f"positive_weight must be > 0, got {positive_weight}")
        if small_weight < 0:
            raise ValueError(f"small_weight must be >= 0, got {small_weight}")
        self.small_weight = float(small_weight)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.smooth = float(smooth)
        self.from_logits = bool(from_logits)
        self.positive_weight = float(positive_weight)
        self.dice_over = dice_over

    def call(self, y_true, y_pred):
        y_true = _match_rank(y_true, y_pred)
        weight = self.positive_weight
        if self.small_weight:
            weight = small_lesion_weights(y_true, weight, self.small_weight)
        bce = _bce_per_sample(y_true, y_pred, self.from_logits, weight)
        probabilities = ops.sigmoid(y_pred) if self.from_logits else y_pred
        dice = _soft_dice_loss(y_true, probabilities, self.smooth, self.dice_over)
        return self.alpha * bce + self.beta * dice

    def get_config(self):
        return {
            **super().get_config(),
            "alpha": self.alpha,
            "beta": self.beta,
            "smooth": self.smooth,
            "from_logits": self.from_logits,
            "positive_weight": self.positive_weight,
            "dice_over": self.dice_over,
            "small_weight": self.small_weight,
        }


def multi_level_weights(
    n_levels: int, scheme: str = "paper", normalize: bool = False
) -> dict[str, tuple[float, float]]:
    """``{"level_k": (alpha, beta)}`` for the ``n_levels`` outputs of the tuning network.

    See the module docstring for the schemes; the reasoning behind ``"paper"`` is in the
    book chapter ``book/networks.ipynb`` (section 'The multi-level loss').
    """
    if int(n_levels) != n_levels or n_levels < 1:
        raise ValueError(f"n_levels must be a positive integer, got {n_levels!r}")
    n = int(n_levels)
    if scheme == "paper":
        weights = {level_name(k): (float(k - 1), float(n + 2 - k)) for k in range(1, n + 1)}
    elif scheme == "paper_reversed":
        weights = {level_name(k): (float(n - k), float(k)) for k in range(1, n + 1)}
    elif scheme == "uniform":
        weights = {level_name(k): (1.0, 1.0) for k in range(1, n + 1)}
    elif scheme == "final_only":
        weights = {level_name(k): (1.0, 1.0) if k == 1 else (0.0, 0.0) for k in range(1, n + 1)}
    else:
        raise ValueError(f"unknown weight scheme {scheme!r}; choose one of {WEIGHT_SCHEMES}")
    if normalize:
        total = sum(a + b for a, b in weights.values())
        weights = {name: (a / total, b / total) for name, (a, b) in weights.items()}
    return weights


def multi_level_losses(
    n_levels: int,
    scheme: str = "paper",
    normalize: bool = False,
    smooth: float = 1.0,
    from_logits: bool = False,
    positive_weight: float = 1.0,
    dice_over: str = "sample",
    small_weight: float = 0.0,
) -> dict[str, BceDiceLoss]:
    """One ``BceDiceLoss`` per output name, for ``model.compile(loss=...)``
    (``positive_weight``, ``dice_over``, ``small_weight``: see :class:`BceDiceLoss`).

    Levels whose weights are both zero (``"final_only"``) still get a (zero-weighted) loss so
    that every output of the model has an entry, which all Keras versions accept; it
    contributes nothing to the total or its gradient.
    """
    return {
        name: BceDiceLoss(alpha, beta, smooth=smooth, from_logits=from_logits,
                          positive_weight=positive_weight, dice_over=dice_over,
                          small_weight=small_weight, name=f"{name}_loss")
        for name, (alpha, beta) in multi_level_weights(n_levels, scheme, normalize).items()
    }


def localization_loss(train) -> BceDiceLoss:
    """The localization network's loss for a :class:`liverseg.config.TrainConfig`:
    ``localization_loss`` = (α, β) of Eq. 6, with its ``positive_weight``, ``dice_over`` and
    ``small_lesion_weight``."""
    alpha, beta = train.localization_loss
    return BceDiceLoss(alpha, beta, positive_weight=train.positive_weight,
                       dice_over=train.dice_over, small_weight=train.small_lesion_weight)


def tuning_losses(train, n_levels: int) -> dict[str, BceDiceLoss]:
    """The tuning network's multi-level loss for a :class:`liverseg.config.TrainConfig`
    (``loss_scheme``, ``positive_weight``, ``dice_over``; ``small_lesion_weight`` is the
    localizer's alone: it is there to put the small lesions inside the prior)."""
    return multi_level_losses(n_levels, scheme=train.loss_scheme,
                              positive_weight=train.positive_weight, dice_over=train.dice_over)


def _check_target_shape(shape, n_levels, method):
    if method not in TARGET_METHODS:
        raise ValueError(f"unknown resize method {method!r}; choose one of {TARGET_METHODS}")
    if len(shape) not in (3, 4):
        raise ShapeError(
            f"label batch must be (batch, height, width[, 1]), got shape {tuple(shape)}"
        )
    factor = 2 ** (int(n_levels) - 1)
    height, width = shape[1], shape[2]
    if height % factor or width % factor:
        raise ShapeError(
            f"label size {height}x{width} is not divisible by 2**(n_levels-1) = {factor}"
        )
    return factor


def multi_level_targets(y, n_levels: int, method: str = "average") -> dict[str, np.ndarray]:
    """Resize a full-resolution label batch to every level.

    Returns ``{"level_k": array of shape (B, H / 2**(k-1), W / 2**(k-1), 1)}``.

    NumPy version (use it in a NumPy/``tf.numpy_function`` data pipeline). ``y`` is
    ``(B, H, W)`` or ``(B, H, W, 1)`` with values in [0, 1]; results are float32.
    ``method``: ``"average"`` (default, foreground fraction), ``"max"`` (any foreground) or
    ``"nearest"`` (the pixel nearest each block's centre).

    Each level is pooled from the one above by 2 × 2 blocks (a mean of means over equal
    blocks is the mean; exactly so for 0/1 labels, whose block fractions float32 holds
    exactly): a 16 × 512² batch takes a twelfth of the time of pooling each level from the
    slice.
    """
    y = np.asarray(y, dtype=np.float32)
    _check_target_shape(y.shape, n_levels, method)
    if y.ndim == 3:
        y = y[..., None]
    targets = {level_name(1): np.ascontiguousarray(y)}
    level = y
    for k in range(2, int(n_levels) + 1):
        if method == "nearest":
            f = 2 ** (k - 1)
            level = np.ascontiguousarray(y[:, f // 2 :: f, f // 2 :: f])
        else:
            corners = (level[:, 0::2, 0::2], level[:, 1::2, 0::2], level[:, 0::2, 1::2],
                       level[:, 1::2, 1::2])
            if method == "average":
                level = (corners[0] + corners[1] + corners[2] + corners[3]) * np.float32(0.25)
            else:
                level = np.maximum(np.maximum(corners[0], corners[1]),
                                   np.maximum(corners[2], corners[3]))
        targets[level_name(k)] = level
    return targets


def multi_level_targets_ops(y, n_levels: int, method: str = "average") -> dict:
    """``keras.ops`` version of ``multi_level_targets`` (backend tensors in, backend tensors out),
    for pipelines that run on the training backend (e.g. inside a JAX ``train_step``)."""
    _check_target_shape(tuple(y.shape), n_levels, method)
    y = ops.cast(y, "float32")
    if len(y.shape) == 3:
        y = ops.expand_dims(y, -1)
    targets = {}
    for k in range(1, int(n_levels) + 1):
        f = 2 ** (k - 1)
        if f == 1:
            level = y
        elif method == "nearest":
            level = y[:, f // 2 :: f, f // 2 :: f, :]
        else:
            pool = ops.average_pool if method == "average" else ops.max_pool
            level = pool(y, pool_size=f, strides=f, padding="valid", data_format="channels_last")
        targets[level_name(k)] = level
    return targets
