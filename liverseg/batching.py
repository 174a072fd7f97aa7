"""Whole batches: one input shape per network, so that it is traced or compiled once.

Each new batch shape costs TensorFlow a trace of the network (seconds for a small one on a
CPU) and JAX a compilation, so a short last batch would cost one more of each. Inference and
Grad-CAM treat rows one by one, so padding that batch with copies of its last row changes no
other row's result; the copies' outputs are dropped.
"""

from __future__ import annotations

import keras
import numpy as np


def pad_to_whole_batches(stack: np.ndarray, batch_size: int) -> np.ndarray:
    """``stack`` with its last row repeated up to a whole number of ``batch_size`` rows (a
    stack that already fills its batches is returned as it is)."""
    stack = np.asarray(stack)
    short = -len(stack) % batch_size
    if not short:
        return stack
    return np.concatenate([stack, np.repeat(stack[-1:], short, axis=0)])


def predict_in_whole_batches(model: keras.Model, inputs, batch_size: int):
    """``model.predict(inputs)`` with every batch ``batch_size`` rows long.

    ``inputs``: an array or a dict / list of arrays with the same number of rows. The whole
    batches are read from ``inputs`` as they are and only the last, short one is padded, so a
    large volume is not copied. Returns the model's output structure, one row per input row.
    """
    n = len(keras.tree.flatten(inputs)[0])
    whole = n - n % batch_size
    parts = []
    if whole:
        parts.append(model.predict(keras.tree.map_structure(lambda a: a[:whole], inputs),
                                   batch_size=batch_size, verbose=0))
    if whole < n:
        tail = keras.tree.map_structure(lambda a: pad_to_whole_batches(a[whole:], batch_size),
                                        inputs)
        parts.append(keras.tree.map_structure(lambda out: np.asarray(out)[: n - whole],
                                              model.predict(tail, batch_size=batch_size,
                                                            verbose=0)))
    if len(parts) == 1:
        return parts[0]
    return keras.tree.map_structure(lambda *outs: np.concatenate(outs), *parts)
