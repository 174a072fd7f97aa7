"""Grad-CAM for segmentation networks, on any Keras 3 backend.

Grad-CAM (Selvaraju et al., ICCV 2017) weights a convolution layer's activation maps
``A_k`` by how much the network's score rises with them, ``w_k = mean_ij dS/dA_k(i, j)``,
and keeps the positive evidence, ``cam = ReLU(sum_k w_k A_k)``. For a segmentation
network the score ``S`` of an image is the summed foreground score over the pixels the
network itself predicts as foreground (Vinogradova et al., AAAI 2020):

    S = sum_ij y(i, j) * [y(i, j) > threshold]

so the map shows what supports the predicted region rather than every pixel's score. The
mask is treated as a constant (no gradient flows through the comparison).

The network is split at the chosen layer into an *encoder* (inputs -> A) and a *head*
((inputs, A) -> output; the inputs are still there for skip connections), and ``dS/dA``
is taken through the head by one small function per backend (``_tensorflow``, ``_jax``,
``_torch``), chosen by ``keras.backend.backend()`` and imported lazily.
"""

from __future__ import annotations

import functools
import importlib
import weakref
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np
from keras import ops
from skimage.transform import resize

from liverseg.errors import InvalidDataError, ShapeError

_BACKENDS = {"tensorflow": "_tensorflow", "jax": "_jax", "torch": "_torch"}
_SPLITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def grad_cam(
    model: keras.Model,
    images,
    layer_name: str | None = None,
    target: str | Callable = "foreground",
    *,
    output: int | str = 0,
    class_index: int | None = None,
    threshold: float = 0.5,
    batch_size: int = 8,
) -> np.ndarray:
    """Grad-CAM of a segmentation model's foreground, one map per image.

    Args:
        model: a functional Keras model whose output is ``(B, H, W, C)`` scores
            (probabilities: ``threshold`` is applied to them).
        images: a batch for the model's input: an array ``(B, H, W, C)`` (``(B, H, W)``
            gets a channel axis), or a list / dict of arrays for a multi-input model such
            as the tuning network (dict keys are the input names).
        layer_name: the layer whose activations are explained; it must be a layer of the
            model's own graph with a ``(B, h, w, K)`` output. ``None`` uses
            :func:`default_cam_layer`, the bottleneck's output.
        target: ``"foreground"`` scores an image by ``sum y * (y > threshold)``;
            ``"sum"`` by ``sum y`` over all pixels; a callable maps the output
            ``(B, H, W, C)`` to one score per image with ``keras.ops``.
        output: which output of a multi-output model, by index into ``model.outputs``
            or by name (an output layer's name or an output dict key).
        class_index: which channel is the foreground. ``None``: the only channel of a
            one-channel (sigmoid) output, else everything but channel 0 (background)
            of a softmax output.
        threshold: the foreground threshold of the ``"foreground"`` target (use 0 for
            a model that outputs logits).
        batch_size: images per forward/backward pass.

    Returns:
        ``(B, H, W)`` float32 maps in [0, 1] at the output's resolution, bilinearly
        upsampled (to the input's size if the output's is not static) and divided by
        each map's maximum, so 0 keeps meaning "no evidence" and an image without
        evidence (e.g. nothing predicted) gets an all-zero map.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise InvalidDataError(f"batch_size must be a positive integer, got {batch_size}")
    inputs = _as_input_list(model, images)
    encoder, head = _split(model, layer_name or default_cam_layer(model), output)
    gradient_fn = importlib.import_module(
        f"liverseg.cam.{_BACKENDS[keras.backend.backend()]}"
    ).target_gradient
    score_fn = _score_function(target, class_index, threshold)

    cams = []
    for start in range(0, len(inputs[0]), batch_size):
        batch = [ops.convert_to_tensor(x[start : start + batch_size]) for x in inputs]
        activations = encoder(batch, training=False)
        gradients = gradient_fn(head, batch, activations, score_fn)
        weights = ops.mean(gradients, axis=(1, 2), keepdims=True)
        cam = ops.relu(ops.sum(weights * activations, axis=-1))
        cams.append(ops.convert_to_numpy(cam))
    size = tuple(head.outputs[0].shape[1:3])
    if None in size:  # a fully convolutional model: its output is as large as its input
        size = inputs[0].shape[1:3]
    return np.stack([_normalise(resize_cam(c, size)) for c in np.concatenate(cams)])


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


def resize_cam(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of one map with pixel-centre alignment (as ``UpSampling2D``)."""
    if cam.shape == tuple(size):
        return cam.astype(np.float32)
    return resize(cam, size, order=1, mode="edge", anti_aliasing=False, preserve_range=True).astype(
        np.float32
    )


def _normalise(cam: np.ndarray) -> np.ndarray:
    peak = float(cam.max())
    return cam / peak if peak > 1e-12 else np.zeros_like(cam)


def _split(model, layer_name: str, output) -> tuple[keras.Model, keras.Model]:
    """Encoder (inputs -> A) and head ((inputs, A) -> output) sharing the model's weights."""
    key = (layer_name, output)
    cache = _SPLITS.setdefault(model, {})
    if key not in cache:
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
        selected = _select_output(model, output)
        if len(selected.shape) != 4:
            raise ShapeError(f"Grad-CAM needs a (B, H, W, C) output, got shape {selected.shape}")
        encoder = keras.Model(model.inputs, activations, name=f"{model.name}_to_{layer_name}")
        head = keras.Model([*model.inputs, activations], selected, name=f"{model.name}_head")
        cache[key] = (encoder, head)
    return cache[key]


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
    """One score per image from the output ``(B, H, W, C)``, written with ``keras.ops``."""
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
