"""FLOPs counted from the layers, against hand counts."""

import keras
import numpy as np

from liverseg import config
from liverseg.models import build_localization_net, build_tuning_net, forward_flops


class TwiceConv(keras.layers.Layer):
    """A custom block that calls its inner convolution twice (counted twice)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(4, 3, padding="same")

    def call(self, x):
        return self.conv(self.conv(x))


def test_each_layer_kind_against_a_hand_count():
    inputs = keras.Input((16, 16, 4))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)  # 2·16·16·8·(3·3·4) = 147,456
    x = keras.layers.MaxPooling2D()(x)  # not counted
    x = keras.layers.Conv2DTranspose(4, 2, strides=2)(x)  # 2·8·8·8·(2·2)·4 = 16,384
    x = TwiceConv()(x)  # 2 × 2·16·16·4·(3·3·4) = 147,456
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)  # 2·256·4·2·9 = 36,864
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10)(x)  # 2·8·10 = 160
    model = keras.Model(inputs, outputs)
    count = forward_flops(model, np.zeros((3, 16, 16, 4), "float32"))
    assert count.by_kind == {"Conv2D": 147_456 + 147_456, "Conv2DTranspose": 16_384,
                             "DepthwiseConv2D": 36_864, "Dense": 160}
    assert count.total == 348_320
    assert count.calls == 6
    assert count.training == 3 * count.total
    assert "call" not in keras.layers.Conv2D.__dict__  # the recording is undone


def test_grouped_and_dilated_convolutions():
    inputs = keras.Input((10, 10, 8))
    x = keras.layers.Conv2D(8, 3, groups=4, dilation_rate=2)(inputs)  # valid: 6×6 out
    model = keras.Model(inputs, x)
    assert forward_flops(model, np.zeros((1, 10, 10, 8), "float32")).total == 2 * 36 * 8 * 9 * 2


def test_the_paper_networks_grow_with_the_square_of_the_slice():
    small = config.profile("smoke")
    large = small.replace(image_size=2 * small.image_size,
                          **{"localization.image_size": 2 * small.image_size,
                             "tuning.image_size": 2 * small.image_size})
    counts = []
    for settings in (small, large):
        size = settings.image_size
        tuning = build_tuning_net(settings)
        x = {"image": np.zeros((1, size, size, 1), "float32"),
             "prior": np.zeros((1, size, size, 1), "float32")}
        counts.append(forward_flops(tuning, x).total)
        assert forward_flops(build_localization_net(settings), x["image"]).total > 0
    # every convolution's work is per pixel, except the 1×1 conv of ASPP's image-pooling branch
    assert counts[1] != 4 * counts[0]
    assert abs(counts[1] - 4 * counts[0]) < 1e-4 * counts[1]
