"""Losses against NumPy formulas, weight schemes, resized targets, and a toy training step."""

import keras
import numpy as np
import pytest

from liverseg import losses
from liverseg.errors import ShapeError

pytestmark = pytest.mark.keras

EPS = 1e-7  # keras.backend.epsilon(), the clipping of Keras' BCE


def batch(seed=0, shape=(3, 8, 8, 1)):
    rng = np.random.default_rng(seed)
    y_true = (rng.random(shape) > 0.6).astype("float32")
    y_pred = rng.uniform(0.01, 0.99, shape).astype("float32")
    return y_true, y_pred


def numpy_dice(y, p, smooth=1.0):
    axes = tuple(range(1, y.ndim))
    per_sample = 1 - (2 * (y * p).sum(axes) + smooth) / (y.sum(axes) + p.sum(axes) + smooth)
    return per_sample.mean()


def numpy_bce(y, p):
    p = np.clip(p, EPS, 1 - EPS)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()


def value(x):
    return float(keras.ops.convert_to_numpy(x))


def test_dice_loss_matches_formula_per_sample_mean():
    y, p = batch()
    assert value(losses.DiceLoss()(y, p)) == pytest.approx(numpy_dice(y, p), rel=1e-5)
    smoother = losses.DiceLoss(smooth=0.5)(y, p)
    assert value(smoother) == pytest.approx(numpy_dice(y, p, 0.5), rel=1e-5)
    # per-sample, not batch-pooled: differs from the pooled Dice on this batch
    pooled = 1 - (2 * (y * p).sum() + 1) / (y.sum() + p.sum() + 1)
    assert abs(value(losses.DiceLoss()(y, p)) - pooled) > 1e-4


def test_dice_loss_is_zero_for_perfect_prediction():
    y, _ = batch(1)
    y[0] = 0.0  # an empty slice predicted empty is perfect too
    assert value(losses.DiceLoss()(y, y)) == pytest.approx(0.0, abs=1e-6)
    assert value(losses.DiceLoss()(y[..., 0], y)) == pytest.approx(0.0, abs=1e-6)  # (B,H,W) labels


def test_bce_dice_matches_formula():
    y, p = batch(2)
    p[0, 0, 0, 0] = 0.0  # clipped, not -inf
    expected = 0.3 * numpy_bce(y, p) + 2.0 * numpy_dice(y, p)
    assert value(losses.BceDiceLoss(0.3, 2.0)(y, p)) == pytest.approx(expected, rel=1e-5)
    logits = np.log(np.clip(p, 1e-4, 1 - 1e-4) / (1 - np.clip(p, 1e-4, 1 - 1e-4))).astype("float32")
    from_logits = losses.BceDiceLoss(0.3, 2.0, from_logits=True)(y, logits)
    from_probs = losses.BceDiceLoss(0.3, 2.0)(y, np.clip(p, 1e-4, 1 - 1e-4))
    assert value(from_logits) == pytest.approx(value(from_probs), rel=1e-4)


def test_losses_serialize_round_trip():
    for loss in (losses.DiceLoss(smooth=2.0), losses.BceDiceLoss(0.5, 3.0, smooth=0.1)):
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        assert type(restored) is type(loss) and restored.get_config() == loss.get_config()


@pytest.mark.parametrize("n_levels", [1, 3, 5])
def test_weight_schemes(n_levels):
    n = n_levels
    names = [f"level_{k}" for k in range(1, n + 1)]
    paper = losses.multi_level_weights(n, "paper")
    assert list(paper) == names
    assert paper["level_1"] == (0.0, n + 1.0)              # top: pure Dice (paper's i = N)
    assert paper[f"level_{n}"] == (n - 1.0, 2.0)           # deepest side output: i = 2
    reversed_ = losses.multi_level_weights(n, "paper_reversed")
    assert reversed_["level_1"] == (n - 1.0, 1.0) and reversed_[f"level_{n}"] == (0.0, float(n))
    assert set(losses.multi_level_weights(n, "uniform").values()) == {(1.0, 1.0)}
    final = losses.multi_level_weights(n, "final_only")
    assert final["level_1"] == (1.0, 1.0)
    assert all(final[name] == (0.0, 0.0) for name in names[1:])
    normalized = losses.multi_level_weights(n, "paper", normalize=True)
    assert sum(a + b for a, b in normalized.values()) == pytest.approx(1.0)
    total = sum(a + b for a, b in paper.values())
    assert normalized["level_1"][1] == pytest.approx(paper["level_1"][1] / total)


def test_paper_weights_for_four_levels():
    assert losses.multi_level_weights(4) == {
        "level_1": (0.0, 5.0), "level_2": (1.0, 4.0), "level_3": (2.0, 3.0), "level_4": (3.0, 2.0)}
    with pytest.raises(ValueError, match="scheme"):
        losses.multi_level_weights(4, "nonsense")


def test_multi_level_losses_carry_weights():
    built = losses.multi_level_losses(3, "paper_reversed")
    assert [(l.alpha, l.beta) for l in built.values()] == [(2.0, 1.0), (1.0, 2.0), (0.0, 3.0)]
    y, p = batch(3)
    assert value(built["level_3"](y, p)) == pytest.approx(3 * numpy_dice(y, p), rel=1e-5)


def test_multi_level_targets_numpy():
    y = np.zeros((2, 8, 8), "float32")
    y[0, 0, 0] = 1.0                    # a single pixel
    y[1, 4:8, 4:8] = 1.0                # an aligned 4x4 square
    avg = losses.multi_level_targets(y, 3)
    assert [a.shape for a in avg.values()] == [(2, 8, 8, 1), (2, 4, 4, 1), (2, 2, 2, 1)]
    assert avg["level_2"][0, 0, 0, 0] == 0.25 and avg["level_3"][0, 0, 0, 0] == 1 / 16
    assert avg["level_3"][1, 1, 1, 0] == 1.0 and avg["level_3"][1].sum() == 1.0
    for level in avg.values():  # the foreground fraction is preserved at every level
        np.testing.assert_allclose(level.mean(axis=(1, 2, 3)), y.mean(axis=(1, 2)))
    biggest = losses.multi_level_targets(y, 3, method="max")
    assert biggest["level_3"][0, 0, 0, 0] == 1.0 and biggest["level_3"][0].sum() == 1.0
    nearest = losses.multi_level_targets(y, 3, method="nearest")
    assert nearest["level_3"][0].sum() == 0.0 and nearest["level_3"][1, 1, 1, 0] == 1.0
    with pytest.raises(ShapeError, match="divisible"):
        losses.multi_level_targets(np.zeros((1, 12, 12, 1)), 4)


@pytest.mark.parametrize("method", ["average", "max", "nearest"])
def test_multi_level_targets_ops_matches_numpy(method):
    y, _ = batch(4, shape=(2, 16, 16, 1))
    expected = losses.multi_level_targets(y, 4, method=method)
    got = losses.multi_level_targets_ops(keras.ops.convert_to_tensor(y), 4, method=method)
    for name in expected:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got[name]), expected[name], atol=1e-6)


def toy_model(n_levels=3, size=16):
    inputs = keras.Input((size, size, 1))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    outputs = {}
    for k in range(1, n_levels + 1):
        pooled = features if k == 1 else keras.layers.AveragePooling2D(2 ** (k - 1))(features)
        head = keras.layers.Conv2D(1, 1, activation="sigmoid", name=f"level_{k}")
        outputs[f"level_{k}"] = head(pooled)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("scheme", ["paper", "final_only"])
def test_training_step_reduces_multi_level_loss(scheme, tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 16, 16, 1)).astype("float32")
    y = (x > 0.3).astype("float32")[..., 0]
    targets = losses.multi_level_targets(y, 3)
    model = toy_model()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=losses.multi_level_losses(3, scheme))
    before = model.evaluate(x, targets, verbose=0, return_dict=True)["loss"]
    for _ in range(3):
        model.train_on_batch(x, targets)
    after = model.evaluate(x, targets, verbose=0, return_dict=True)["loss"]
    assert np.isfinite(before) and after < before
    path = tmp_path / "toy.keras"
    model.save(path)
    restored = keras.saving.load_model(path)  # no custom_objects: losses are registered
    again = restored.evaluate(x, targets, verbose=0, return_dict=True)["loss"]
    assert again == pytest.approx(after, rel=1e-4)


@pytest.mark.parametrize("method", ["average", "max"])
def test_multi_level_targets_are_the_block_pools_of_the_slice(method):
    """Pooled level by level, each level is still its blocks' mean (max) over the slice:
    exactly for 0/1 labels, to float32 rounding for soft ones."""
    rng = np.random.default_rng(7)
    binary = (rng.random((3, 32, 32, 1)) > 0.6).astype(np.float32)
    soft = rng.random((3, 32, 32, 1)).astype(np.float32)
    pool = np.mean if method == "average" else np.max
    for y, exact in ((binary, True), (soft, False)):
        targets = losses.multi_level_targets(y, 4, method=method)
        for k in range(1, 5):
            f = 2 ** (k - 1)
            blocks = y.astype(np.float64).reshape(3, 32 // f, f, 32 // f, f, 1)
            expected = pool(blocks, axis=(2, 4))
            got = targets[f"level_{k}"]
            assert got.dtype == np.float32 and got.flags.c_contiguous
            if exact:
                np.testing.assert_array_equal(got, expected)
            else:
                np.testing.assert_allclose(got, expected, rtol=0, atol=3e-7)
