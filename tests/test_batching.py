"""Whole batches: a network predicts (and Grad-CAM differentiates) every stack size with one
batch shape, so it is traced once, and the padding changes no row's result."""

import numpy as np
import pytest

from liverseg.batching import pad_to_whole_batches


def test_the_last_row_is_repeated_up_to_whole_batches():
    stack = np.arange(5 * 2).reshape(5, 2)
    padded = pad_to_whole_batches(stack, 4)
    assert padded.shape == (8, 2)
    np.testing.assert_array_equal(padded[:5], stack)
    np.testing.assert_array_equal(padded[5:], np.repeat(stack[-1:], 3, axis=0))


@pytest.mark.keras  # on every backend: JAX compiles once per batch shape, TensorFlow traces
def test_a_network_is_traced_once_for_every_stack_size_and_each_row_is_its_own():
    import keras

    from liverseg import cam
    from liverseg.predict import predict_probability

    traced = []

    class Counted(keras.Model):
        def predict_step(self, *args):  # TensorFlow: (data); JAX: (state, data)
            traced.append(1)
            return super().predict_step(*args)

    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, 1))
    hidden = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(image)
    model = Counted(image, keras.layers.Conv2D(1, 1, activation="sigmoid")(hidden))
    rng = np.random.default_rng(0)
    stack = rng.normal(size=(11, 16, 16)).astype("float32")
    whole = predict_probability(model, stack, batch_size=4)
    assert whole.shape == (11, 16, 16)
    for size in (1, 3, 6):
        np.testing.assert_allclose(predict_probability(model, stack[:size], batch_size=4),
                                   whole[:size], rtol=1e-5, atol=1e-6)
    assert len(traced) == 1
    maps = cam.grad_cam(model, stack[..., None], layer_name="features", batch_size=4)
    assert maps.shape == (11, 16, 16)
    np.testing.assert_allclose(cam.grad_cam(model, stack[:3, ..., None], layer_name="features",
                                            batch_size=4), maps[:3], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("size", [0, 4])
def test_an_empty_or_whole_stack_is_returned_as_it_is(size):
    stack = np.zeros((size, 3), np.float32)
    assert pad_to_whole_batches(stack, 4) is stack
