"""Keras' Adam, its update on TensorFlow one fused kernel per variable.

Keras 3 updates each variable on TensorFlow with about fifteen small graph operations (the
bias corrections recomputed per variable, then ``m``, ``v`` and the variable each assigned in
turn). For the paper's networks at this project's CPU sizes that costs twice: tracing them is
a second or more of every network's first step, and running a thousand tiny operations per
step is a fifth of a `smoke` cascade's training time (at `demo`'s sizes the convolutions
outweigh them and only the tracing is saved). :class:`Adam` computes the same update with
TensorFlow's own ``ResourceApplyAdam`` kernel (one per variable, the same formula: ``m``, ``v``
moved towards the gradient by ``1 − β₁``, ``1 − β₂``, the variable by ``lr · √(1 − β₂ᵗ) /
(1 − β₁ᵗ) · m / (√v + ε)``), so the values agree with Keras' Adam up to rounding.

Where that kernel does not apply, Keras' own update runs: other backends (JAX traces one
program and XLA fuses it anyway), ``amsgrad``, a ``tf.distribute`` strategy (its mirrored
variables need Keras' cross-replica update), variables other than ``float32``/``float64``.
Clipping, weight decay, EMA and loss scaling are Keras' (they happen around this update).
"""

from __future__ import annotations

import keras

FUSED_DTYPES = ("float32", "float64")


@keras.saving.register_keras_serializable(package="liverseg")
class Adam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` (same arguments, variables and values up to rounding) whose
    update on TensorFlow is one ``ResourceApplyAdam`` per variable."""

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if not self._fusable(trainable_variables):
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        import tensorflow as tf

        step = self.iterations + 1  # Keras' local step: this update is the step-th
        scalars = {}
        for grad, variable in zip(grads, trainable_variables):
            dtype = variable.dtype
            if dtype not in scalars:  # the bias corrections once per dtype, not per variable
                t = tf.cast(step, dtype)
                beta_1 = tf.constant(self.beta_1, dtype)
                beta_2 = tf.constant(self.beta_2, dtype)
                scalars[dtype] = dict(
                    beta1_power=tf.pow(beta_1, t), beta2_power=tf.pow(beta_2, t),
                    lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
                    epsilon=tf.constant(self.epsilon, dtype))
            index = self._get_variable_index(variable)
            tf.raw_ops.ResourceApplyAdam(
                var=_handle(variable), m=_handle(self._momentums[index]),
                v=_handle(self._velocities[index]), grad=tf.cast(grad, dtype),
                **scalars[dtype])

    def _fusable(self, trainable_variables) -> bool:
        if keras.backend.backend() != "tensorflow" or self.amsgrad:
            return False
        import tensorflow as tf

        return not tf.distribute.has_strategy() and all(
            v.dtype in FUSED_DTYPES for v in trainable_variables)


def _handle(variable):
    """The resource handle of a Keras variable's ``tf.Variable``."""
    return getattr(variable, "value", variable).handle
