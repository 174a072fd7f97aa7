"""The localization network (Section 3.3, Fig. 5): a U-Net on whole slices.

It only has to find the liver roughly; its Grad-CAM, refined by a CRF, becomes the ROI prior
of the tuning network. Encoder blocks are conv–ReLU–dropout–conv–ReLU followed by
max-pooling; the decoder upsamples, concatenates the skip connection and applies the same
block. A linear 1×1 conv gives the liver logit (layer ``logits``) and a separate sigmoid
activation the probability map (layer ``probability``, the model's one output). Keeping the
logit as a layer of its own lets Grad-CAM score the logit rather than the saturated
probability (:func:`liverseg.cam.grad_cam` does so by default).
"""

from __future__ import annotations

import keras
from keras import layers

from liverseg.config import LocalizationConfig, Profile
from liverseg.models.blocks import conv_block, upsample


def build_localization_net(config: Profile | LocalizationConfig | None = None) -> keras.Model:
    """Build the localization net: (H, W, channels) slice -> (H, W, 1) liver probability.

    The output layer ``probability`` is ``sigmoid(logits)``, where ``logits`` is the linear
    1×1 conv before it, ``(H, W, 1)`` float32 (also under mixed precision).

    ``config`` is a :class:`~liverseg.config.Profile` (its ``localization`` part is used) or a
    :class:`~liverseg.config.LocalizationConfig`; ``None`` gives the paper configuration.
    """
    if isinstance(config, Profile):
        config = config.localization
    config = config or LocalizationConfig()
    size, f0 = config.image_size, config.base_filters

    image = keras.Input((size, size, config.channels), name="image")
    x, skips = image, []
    for level in range(1, config.depth + 1):  # level l runs at size / 2**(l-1)
        x = conv_block(x, f0 * 2 ** (level - 1), config.dropout, config.batch_norm,
                       name=f"enc{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)

    x = conv_block(x, f0 * 2**config.depth, config.dropout, config.batch_norm,
                   name="bottleneck")  # (size / 2**depth, ..., f0 * 2**depth)

    for level in range(config.depth, 0, -1):
        filters = f0 * 2 ** (level - 1)
        x = upsample(x, filters, config.upsampling, name=f"dec{level}_up")
        x = layers.Concatenate(name=f"dec{level}_concat")([x, skips[level - 1]])
        x = conv_block(x, filters, config.dropout, config.batch_norm, name=f"dec{level}")

    logits = layers.Conv2D(1, 1, dtype="float32", name="logits")(x)
    probability = layers.Activation("sigmoid", dtype="float32", name="probability")(logits)
    return keras.Model(image, probability, name="localization_net")
