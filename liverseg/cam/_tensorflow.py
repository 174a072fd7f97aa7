"""Gradient of the Grad-CAM target with respect to the layer's activations, TensorFlow."""

import tensorflow as tf


def target_gradient(head, inputs, activations, score_fn):
    """Return ``d sum(score_fn(head([*inputs, activations]))) / d activations``."""
    activations = tf.convert_to_tensor(activations)
    with tf.GradientTape() as tape:
        tape.watch(activations)
        score = tf.reduce_sum(score_fn(head([*inputs, activations], training=False)))
    gradient = tape.gradient(score, activations)
    return tf.zeros_like(activations) if gradient is None else gradient
