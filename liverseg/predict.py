"""Applying the two networks to stacks of slices: probabilities, ROI priors, tuned maps.

Training (out-of-fold priors, Algorithm 1's pseudo-labels) and inference use these same
functions, so a prior the tuning network learns from is made exactly like the one it sees
when it segments a volume. Stacks are ``(N, H, W)`` float32 at the model's input size.
"""

from __future__ import annotations

import keras
import numpy as np

from liverseg import cam
from liverseg.batching import predict_in_whole_batches
from liverseg.config import PriorConfig
from liverseg.prior import roi_priors


def predict_probability(model: keras.Model, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """``(N, H, W)`` foreground probability of a one-output model (the localization net)."""
    if len(images) == 0:
        return np.zeros(np.shape(images), np.float32)
    return _first_map(predict_in_whole_batches(model, _channel(images), batch_size))


def predict_priors(
    localizer: keras.Model,
    images: np.ndarray,
    hu: np.ndarray,
    config: PriorConfig,
    batch_size: int = 8,
    progress: bool = False,
) -> np.ndarray:
    """The ROI prior of each slice: probability + Grad-CAM + CRF → box (``liverseg.prior``).

    ``images`` are the network inputs, ``hu`` the same slices in HU for the CRF.
    Returns ``(N, H, W)`` float32 of 0 and 1.

    Grad-CAM scores the pixels the localizer puts above 0.5, so a slice with none has an
    all-zero map: it is not computed for such slices (most of a volume's, away from the
    liver), whose priors are then cut without a CRF as well (:func:`liverseg.prior.cannot_pass`).
    """
    if len(images) == 0:
        return np.zeros(np.shape(images), np.float32)
    probability = predict_probability(localizer, images, batch_size)
    cams = np.zeros(probability.shape, np.float32)
    scored = probability.reshape(len(probability), -1).max(axis=1) > 0.5 - CAM_MARGIN
    if scored.any():
        cams[scored] = cam.grad_cam(localizer, _channel(np.asarray(images)[scored]),
                                    layer_name=config.cam_layer, batch_size=batch_size)
    return roi_priors(probability, cams, hu, progress=progress, **config.roi_kwargs())


#: how far under 0.5 a slice's highest probability must stay for its Grad-CAM to be taken as
#: zero without computing it: Grad-CAM's own forward pass (other batches) rounds the logits
#: by far less
CAM_MARGIN = 1e-3


def predict_tuned(tuner: keras.Model, images: np.ndarray, priors: np.ndarray,
                  batch_size: int = 8) -> np.ndarray:
    """``(N, H, W)`` final (full-resolution, ``level_1``) probability of the tuning net."""
    if len(images) == 0:
        return np.zeros(np.shape(images), np.float32)
    out = predict_in_whole_batches(tuner, {"image": _channel(images), "prior": _channel(priors)},
                                   batch_size)
    return _first_map(out)


def _channel(stack: np.ndarray) -> np.ndarray:
    stack = np.asarray(stack, np.float32)
    return stack[..., None] if stack.ndim == 3 else stack


def _first_map(out) -> np.ndarray:
    if isinstance(out, dict):
        out = out.get("level_1", next(iter(out.values())))
    if isinstance(out, (list, tuple)):
        out = out[0]
    return np.asarray(keras.ops.convert_to_numpy(out), np.float32)[..., 0]
