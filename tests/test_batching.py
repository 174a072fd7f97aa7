"""Whole batches: a network predicts (and Grad-CAM differentiates) every stack size with one
batch shape, so it is traced once, and the padding changes no row's result."""

import numpy as np
import pytest

from liverseg.batching import pad_to_whole_batches, predict_in_whole_batches


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


def test_a_model_of_two_inputs_and_outputs_predicts_row_by_row_in_whole_batches():
    import keras

    keras.utils.set_random_seed(1)
    image, prior = keras.Input((8, 8, 1), name="image"), keras.Input((8, 8, 1), name="prior")
    hidden = keras.layers.Conv2D(3, 3, padding="same")(keras.layers.Concatenate()([image, prior]))
    model = keras.Model({"image": image, "prior": prior},
                        {"level_1": keras.layers.Conv2D(1, 1)(hidden),
                         "level_2": keras.layers.AveragePooling2D(2)(hidden)})
    rng = np.random.default_rng(1)
    inputs = {name: rng.normal(size=(11, 8, 8, 1)).astype("float32") for name in ("image", "prior")}
    out = predict_in_whole_batches(model, inputs, 4)
    assert out["level_1"].shape == (11, 8, 8, 1) and out["level_2"].shape == (11, 4, 4, 3)
    for name, expected in model.predict(inputs, batch_size=11, verbose=0).items():
        np.testing.assert_allclose(out[name], expected, rtol=1e-5, atol=1e-6)
    short = predict_in_whole_batches(model, {k: v[:3] for k, v in inputs.items()}, 4)
    np.testing.assert_allclose(short["level_1"], out["level_1"][:3], rtol=1e-5, atol=1e-6)
