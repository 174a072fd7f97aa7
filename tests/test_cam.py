"""Grad-CAM on tiny functional models, on whichever Keras backend runs the suite."""

import keras
import numpy as np
import pytest
from keras import layers

from liverseg.cam import default_cam_layer, grad_cam, score_gradients
from liverseg.config import LocalizationConfig
from liverseg.errors import InvalidDataError, ShapeError
from liverseg.models import build_localization_net

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


# ------------------------------------------------------------------ logits of the localization net


def tiny_localization_net():
    return build_localization_net(LocalizationConfig(image_size=SIZE, base_filters=4, depth=2))


def test_localization_net_exposes_its_logits_and_grad_cam_scores_them(tmp_path):
    keras.utils.set_random_seed(0)
    model = tiny_localization_net()
    assert model.output_names == ["probability"] and model.output.shape[1:] == (SIZE, SIZE, 1)
    assert model.get_layer("logits").output.shape[1:] == (SIZE, SIZE, 1)
    assert model.get_layer("logits").dtype_policy.compute_dtype == "float32"
    images = np.random.default_rng(0).normal(size=(2, SIZE, SIZE, 1)).astype("float32")
    model.save(tmp_path / "net.keras")
    loaded = keras.models.load_model(tmp_path / "net.keras")  # no custom objects
    for net in (model, loaded):
        both = keras.Model(net.inputs, [net.get_layer("logits").output, net.output])
        logits, probability = (keras.ops.convert_to_numpy(t) for t in both([images]))
        np.testing.assert_allclose(probability, 1 / (1 + np.exp(-logits)), atol=1e-6)
    # the default score is the logit; the probability stays available by layer or by output
    np.testing.assert_array_equal(grad_cam(model, images),
                                  grad_cam(model, images, score_layer="logits"))
    np.testing.assert_allclose(grad_cam(loaded, images), grad_cam(model, images), atol=1e-5)
    np.testing.assert_array_equal(grad_cam(model, images, output=0),
                                  grad_cam(model, images, score_layer="probability"))
    with pytest.raises(InvalidDataError, match="not both"):
        grad_cam(model, images, score_layer="logits", output=0)
    with pytest.raises(ShapeError, match="no layer 'nope'"):
        grad_cam(model, images, score_layer="nope")
    with pytest.raises(InvalidDataError, match="probability"):
        grad_cam(model, images, threshold=1.0)  # a logit score needs a threshold in (0, 1)


def disc_images(rng, n):
    """Bright discs (+1, radius 5-9 px) on noise (sd 0.3), and the disc masks."""
    ys, xs = np.mgrid[:SIZE, :SIZE]
    images = rng.normal(0, 0.3, (n, SIZE, SIZE, 1)).astype("float32")
    masks = np.zeros((n, SIZE, SIZE), bool)
    for i in range(n):
        radius = rng.uniform(5, 9)
        cy, cx = rng.uniform(radius + 1, SIZE - radius - 1, 2)
        masks[i] = (ys - cy) ** 2 + (xs - cx) ** 2 <= radius**2
        images[i, masks[i]] += 1.0
    return images, masks


def train_confident_disc_localizer(tries=3):
    """A tiny localization net trained on discs until it is sure of them, 8 held-out images
    and its probabilities on them. A run whose ReLUs die is retried with the next seed."""
    for seed in range(tries):
        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        images, masks = disc_images(rng, 64)
        model = tiny_localization_net()
        model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy")
        model.fit(images, masks[..., None].astype("float32"), batch_size=16, epochs=40, verbose=0)
        held_out, truth = disc_images(rng, 8)
        p = keras.ops.convert_to_numpy(model(held_out))[..., 0]
        dice = 2 * ((p > 0.5) & truth).sum() / ((p > 0.5).sum() + truth.sum())
        if dice > 0.9 and (p[truth] > 0.99).mean() > 0.6:  # most disc pixels: p > 0.99
            return model, held_out, p
    pytest.fail(f"the tiny localization net did not become confident in {tries} tries")


def test_on_a_confident_net_the_logit_score_draws_on_every_predicted_pixel():
    # The issue: through the sigmoid, dS/dz = p (1 - p) vanishes on confident pixels, so a
    # probability score hears only the uncertain border. At the input A of the 1x1 `logits`
    # conv, dS/dA(pixel) = kernel * dS/dz(pixel): its norm is each pixel's say in Grad-CAM.
    model, images, p = train_confident_disc_localizer()
    predicted, confident = p > 0.5, p > 0.99
    uncertain = predicted & (p < 0.95)
    assert uncertain.sum() > 20  # the border ring exists

    def say(**kwargs):
        _, gradients = score_gradients(model, images, "dec1_relu2", **kwargs)
        return np.linalg.norm(gradients, axis=-1)

    logit, probability = say(), say(score_layer="probability")
    # logit score: the same weight at every predicted pixel (mask: logit > 0), none elsewhere
    off = (logit > 0) != predicted
    assert not (off & (np.abs(p - 0.5) > 1e-3)).any()
    np.testing.assert_allclose(logit[predicted], logit[predicted].max(), rtol=1e-4)
    # ... a higher threshold is a probability, applied as its logit, log(0.9 / 0.1)
    off = (say(threshold=0.9) > 0) != (p > 0.9)
    assert not (off & (np.abs(p - 0.9) > 1e-3)).any()

    share = {name: g[confident].sum() / g.sum() for name, g in
             (("logit", logit), ("probability", probability))}
    np.testing.assert_allclose(share["logit"], confident.sum() / predicted.sum(), rtol=1e-4)
    assert share["logit"] > 0.6  # most of the evidence comes from the confident pixels ...
    assert share["probability"] < 0.15  # ... which the probability score all but ignores
    assert probability[confident].mean() < 0.05 * probability[uncertain].mean()


def test_a_backend_without_a_tested_gradient_is_refused_by_name(monkeypatch):
    """Grad-CAM runs on TensorFlow and JAX only (PyTorch is not installed or tested)."""
    from liverseg.cam import gradcam
    from liverseg.errors import UnsupportedBackendError

    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(2, 3, padding="same"),
                              layers.Conv2D(1, 1, activation="sigmoid")])
    images = np.zeros((1, 8, 8, 1), np.float32)
    assert gradcam.backend_module() in ("_tensorflow", "_jax")  # the suite's own backend
    monkeypatch.setattr(gradcam.keras.backend, "backend", lambda: "torch")
    with pytest.raises(UnsupportedBackendError, match="'tensorflow' and 'jax', not 'torch'"):
        grad_cam(model, images, layer_name=model.layers[0].name)
