"""Whole batches: one input shape per network, so that it is traced or compiled once."""

from __future__ import annotations

import numpy as np


def pad_to_whole_batches(stack: np.ndarray, batch_size: int) -> np.ndarray:
    """``stack`` with its last row repeated up to a whole number of ``batch_size`` rows.

    Each new batch shape costs TensorFlow a trace of the network (seconds for a small one on a
    CPU) and JAX a compilation, so a short last batch would cost one more of each. Inference
    and Grad-CAM treat rows one by one, so the copies change no other row's result; callers
    drop their outputs. A stack that already fills its batches is returned as it is.
    """
    stack = np.asarray(stack)
    short = -len(stack) % batch_size
    if not short:
        return stack
    return np.concatenate([stack, np.repeat(stack[-1:], short, axis=0)])
