"""The two networks: build, train a step, predict, save/load, and the architecture's contracts."""

import dataclasses

import keras
import numpy as np
import pytest
from keras import ops

from liverseg.config import LocalizationConfig, TuningConfig
from liverseg.models import (  # importing registers the custom layers for load_model
    ASPP, ConvBox, DilatedStem, ImagePatches, ResidualBlock,
    build_localization_net, build_tuning_net, depth_to_space, image_to_tiles,
    space_to_depth, tiles_to_image,
)

pytestmark = pytest.mark.keras

SIZE = 32


def tiny_tuning(**changes):
    base = TuningConfig(image_size=SIZE, base_filters=4, depth=3, dilation_rates=(1, 2),
                        patch_levels=(2, 3), aspp_filters=8, aspp_rates=(1, 2, 3),
                        convbox_filters=4)
    return dataclasses.replace(base, **changes)


def tiny_localization(**changes):
    return dataclasses.replace(LocalizationConfig(image_size=SIZE, base_filters=4, depth=2),
                               **changes)


def batch(model, n=2, seed=0):
    """Random inputs (a dict for the two-input tuning net) and binary targets per output."""
    rng = np.random.default_rng(seed)
    inputs = {t.name: rng.random((n, *t.shape[1:])).astype("float32") for t in model.inputs}
    targets = [(rng.random((n, *o.shape[1:])) > 0.5).astype("float32") for o in model.outputs]
    if len(inputs) == 1:
        inputs = next(iter(inputs.values()))
    return inputs, targets


def as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


@pytest.fixture(scope="module", params=["localization", "tuning", "tuning_concat"])
def trained(request, tmp_path_factory):
    """A model that has been compiled, fitted on one batch, saved and loaded back."""
    keras.utils.set_random_seed(0)
    if request.param == "localization":
        model = build_localization_net(tiny_localization())
    else:  # two levels keep the compiled training step small
        merge = "concat" if request.param == "tuning_concat" else "add"
        model = build_tuning_net(tiny_tuning(depth=2, patch_levels=(2,), residual_merge=merge))
    x, y = batch(model)
    n = len(model.outputs)
    model.compile(keras.optimizers.Adam(1e-2),
                  loss=[keras.losses.BinaryCrossentropy() for _ in range(n)])
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    path = tmp_path_factory.mktemp(request.param) / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    return model, loaded, x, before, history


def test_one_training_step_updates_weights(trained):
    model, _, _, before, history = trained
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.allclose(b, a) for b, a in zip(before, model.get_weights())]
    assert sum(changed) > len(changed) // 2


def test_predictions_are_probabilities(trained):
    model, _, x, _, _ = trained
    for out in as_list(model.predict(x, verbose=0)):
        assert np.all((out >= 0) & (out <= 1))


def test_save_and_load_give_identical_outputs(trained):
    model, loaded, x, _, _ = trained
    assert loaded.name == model.name
    assert [o.shape for o in loaded.outputs] == [o.shape for o in model.outputs]
    for a, b in zip(as_list(model.predict(x, verbose=0)), as_list(loaded.predict(x, verbose=0))):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_localization_net_shapes_and_grad_cam_layer():
    from liverseg.cam import default_cam_layer

    config = tiny_localization()
    model = build_localization_net(config)
    assert model.input.shape[1:] == (SIZE, SIZE, 1)
    assert model.output.shape[1:] == (SIZE, SIZE, 1)
    assert model.output_names == ["probability"]  # sigmoid(logits), a layer of its own
    assert model.get_layer("logits").output.shape[1:] == (SIZE, SIZE, 1)
    layer = model.get_layer(default_cam_layer(model))
    assert layer.name == "bottleneck_relu2"  # the bottleneck's last activation
    assert layer.output.shape[1:3] == (SIZE // 2**config.depth,) * 2


def test_tuning_output_contract():
    config = tiny_tuning()
    model = build_tuning_net(config)
    assert sorted(t.name for t in model.inputs) == ["image", "prior"]
    assert list(model.output_names) == ["level_1", "level_2", "level_3"]
    assert [tuple(o.shape[1:]) for o in model.outputs] == [
        (SIZE, SIZE, 1), (SIZE // 2, SIZE // 2, 1), (SIZE // 4, SIZE // 4, 1)]
    flat = build_tuning_net(tiny_tuning(deep_supervision=False))
    assert list(flat.output_names) == ["level_1"]
    assert len(flat.outputs) == 1 and flat.outputs[0].shape[1:] == (SIZE, SIZE, 1)


def layer_names(model):
    return {layer.name for layer in model.layers}


def layer_types(model):
    return {type(layer) for layer in model.layers}


def block_sublayer_types(model):
    """Types of the layers inside the model's residual blocks."""
    return {type(sub) for layer in model.layers if isinstance(layer, ResidualBlock)
            for sub in layer._flatten_layers(include_self=False)}


def test_concat_residual_merge_builds_and_runs():
    config = TuningConfig(image_size=SIZE, base_filters=8, depth=3, dilation_rates=(1, 2),
                          aspp_filters=8, aspp_rates=(2, 4, 6), patch_levels=(2, 3))
    add = build_tuning_net(config)
    concat = build_tuning_net(dataclasses.replace(config, residual_merge="concat"))
    x, _ = batch(concat)
    outputs = as_list(concat.predict(x, verbose=0))
    assert [o.shape for o in outputs] == [(2, SIZE, SIZE, 1), (2, SIZE // 2, SIZE // 2, 1),
                                          (2, SIZE // 4, SIZE // 4, 1)]
    assert all(np.all(np.isfinite(o)) for o in outputs)
    assert layer_names(concat) == layer_names(add)
    assert keras.layers.Concatenate in block_sublayer_types(concat)
    assert keras.layers.Concatenate not in block_sublayer_types(add)
    assert keras.layers.Add in block_sublayer_types(add)
    assert keras.layers.Add not in block_sublayer_types(concat)
    assert not any("shortcut" in w.path for w in concat.weights)
    assert concat.count_params() != add.count_params()
    plain = build_tuning_net(dataclasses.replace(config, residual=False, residual_merge="concat"))
    assert not block_sublayer_types(plain) & {keras.layers.Add, keras.layers.Concatenate}


@pytest.mark.parametrize("in_channels, add_params, concat_params", [
    # conv1 9·c·4+4, conv2 9·4·4+4; add: 1×1 shortcut c·4+4 unless c == 4; concat: 1×1 (4+c)·4+4
    (3, 112 + 148 + 16, 112 + 148 + 32),
    (4, 148 + 148, 148 + 148 + 36),
])
def test_residual_merge_parameter_count(in_channels, add_params, concat_params):
    for merge, expected in (("add", add_params), ("concat", concat_params)):
        block = ResidualBlock(4, merge=merge)
        block.build((None, 8, 8, in_channels))
        assert block.count_params() == expected, merge


def test_invalid_residual_merge_names_the_allowed_values():
    with pytest.raises(ValueError, match="residual_merge.*'add', 'concat'"):
        TuningConfig(residual_merge="sum")
    with pytest.raises(ValueError, match="'add', 'concat'"):
        ResidualBlock(4, merge="sum")


@pytest.mark.parametrize("factor", [2, 4])
def test_space_to_depth_patches_are_lossless_and_aligned(factor):
    images = np.random.default_rng(1).random((2, 16, 16, 1)).astype("float32")
    patches = ops.convert_to_numpy(space_to_depth(images, factor))
    assert patches.shape == (2, 16 // factor, 16 // factor, factor * factor)
    # Feature-map pixel (i, j) holds exactly the image's factor×factor block at (i, j).
    i, j = 1, 2
    block = images[0, i * factor:(i + 1) * factor, j * factor:(j + 1) * factor, 0]
    np.testing.assert_array_equal(patches[0, i, j], block.reshape(-1))
    np.testing.assert_array_equal(ops.convert_to_numpy(depth_to_space(patches, factor)), images)


def test_tiles_are_lossless_but_stack_whole_tiles():
    images = np.random.default_rng(2).random((1, 8, 8, 1)).astype("float32")
    tiles = ops.convert_to_numpy(image_to_tiles(images, 2))
    np.testing.assert_array_equal(tiles[0, :, :, 1], images[0, :4, 4:, 0])  # top-right tile
    np.testing.assert_array_equal(ops.convert_to_numpy(tiles_to_image(tiles, 2)), images)


@pytest.mark.parametrize("arrangement", ["space_to_depth", "tiles"])
def test_image_patches_layer_inverts_exactly(arrangement):
    images = np.random.default_rng(3).random((2, 16, 16, 1)).astype("float32")
    layer = ImagePatches(4, arrangement)
    patches = layer(images)
    assert tuple(patches.shape) == layer.compute_output_shape(images.shape)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer.invert(patches)), images)


def test_convbox_zero_prior_zeroes_the_gated_skip():
    keras.utils.set_random_seed(4)
    model = build_tuning_net(tiny_tuning())
    gates = keras.Model(model.inputs, [model.get_layer(f"gate{lv}").output for lv in (1, 2, 3)])
    image = np.random.default_rng(4).random((1, SIZE, SIZE, 1)).astype("float32")
    zero = gates.predict({"image": image, "prior": np.zeros_like(image)}, verbose=0)
    assert all(np.all(g == 0) for g in zero)
    ones = gates.predict({"image": image, "prior": np.ones_like(image)}, verbose=0)
    assert all(np.any(g != 0) for g in ones)


def test_convbox_is_local():
    """Features far from the ROI stay zero: the gate follows the prior's location."""
    keras.utils.set_random_seed(5)
    box = ConvBox(4, pool_size=2)
    prior = np.zeros((1, 32, 32, 1), "float32")
    prior[0, :8, :8] = 1.0
    out = ops.convert_to_numpy(box(prior))
    assert out.shape == (1, 16, 16, 1)
    assert np.all(out[0, 8:, 8:] == 0)  # 3 convs of 3×3 reach 3 pixels past the box


def test_convbox_gate_is_alive_at_initialisation():
    """A gate that starts at zero inside the ROI would cut its skip connection for good."""
    prior = np.ones((1, 16, 16, 1), "float32")  # an ROI covering the whole slice
    for seed in range(6):
        keras.utils.set_random_seed(seed)
        gate = ops.convert_to_numpy(ConvBox(8)(prior))[0, 4:-4, 4:-4]  # away from the padding
        assert np.any(gate != 0), f"dead gate, seed {seed}"


CUSTOM_LAYERS = [
    (ImagePatches(2, "tiles"), (2, 8, 8, 1)),
    (DilatedStem(6, (1, 2, 3)), (2, 8, 8, 1)),
    (ResidualBlock(4, dropout=0.2, batch_norm=True), (2, 8, 8, 3)),
    (ResidualBlock(3, residual=False), (2, 8, 8, 3)),
    (ResidualBlock(4, dropout=0.2, merge="concat"), (2, 8, 8, 3)),
    (ConvBox(4, pool_size=2, channels=3), (2, 8, 8, 1)),
    (ASPP(4, rates=(1, 2)), (2, 8, 8, 3)),
]


@pytest.mark.parametrize("layer, shape", CUSTOM_LAYERS, ids=lambda v: getattr(v, "name", ""))
def test_custom_layer_config_round_trip(layer, shape):
    x = np.random.default_rng(6).random(shape).astype("float32")
    y = layer(x)
    assert tuple(y.shape) == tuple(layer.compute_output_shape(shape))
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone.build(shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(ops.convert_to_numpy(clone(x)), ops.convert_to_numpy(y),
                               atol=1e-6)
    serialized = keras.saving.serialize_keras_object(layer)
    assert type(keras.saving.deserialize_keras_object(serialized)) is type(layer)
