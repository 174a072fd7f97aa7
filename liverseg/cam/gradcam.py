"""Grad-CAM for segmentation networks, on any Keras 3 backend.

Grad-CAM (Selvaraju et al., ICCV 2017) weights a convolution layer's activation maps
``A_k`` by how much the network's score rises with them, ``w_k = mean_ij dS/dA_k(i, j)``,
and keeps the positive evidence, ``cam = ReLU(sum_k w_k A_k)``. For a segmentation
network the score ``S`` of an image is the summed foreground score over the pixels the
network itself predicts as foreground (Seg-Grad-CAM, Vinogradova et al., AAAI 2020):

    S = sum_ij z(i, j) * [p(i, j) > threshold]

so the map shows what supports the predicted region rather than every pixel's score. The
mask is treated as a constant (no gradient flows through the comparison).

The score ``z`` is taken, as in Seg-Grad-CAM, on the *logits* when the model exposes them
(a layer named ``logits``, as the localization net's; see :func:`grad_cam`), not on the
probability ``p = sigmoid(z)``: since ``dp/dz = p (1 - p)`` vanishes where the network is
confident, a probability score would ignore the pixels it is surest of and lean to the
uncertain borders.

The network is split at the chosen layer into an *encoder* (inputs -> A) and a *head*
((inputs, A) -> scored layer; the inputs are still there for skip connections), and
``dS/dA`` is taken through the head by one small function per backend (``_tensorflow``,
``_jax``), chosen by ``keras.backend.backend()`` and imported lazily. Those two backends are
the ones the test suite runs; on any other (PyTorch) Grad-CAM raises
:class:`~liverseg.errors.UnsupportedBackendError` naming them.
"""

from __future__ import annotations

import functools
import importlib
import math
import weakref
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np
from keras import ops

from liverseg.batching import pad_to_whole_batches
from liverseg.errors import InvalidDataError, ShapeError, UnsupportedBackendError

_BACKENDS = {"tensorflow": "_tensorflow", "jax": "_jax"}  # the backends the tests run
_SPLITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
LOGITS_LAYER = "logits"  # the layer Grad-CAM scores by default when a model has one


def grad_cam(
    model: keras.Model,
    images,
    layer_name: str | None = None,
    target: str | Callable = "foreground",
    *,
    score_layer: str | None = None,
    output: int | str | None = None,
    class_index: int | None = None,
    threshold: float = 0.5,
    batch_size: int = 8,
) -> np.ndarray:
    """Grad-CAM of a segmentation model's foreground, one map per image.

    What is scored: the output of the layer ``score_layer`` if given (any layer of the
    graph with a ``(B, H, W, C)`` output), else the model output ``output`` if given, else
    the layer named ``"logits"`` if the model has one (the localization net's sigmoid
    logits), else the model's first output. Scoring the logit ``z`` rather than the
    probability ``p = sigmoid(z)`` is the default because ``dp/dz = p (1 - p)`` vanishes
    where the network is confident: a probability score gives the surest pixels almost no
    weight and the map leans to the uncertain borders. ``score_layer="probability"`` (or
    ``output=0``) gives the probability-based map of the localization net.

    Args:
        model: a functional Keras model with ``(B, H, W, C)`` scores (probabilities, or
            logits that a sigmoid ``Activation`` layer turns into probabilities).
        images: a batch for the model's input: an array ``(B, H, W, C)`` (``(B, H, W)``
            gets a channel axis), or a list / dict of arrays for a multi-input model such
            as the tuning network (dict keys are the input names).
        layer_name: the layer whose activations are explained; it must be a layer of the
            model's own graph with a ``(B, h, w, K)`` output, before the scored layer.
            ``None`` uses :func:`default_cam_layer`, the bottleneck's output.
        target: with ``z`` the scored values and ``p`` the probability they stand
            for, ``"foreground"`` scores an image by ``sum z * (p > threshold)``;
            ``"sum"`` by ``sum z`` over all pixels; a callable maps the scored tensor
            ``(B, H, W, C)`` to one score per image with ``keras.ops``.
        score_layer: name of the layer whose output is scored (see above).
        output: which output of a multi-output model is scored, by index into
            ``model.outputs`` or by name (an output layer's name or an output dict key);
            give ``score_layer`` or ``output``, not both.
        class_index: which channel is the foreground. ``None``: the only channel of a
            one-channel (sigmoid) output, else everything but channel 0 (background)
            of a softmax output.
        threshold: the foreground probability of the ``"foreground"`` target. It is
            compared with the scored values themselves, except on sigmoid logits (the
            input of a sigmoid ``Activation`` layer of the model, such as ``"logits"``),
            which are compared with its logit ``log(t / (1 - t))`` (0 for 0.5) -- the
            same pixels. For a model whose output is logits without a sigmoid layer, pass
            the logit threshold itself (0).
        batch_size: images per forward/backward pass.

    Returns:
        ``(B, H, W)`` float32 maps in [0, 1] at the scored layer's resolution, bilinearly
        upsampled (to the input's size if that resolution is not static) and divided by
        each map's maximum, so 0 keeps meaning "no evidence" and an image without
        evidence (e.g. nothing predicted) gets an all-zero map.

    Raises:
        ShapeError: an unknown layer or output, or one without a 4-D output, or a
            ``layer_name`` that is the scored layer itself. (A layer the score does not
            depend on, e.g. one after it, gets all-zero maps.)
        InvalidDataError: bad images, ``batch_size``, ``target`` or ``threshold``, or both
            ``score_layer`` and ``output``.
    """
    inputs, encoder, head, score_fn, size, backend = _prepared(
        model, images, layer_name, target, score_layer, output, class_index, threshold,
        batch_size)
    cams = [ops.convert_to_numpy(backend.cam_maps(encoder, head, batch, score_fn, size,
                                                  _cam_from))[:n, ..., 0]
            for n, batch in _batches(inputs, batch_size)]
    return np.concatenate(cams).astype(np.float32, copy=False)


def _cam_from(activations, gradients, size):
    """Grad-CAM of a batch from ``A`` and ``dS/dA``, resized to ``size`` and normalized:
    ``(B, H, W, 1)``, on the device (the backends compile it with the gradient)."""
    weights = ops.mean(gradients, axis=(1, 2), keepdims=True)
    cam = ops.relu(ops.sum(weights * activations, axis=-1, keepdims=True))
    return _normalised(resize_cams(cam, size))


def score_gradients(
    model: keras.Model,
    images,
    layer_name: str | None = None,
    target: str | Callable = "foreground",
    *,
    score_layer: str | None = None,
    output: int | str | None = None,
    class_index: int | None = None,
    threshold: float = 0.5,
    batch_size: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """The activations ``A`` and score gradients ``dS/dA`` that :func:`grad_cam` combines.

    Same arguments and the same score ``S`` as :func:`grad_cam`; returns two float32 arrays
    ``(B, h, w, K)`` at the layer's own resolution, for the whole batch at once. Grad-CAM is
    ``ReLU(sum_k mean_ij(dS/dA_k) A_k)``; the gradient map itself shows which pixels the
    score draws on (e.g. at the input of ``"logits"``, ``dS/dA`` is the 1x1 kernel times
    ``dS/dz``: uniform over the predicted region for a logit score, ``p (1 - p)``-weighted,
    so near zero where the network is confident, for a probability score).
    """
    inputs, encoder, head, score_fn, _, backend = _prepared(
        model, images, layer_name, target, score_layer, output, class_index, threshold,
        batch_size)
    activations, gradients = [], []
    for n, batch in _batches(inputs, batch_size):
        a = encoder(batch, training=False)
        g = backend.target_gradient(head, batch, a, score_fn)
        activations.append(ops.convert_to_numpy(a[:n]).astype(np.float32, copy=False))
        gradients.append(ops.convert_to_numpy(g[:n]).astype(np.float32, copy=False))
    return np.concatenate(activations), np.concatenate(gradients)


def backend_module() -> str:
    """The module of this Keras backend's gradient function (``"_tensorflow"``, ``"_jax"``).

    Raises :class:`~liverseg.errors.UnsupportedBackendError` on any other backend.
    """
    backend = keras.backend.backend()
    if backend not in _BACKENDS:
        raise UnsupportedBackendError(
            f"Grad-CAM supports the Keras backends {' and '.join(map(repr, _BACKENDS))}, not "
            f"{backend!r}; set KERAS_BACKEND to one of them")
    return _BACKENDS[backend]


def _prepared(model, images, layer_name, target, score_layer, output, class_index, threshold,
              batch_size):
    """The checked inputs, the encoder and head, the score function, the map size and the
    backend's gradient module."""
    if int(batch_size) != batch_size or batch_size < 1:
        raise InvalidDataError(f"batch_size must be a positive integer, got {batch_size}")
    inputs = _as_input_list(model, images)
    scored = _scored_tensor(model, score_layer, output)
    encoder, head = _split(model, layer_name or default_cam_layer(model), scored)
    backend = importlib.import_module(f"liverseg.cam.{backend_module()}")
    if _feeds_sigmoid(model, scored):
        if not 0.0 < threshold < 1.0:
            raise InvalidDataError(
                f"threshold is a probability for a logit score, got {threshold}"
            )
        threshold = math.log(threshold / (1.0 - threshold))
    score_fn = _score_function(target, class_index, threshold)
    size = tuple(head.outputs[0].shape[1:3])
    if None in size:  # a fully convolutional model: its output is as large as its input
        size = tuple(inputs[0].shape[1:3])
    return inputs, encoder, head, score_fn, tuple(int(d) for d in size), backend


def _batches(inputs, batch_size):
    """``(rows, batch)`` per batch: the batch's input tensors padded to ``batch_size`` rows
    (one shape, one trace), of which the first ``rows`` are real."""
    for start in range(0, len(inputs[0]), batch_size):
        rows = [x[start : start + batch_size] for x in inputs]
        yield len(rows[0]), [ops.convert_to_tensor(pad_to_whole_batches(x, batch_size))
                             for x in rows]


def default_cam_layer(model: keras.Model) -> str:
    """Name of the last layer at the model's coarsest resolution: the bottleneck's output.

    In a U-Net that is the end of the encoder (after the bottleneck's last convolution and
    its activation), the feature map with the most semantic and least positional detail,
    as in the original Grad-CAM's "last convolutional layer" (taken after its ReLU, as
    Keras' applications do). Layers are visited in the graph's order; a model whose
    spatial sizes are not static is probed with a 256 x 256 input.
    """
    maps = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer) and _has_one_map_output(layer)
    ]
    if not maps:
        raise ShapeError(f"model {model.name!r} has no (B, h, w, K) feature map for Grad-CAM")
    areas = _spatial_areas(model, maps)
    coarsest = min(areas)
    return [layer for layer, area in zip(maps, areas) if area == coarsest][-1].name


def _spatial_areas(model, layers, probe=256) -> list[int]:
    shapes = [layer.output.shape for layer in layers]
    if any(None in shape[1:3] for shape in shapes):
        specs = [
            keras.KerasTensor((1, *(probe if d is None else d for d in t.shape[1:])), t.dtype)
            for t in model.inputs
        ]
        try:
            probe_model = keras.Model(model.inputs, [layer.output for layer in layers])
            shapes = [spec.shape for spec in probe_model.compute_output_spec(specs)]
        except Exception as error:  # noqa: BLE001 - any failure means: ask the caller
            raise ShapeError(
                f"cannot tell the resolution of {model.name!r}'s layers; pass layer_name"
            ) from error
    return [shape[1] * shape[2] for shape in shapes]


def _has_one_map_output(layer) -> bool:
    try:
        output = layer.output
    except (AttributeError, ValueError):  # shared layers have no single output
        return False
    return isinstance(output, keras.KerasTensor) and len(output.shape) == 4


def resize_cams(cams, size: tuple[int, int]):
    """Bilinear upsampling of a batch of maps ``(B, h, w, 1)`` to ``size`` with pixel-centre
    alignment (as ``UpSampling2D``, and skimage's ``resize(order=1, mode="edge")``), where the
    maps are: on the device, for the whole batch at once."""
    if tuple(cams.shape[1:3]) == tuple(size):
        return cams
    return ops.image.resize(cams, tuple(int(d) for d in size), interpolation="bilinear",
                            antialias=False)


def _normalised(cams):
    """Each map divided by its maximum, so 1 is its strongest evidence; a map without any
    (maximum ≤ 1e-12) stays all zero."""
    peak = ops.max(cams, axis=(1, 2, 3), keepdims=True)
    return ops.where(peak > 1e-12, cams / ops.maximum(peak, 1e-12), ops.zeros_like(cams))


def _scored_tensor(model, score_layer, output):
    """The tensor Grad-CAM scores (see :func:`grad_cam`)."""
    if score_layer is not None and output is not None:
        raise InvalidDataError("give score_layer or output, not both")
    if score_layer is None and output is None:
        names = {layer.name for layer in model.layers}
        if LOGITS_LAYER in names:
            score_layer = LOGITS_LAYER
        else:
            output = 0
    if score_layer is not None:
        try:
            scored = model.get_layer(score_layer).output
        except (ValueError, AttributeError) as error:
            raise ShapeError(
                f"model {model.name!r} has no layer {score_layer!r} with one output to score"
            ) from error
    else:
        scored = _select_output(model, output)
    if not isinstance(scored, keras.KerasTensor) or len(scored.shape) != 4:
        raise ShapeError(f"Grad-CAM needs a (B, H, W, C) score, got {scored}")
    return scored


def _feeds_sigmoid(model, tensor) -> bool:
    """Whether ``tensor`` is sigmoid logits: the input of a sigmoid ``Activation`` layer."""
    for layer in model.layers:
        if not (
            isinstance(layer, keras.layers.Activation)
            and layer.activation is keras.activations.sigmoid
        ):
            continue
        try:
            if layer.input is tensor:
                return True
        except (AttributeError, ValueError):  # a shared layer has no single input
            continue
    return False


def _split(model, layer_name: str, scored) -> tuple[keras.Model, keras.Model]:
    """Encoder (inputs -> A) and head ((inputs, A) -> scored) sharing the model's weights.

    Cached per model, layer and scored tensor (one tensor of the model's graph however it
    was named), so a backend may reuse its compiled gradient.
    """
    cache_key = (layer_name, id(scored))
    cache = _SPLITS.setdefault(model, {})
    if cache_key not in cache:
        try:
            layer = model.get_layer(layer_name)
        except ValueError as error:
            raise ShapeError(f"model {model.name!r} has no layer {layer_name!r}") from error
        activations = layer.output
        if not isinstance(activations, keras.KerasTensor) or len(activations.shape) != 4:
            raise ShapeError(
                f"layer {layer_name!r} must have one (B, h, w, K) output for Grad-CAM, "
                f"got {activations}"
            )
        encoder = keras.Model(model.inputs, activations, name=f"{model.name}_to_{layer_name}")
        try:
            head = keras.Model([*model.inputs, activations], scored, name=f"{model.name}_head")
        except ValueError as error:
            raise ShapeError(
                f"the scored layer of {model.name!r} cannot be computed from layer "
                f"{layer_name!r}: pick a layer before it"
            ) from error
        cache[cache_key] = (encoder, head)
    return cache[cache_key]


def _select_output(model, output):
    if isinstance(output, str):
        if isinstance(model.output, Mapping) and output in model.output:
            return model.output[output]
        if output in model.output_names:
            return model.outputs[model.output_names.index(output)]
        raise ShapeError(f"model {model.name!r} has no output {output!r} ({model.output_names})")
    if not -len(model.outputs) <= output < len(model.outputs):
        raise ShapeError(f"model {model.name!r} has {len(model.outputs)} outputs, not {output + 1}")
    return model.outputs[output]


def _as_input_list(model, images) -> list[np.ndarray]:
    """The images as one float32 array per model input, in ``model.inputs`` order."""
    if isinstance(images, Mapping):
        if isinstance(model.input, Mapping):
            names = list(model.input)
            ordered = keras.tree.flatten({name: images.get(name) for name in names})
        else:
            names = [tensor.name for tensor in model.inputs]
            ordered = [images.get(name) for name in names]
        missing = [name for name in names if images.get(name) is None]
        if missing:
            raise ShapeError(f"no images for the model input(s) {missing}")
    elif isinstance(images, Sequence):
        ordered = list(images)
    else:
        ordered = [images]
    if len(ordered) != len(model.inputs):
        raise ShapeError(
            f"model {model.name!r} takes {len(model.inputs)} inputs, got {len(ordered)}"
        )

    arrays = []
    for array, tensor in zip(ordered, model.inputs):
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer):
            array = array.astype(np.float32, copy=False)
        if array.ndim == len(tensor.shape) - 1:
            array = array[..., np.newaxis]
        if array.ndim != len(tensor.shape):
            raise ShapeError(
                f"input {tensor.name!r} expects shape {tensor.shape}, got {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise InvalidDataError(f"input {tensor.name!r} has NaN or infinite values")
        arrays.append(array)
    if len({len(array) for array in arrays}) != 1:
        raise ShapeError(f"inputs have different batch sizes {[len(a) for a in arrays]}")
    if len(arrays[0]) == 0:
        raise ShapeError("no images: the batch is empty")
    return arrays


def _score_function(target, class_index, threshold):
    """One score per image from the scored tensor ``(B, H, W, C)``, with ``keras.ops``."""
    if callable(target):
        return target
    return _builtin_score(target, class_index, float(threshold))


@functools.lru_cache(maxsize=None)
def _builtin_score(target, class_index, threshold):
    """Cached, so a backend may compile its gradient once per score function."""
    if target not in ("foreground", "sum"):
        raise InvalidDataError(f"target must be 'foreground', 'sum' or a callable, not {target!r}")

    def score(y):
        if class_index is not None:
            foreground = y[..., class_index]
        elif y.shape[-1] == 1:
            foreground = y[..., 0]
        else:
            foreground = ops.sum(y[..., 1:], axis=-1)
        if target == "foreground":
            mask = ops.stop_gradient(ops.cast(ops.greater(foreground, threshold), foreground.dtype))
            foreground = foreground * mask
        return ops.sum(foreground, axis=(1, 2))

    return score
