"""Grad-CAM on tiny functional models, on whichever Keras backend runs the suite."""

import keras
import numpy as np
import pytest
from keras import layers

from liverseg.cam import default_cam_layer, grad_cam
from liverseg.errors import InvalidDataError, ShapeError

pytestmark = pytest.mark.keras

SIZE = 32


def tiny_unet(skip=True, name="tiny_unet"):
    """Conv -> pool -> bottleneck conv -> upsample (+ skip) -> sigmoid, 32x32."""
    image = keras.Input((SIZE, SIZE, 1), name="image")
    features = layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(image)
    pooled = layers.MaxPooling2D(name="pool")(features)
    bottleneck = layers.Conv2D(8, 3, padding="same", activation="relu", name="bottleneck")(pooled)
    up = layers.UpSampling2D(name="up")(bottleneck)
    merged = layers.Concatenate(name="skip")([up, features]) if skip else up
    rare = keras.initializers.Constant(-2.0)  # start by predicting background, as the data
    mask = layers.Conv2D(1, 1, activation="sigmoid", bias_initializer=rare, name="mask")(merged)
    return keras.Model(image, mask, name=name)


def bright_square_detector():
    """A U-Net-ish net with hand-set weights: it segments bright squares and ignores dark ones.

    ``features`` has a bright-pixel channel and a dark-pixel channel whose activations are
    three times larger; only the bright path reaches the output. A map built from
    activations alone would point at the dark square; Grad-CAM must point at the bright one.
    """
    model = tiny_unet()
    kernel = np.zeros((3, 3, 1, 4), "float32")
    kernel[1, 1, 0, 0], kernel[1, 1, 0, 1] = 1.0, -3.0
    model.get_layer("features").set_weights([kernel, np.array([-0.5, -1.5, 0, 0], "float32")])
    kernel = np.zeros((3, 3, 4, 8), "float32")
    kernel[:, :, 0, 0] = 1.0 / 9
    kernel[:, :, 1, 1] = 1.0 / 9
    model.get_layer("bottleneck").set_weights([kernel, np.zeros(8, "float32")])
    kernel = np.zeros((1, 1, 12, 1), "float32")
    kernel[0, 0, 0, 0] = 20.0
    model.get_layer("mask").set_weights([kernel, np.array([-4.0], "float32")])
    return model


def squares(rng, n, bright=True, dark=True, side=8):
    """Images with a bright (+1) and a dark (-1) square at random places, and the bright masks."""
    images = rng.normal(0, 0.05, (n, SIZE, SIZE, 1)).astype("float32")
    masks = np.zeros((n, SIZE, SIZE), bool)
    for i in range(n):
        while True:
            (by, bx), (dy, dx) = rng.integers(0, SIZE - side, (2, 2))
            if abs(by - dy) > side or abs(bx - dx) > side:
                break
        if bright:
            images[i, by : by + side, bx : bx + side] += 1.0
            masks[i, by : by + side, bx : bx + side] = True
        if dark:
            images[i, dy : dy + side, dx : dx + side] -= 1.0
    return images, masks


def near(mask, point, tolerance=2):
    grown = np.zeros_like(mask)
    ys, xs = np.nonzero(mask)
    grown[max(ys.min() - tolerance, 0) : ys.max() + tolerance + 1,
          max(xs.min() - tolerance, 0) : xs.max() + tolerance + 1] = True
    return bool(grown[point])


def test_cam_peaks_on_the_segmented_square_not_on_the_stronger_distractor():
    model = bright_square_detector()
    images, masks = squares(np.random.default_rng(0), 4)
    cams = grad_cam(model, images, "bottleneck")
    assert cams.shape == (4, SIZE, SIZE) and cams.dtype == np.float32
    for cam, mask in zip(cams, masks):
        assert near(mask, np.unravel_index(np.argmax(cam), cam.shape))
        assert cam[mask].mean() > 5 * cam[~mask].mean()
    # new weights are used, not ones cached with the compiled gradient: now nothing is found
    model.get_layer("mask").set_weights([np.zeros((1, 1, 12, 1), "float32"), np.array([-4.0])])
    np.testing.assert_array_equal(grad_cam(model, images, "bottleneck"), 0)


def train_square_segmenter(tries=3):
    """A tiny encoder-decoder trained to segment bright squares, and 4 held-out images.

    Its bottleneck is its only path (no skip), so its Grad-CAM must find the square there.
    A run whose ReLUs die is retried with the next seed; one that never learns fails.
    """
    for seed in range(tries):
        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        images, masks = squares(rng, 64, dark=False)
        model = tiny_unet(skip=False)
        model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy")
        model.fit(images, masks[..., None].astype("float32"), batch_size=16, epochs=20, verbose=0)
        held_out, truth = squares(rng, 4, dark=False)
        predicted = keras.ops.convert_to_numpy(model(held_out))[..., 0] > 0.5
        if 2 * (predicted & truth).sum() / (predicted.sum() + truth.sum()) > 0.8:
            return model, held_out, truth
    pytest.fail(f"the tiny net did not learn to segment squares in {tries} tries")


def test_cam_of_a_trained_net_peaks_on_a_held_out_square():
    model, held_out, truth = train_square_segmenter()
    cams = grad_cam(model, held_out)  # default layer: the bottleneck
    for cam, mask in zip(cams, truth):
        ys, xs = np.indices(cam.shape)
        centroid = (round((ys * cam).sum() / cam.sum()), round((xs * cam).sum() / cam.sum()))
        assert near(mask, centroid)
        assert near(mask, np.unravel_index(np.argmax(cam), cam.shape))
        assert cam[mask].mean() > 10 * cam[~mask].mean()


def test_cam_equals_relu_of_weighted_activations_for_a_linear_head():
    # With a linear 1x1 head, dS/dA_k is the head's weight w_k at every pixel, so
    # Grad-CAM must be ReLU(sum_k w_k A_k) = ReLU(y - bias), normalised.
    keras.utils.set_random_seed(3)
    image = keras.Input((SIZE, SIZE, 1))
    features = layers.Conv2D(6, 3, padding="same", activation="relu", name="features")(image)
    score = layers.Conv2D(1, 1, name="score")(features)
    model = keras.Model(image, score)
    images = np.random.default_rng(3).normal(size=(3, SIZE, SIZE, 1)).astype("float32")
    bias = model.get_layer("score").get_weights()[1][0]
    expected = np.maximum(keras.ops.convert_to_numpy(model(images))[..., 0] - bias, 0)
    expected /= expected.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(grad_cam(model, images, "features", "sum"), expected, atol=1e-4)


def test_maps_are_in_unit_range_batch_independent_and_zero_without_foreground():
    model = bright_square_detector()
    images, _ = squares(np.random.default_rng(4), 5)
    empty, _ = squares(np.random.default_rng(5), 1, bright=False)
    batch = np.concatenate([images, empty])
    cams = grad_cam(model, batch[..., 0], "bottleneck", batch_size=2)  # (B, H, W) gets a channel
    assert np.isfinite(cams).all() and cams.min() >= 0
    np.testing.assert_allclose(cams[:5].max(axis=(1, 2)), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(cams[5], 0)
    np.testing.assert_allclose(cams, grad_cam(model, batch, "bottleneck", batch_size=8), atol=1e-5)


def test_multi_input_multi_output_model_by_input_and_output_name():
    image = keras.Input((SIZE, SIZE, 1), name="image")
    prior = keras.Input((SIZE, SIZE, 1), name="prior")
    features = layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(image)
    gated = layers.Multiply(name="gate")([features, prior])
    liver = layers.Conv2D(1, 1, activation="sigmoid", name="liver")(gated)
    aux = layers.Conv2D(1, 1, activation="sigmoid", name="aux")(features)
    model = keras.Model({"image": image, "prior": prior}, [aux, liver])
    kernel = np.zeros((3, 3, 1, 4), "float32")
    kernel[1, 1, 0, 0] = 1.0
    model.get_layer("features").set_weights([kernel, np.array([-0.5, 0, 0, 0], "float32")])
    model.get_layer("liver").set_weights([np.full((1, 1, 4, 1), 10.0, "float32"), np.array([-3.0])])
    images = np.zeros((1, SIZE, SIZE, 1), "float32")
    images[:, 8:16, 4:12] = images[:, 8:16, 20:28] = 1.0  # a square in each half
    right = np.zeros_like(images)
    right[:, :, SIZE // 2 :] = 1.0  # the prior keeps the right half only
    cam = grad_cam(model, {"prior": right, "image": images}, "gate", output="liver")[0]
    assert cam.shape == (SIZE, SIZE)
    np.testing.assert_allclose(cam[8:16, 20:28], 1.0, rtol=1e-6)
    assert cam[8:16, 4:12].max() == 0
    # the first output does not depend on the gate: no evidence, an all-zero map
    np.testing.assert_array_equal(grad_cam(model, [images, right], "gate", target="sum"), 0)
    with pytest.raises(ShapeError, match="prior"):
        grad_cam(model, {"image": images}, "features", output="liver")
    with pytest.raises(ShapeError, match="no output"):
        grad_cam(model, [images, right], "features", output="lesion")


def test_default_layer_is_the_bottleneck_output_even_without_static_sizes():
    assert default_cam_layer(tiny_unet()) == "bottleneck"
    image = keras.Input((None, None, 1))
    x = layers.Conv2D(4, 3, padding="same", name="c1")(image)
    x = layers.MaxPooling2D(name="pool1")(x)
    x = layers.Conv2D(16, 3, padding="same", name="deep_conv")(x)
    x = layers.Activation("relu", name="deep_relu")(x)
    x = layers.UpSampling2D(name="up")(x)
    x = layers.Concatenate(name="skip")([x, image])
    out = layers.Conv2D(1, 1, activation="sigmoid", name="out")(x)
    model = keras.Model(image, out)
    assert default_cam_layer(model) == "deep_relu"
    cams = grad_cam(model, np.random.default_rng(0).normal(size=(2, 24, 24, 1)), target="sum")
    assert cams.shape == (2, 24, 24)


def test_bad_layer_input_and_values_raise_liverseg_errors():
    model = tiny_unet()
    images = np.zeros((1, SIZE, SIZE, 1), "float32")
    with pytest.raises(ShapeError, match="no layer"):
        grad_cam(model, images, "nope")
    with pytest.raises(ShapeError, match="takes 1 inputs"):
        grad_cam(model, [images, images])
    with pytest.raises(ShapeError, match="expects shape"):
        grad_cam(model, np.zeros((SIZE, SIZE)))
    images[0, 0, 0, 0] = np.nan
    with pytest.raises(InvalidDataError, match="NaN"):
        grad_cam(model, images)
    with pytest.raises(InvalidDataError, match="target"):
        grad_cam(model, np.zeros((1, SIZE, SIZE, 1)), target="max")
