"""The networks' architecture and parameter counts: what the layers are, not how a backend
runs them, so these run once (TensorFlow lane), not again on JAX (``tests/test_models.py``)."""

import dataclasses

import keras
import numpy as np
import pytest

from liverseg.config import TuningConfig, profile
from liverseg.models import ASPP, ConvBox, ImagePatches, build_localization_net, build_tuning_net
from tests.test_models import SIZE, layer_names, layer_types, tiny_localization, tiny_tuning


def test_builders_accept_a_profile():
    p = dataclasses.replace(profile("smoke"), image_size=SIZE, localization=tiny_localization(),
                            tuning=tiny_tuning())
    assert build_localization_net(p).input.shape[1] == p.image_size
    tuning = build_tuning_net(p)
    assert [t.shape[1] for t in tuning.inputs] == [p.image_size] * 2


def test_toggles_change_the_architecture():
    full = build_tuning_net(tiny_tuning())
    assert {"stem", "aspp", "patches2", "patches3", "convbox1", "gate1"} <= layer_names(full)

    no_aspp = build_tuning_net(tiny_tuning(use_aspp=False))
    assert ASPP not in layer_types(no_aspp) and ASPP in layer_types(full)

    no_patches = build_tuning_net(tiny_tuning(patch_levels=()))
    assert ImagePatches not in layer_types(no_patches)
    assert no_patches.count_params() < full.count_params()
    one_level = build_tuning_net(tiny_tuning(patch_levels=(3,)))
    assert {"patches3"} == {n for n in layer_names(one_level) if n.startswith("patches")} - {
        "patches3_proj"}

    no_box = build_tuning_net(tiny_tuning(use_convbox=False))
    assert ConvBox not in layer_types(no_box)
    assert not any(n.startswith("gate") for n in layer_names(no_box))

    plain = build_tuning_net(tiny_tuning(residual=False))
    assert not any("shortcut" in w.path for w in plain.weights)
    assert any("shortcut" in w.path for w in full.weights)

    bn = build_tuning_net(tiny_tuning(batch_norm=True))
    assert bn.count_params() > full.count_params()

    tiles = build_tuning_net(tiny_tuning(patch_arrangement="tiles"))
    assert tiles.get_layer("patches2").arrangement == "tiles"
    assert tiles.count_params() == full.count_params()

    transposed = build_tuning_net(tiny_tuning(upsampling="transpose"))
    assert isinstance(transposed.get_layer("dec1_up"), keras.layers.Conv2DTranspose)


def test_paper_configuration_parameter_count():
    model = build_tuning_net(TuningConfig())
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert non_trainable == 3072  # the paper's figure: ASPP BatchNorm statistics
    assert model.count_params() == pytest.approx(38_059_141, rel=0.02)
    assert model.count_params() == 38_568_004  # TuningConfig's docstring
    assert [tuple(o.shape[1:3]) for o in model.outputs] == [(512, 512), (256, 256),
                                                            (128, 128), (64, 64)]
