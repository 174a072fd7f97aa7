"""Gradient of the Grad-CAM target with respect to the layer's activations, TensorFlow."""

import tensorflow as tf

_CACHE = "_liverseg_gradients"  # compiled gradients live on the head model itself


def target_gradient(head, inputs, activations, score_fn):
    """Return ``d sum(score_fn(head([*inputs, activations]))) / d activations``.

    Compiled with ``tf.function`` once per head and score function (eagerly the tape costs
    about three times as much per batch); the cache lives on the head, so it goes with it.
    """
    compiled = head.__dict__.setdefault(_CACHE, {})
    if score_fn not in compiled:
        if len(compiled) >= 8:  # user-supplied score callables: keep the cache small
            compiled.clear()

        @tf.function(reduce_retracing=True)
        def gradient(inputs, activations):
            with tf.GradientTape() as tape:
                tape.watch(activations)
                score = tf.reduce_sum(score_fn(head([*inputs, activations], training=False)))
            result = tape.gradient(score, activations)
            return tf.zeros_like(activations) if result is None else result

        compiled[score_fn] = gradient
    return compiled[score_fn](list(inputs), tf.convert_to_tensor(activations))


def cam_maps(encoder, head, inputs, score_fn, size, finish):
    """``finish(A, dS/dA, size)`` of a batch, the encoder's forward pass, the gradient and
    ``finish`` compiled together with ``tf.function`` (once per head, score function and size)."""
    compiled = head.__dict__.setdefault(_CAM_CACHE, {})
    key = (score_fn, tuple(size))
    if key not in compiled:
        if len(compiled) >= 8:
            compiled.clear()

        @tf.function(reduce_retracing=True)
        def maps(inputs):
            activations = encoder(inputs, training=False)
            with tf.GradientTape() as tape:
                tape.watch(activations)
                score = tf.reduce_sum(score_fn(head([*inputs, activations], training=False)))
            gradients = tape.gradient(score, activations)
            if gradients is None:
                gradients = tf.zeros_like(activations)
            return finish(activations, gradients, size)

        compiled[key] = maps
    return compiled[key](list(inputs))


_CAM_CACHE = "_liverseg_cam_maps"
