"""Floating-point operations of a network's forward pass, counted from its layers.

The count is that of the multiply-accumulates of every convolution, transposed convolution
and dense layer (two FLOPs each), the layers that hold nearly all of a CNN's arithmetic. It
is taken from one forward pass on a single slice: the layers' ``call`` is wrapped for the
duration and each call's input and output shapes are recorded, so layers nested inside
custom blocks (the tuning network's residual blocks, ASPP, conv boxes) and layers called
more than once are counted as they run. Biases, normalization, activations, pooling,
resizing and element-wise merges are left out (a few per cent of a CNN's operations), so
the count is a slight lower bound; XLA's own count (``cost_analysis``) can be set beside it.
A training step costs about three forward passes (the backward pass computes the gradients
of both the inputs and the weights of each layer, each as much work as the forward pass).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections import Counter
from typing import Any

import keras
import numpy as np


@dataclasses.dataclass(frozen=True)
class FlopCount:
    """Forward-pass FLOPs for one input of batch size 1, in total and per layer kind."""

    total: int
    by_kind: dict[str, int]
    calls: int  # layer calls counted

    @property
    def training(self) -> int:
        """FLOPs of one training step per slice: forward + backward ≈ 3 × forward."""
        return 3 * self.total


def forward_flops(model: keras.Model, inputs: Any) -> FlopCount:
    """Count the FLOPs of ``model(inputs)`` per sample (see the module docstring).

    Args:
        model: a built Keras model (channels-last convolutions).
        inputs: one batch of the model's inputs (an array or a dict of arrays); only the
            first sample is run.
    Returns:
        :class:`FlopCount` of that sample.
    """
    first = keras.tree.map_structure(lambda a: np.asarray(a)[:1], inputs)
    kinds: Counter = Counter()
    calls = 0
    with _recording() as record:
        model(first, training=False)
    for layer, x_shape, y_shape in record:
        flops = _layer_flops(layer, x_shape, y_shape)
        kinds[type(layer).__name__] += flops
        calls += 1
    return FlopCount(int(sum(kinds.values())), dict(kinds), calls)


_COUNTED = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
            keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose,
            keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D, keras.layers.Dense)


@contextlib.contextmanager
def _recording():
    record: list[tuple[keras.layers.Layer, tuple, tuple]] = []
    patched = []
    for cls in _COUNTED:
        original = cls.call

        def call(self, inputs, *args, _original=original, **kwargs):
            outputs = _original(self, inputs, *args, **kwargs)
            record.append((self, tuple(inputs.shape), tuple(outputs.shape)))
            return outputs

        patched.append((cls, cls.__dict__.get("call")))
        cls.call = call
    try:
        yield record
    finally:
        for cls, own in patched:
            if own is None:
                del cls.call
            else:
                cls.call = own


def _layer_flops(layer, x_shape: tuple, y_shape: tuple) -> int:
    cin, cout = x_shape[-1], y_shape[-1]
    if isinstance(layer, keras.layers.Dense):
        return 2 * math.prod(x_shape[1:-1]) * cin * cout
    window = math.prod(layer.kernel_size)
    if isinstance(layer, keras.layers.SeparableConv2D):
        middle = cin * layer.depth_multiplier
        return 2 * math.prod(y_shape[1:-1]) * (middle * window + middle * cout)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return 2 * math.prod(y_shape[1:-1]) * cin * layer.depth_multiplier * window
    if isinstance(layer, (keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)):
        return 2 * math.prod(x_shape[1:-1]) * cin * window * cout  # each input pixel scattered
    groups = getattr(layer, "groups", 1)
    return 2 * math.prod(y_shape[1:-1]) * cout * window * cin // groups
