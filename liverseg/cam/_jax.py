"""Gradient of the Grad-CAM target with respect to the layer's activations, JAX."""

import jax
import jax.numpy as jnp

_CACHE = "_liverseg_gradients"  # compiled gradients live on the head model itself


def target_gradient(head, inputs, activations, score_fn):
    """Return ``d sum(score_fn(head([*inputs, activations]))) / d activations``.

    JAX differentiates pure functions, so the head runs through ``stateless_call`` with
    its variables' current values passed in explicitly; the gradient is compiled once per
    head and score function (and input shape).
    """
    # Not a WeakKeyDictionary keyed by the head: the compiled function refers to the head,
    # so the entry would keep its own key alive for ever.
    compiled = head.__dict__.setdefault(_CACHE, {})
    if score_fn not in compiled:
        if len(compiled) >= 8:  # user-supplied score callables: keep the cache small
            compiled.clear()

        def score(a, trainable, non_trainable, inputs):
            outputs, _ = head.stateless_call(trainable, non_trainable, [*inputs, a], training=False)
            return jnp.sum(score_fn(outputs))

        compiled[score_fn] = jax.jit(jax.grad(score))
    trainable = [v.value for v in head.trainable_variables]
    non_trainable = [v.value for v in head.non_trainable_variables]
    return compiled[score_fn](jnp.asarray(activations), trainable, non_trainable, list(inputs))


def cam_maps(encoder, head, inputs, score_fn, size, finish):
    """``finish(A, dS/dA, size)`` of a batch, the encoder's forward pass, the gradient and
    ``finish`` compiled together (once per head, score function and size, and input shape)."""
    compiled = head.__dict__.setdefault(_CAM_CACHE, {})
    key = (score_fn, tuple(size))
    if key not in compiled:
        if len(compiled) >= 8:
            compiled.clear()

        def maps(encoder_values, head_values, inputs):
            activations, _ = encoder.stateless_call(*encoder_values, inputs, training=False)

            def score(a):
                outputs, _ = head.stateless_call(*head_values, [*inputs, a], training=False)
                return jnp.sum(score_fn(outputs))

            return finish(activations, jax.grad(score)(activations), size)

        compiled[key] = jax.jit(maps)
    values = [[[v.value for v in model.trainable_variables],
               [v.value for v in model.non_trainable_variables]] for model in (encoder, head)]
    return compiled[key](*values, list(inputs))


_CAM_CACHE = "_liverseg_cam_maps"
