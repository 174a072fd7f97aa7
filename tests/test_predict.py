"""The ROI priors of a stack of slices: Grad-CAM only where the localizer predicts something."""

import numpy as np
import pytest

from liverseg.config import PriorConfig
from liverseg.crf import CRFParams


@pytest.mark.keras  # on every backend: Grad-CAM has one gradient function per backend
def test_grad_cam_runs_only_on_slices_with_a_pixel_above_one_half(monkeypatch):
    import keras

    from liverseg import cam
    from liverseg.predict import predict_priors, predict_probability
    from liverseg.prior import roi_priors

    # p = sigmoid(10 relu(x) - 5): above 0.5 exactly where the image is above 0.5
    image = keras.Input((24, 24, 1))
    features = keras.layers.Conv2D(1, 1, activation="relu", name="features")(image)
    logits = keras.layers.Conv2D(1, 1, name="logits")(features)
    model = keras.Model(image, keras.layers.Activation("sigmoid", name="probability")(logits))
    model.get_layer("features").set_weights([np.ones((1, 1, 1, 1)), np.zeros(1)])
    model.get_layer("logits").set_weights([np.full((1, 1, 1, 1), 10.0), np.full(1, -5.0)])

    organ = np.zeros((24, 24), bool)
    organ[6:18, 4:16] = True
    hu = np.stack([np.where(organ, 110.0, -80.0)] * 5).astype(np.float32)
    images = np.stack([organ * 1.0, organ * 0.45, np.zeros((24, 24)), organ * 0.8,
                       organ * 0.499]).astype(np.float32)
    config = PriorConfig(margin=2, cam_layer="features",
                         crf=CRFParams(gaussian_sxy=1.0, bilateral_sxy=2.5))

    scored_rows = []
    grad_cam = cam.grad_cam
    monkeypatch.setattr(cam, "grad_cam", lambda model, x, **kwargs: scored_rows.append(len(x))
                        or grad_cam(model, x, **kwargs))
    priors = predict_priors(model, images, hu, config, batch_size=2)
    assert scored_rows == [2]  # the slices at 1.0 and 0.8

    probability = predict_probability(model, images, batch_size=2)
    every_cam = grad_cam(model, images[..., None], layer_name="features", batch_size=2)
    assert not every_cam[[1, 2, 4]].any()  # what was not computed is zero indeed
    np.testing.assert_array_equal(
        priors, roi_priors(probability, every_cam, hu, progress=False, **config.roi_kwargs()))
    assert priors[0].any() and priors[3].any() and not priors[[1, 2, 4]].any()
