"""The tuning network (Sections 3.4–3.7, Fig. 8): refines the liver/lesion boundary.

Walk through the paper configuration (512×512 slice, base 64, depth 4); ``patches l`` is the
slice cut into 2**(l-1)-pixel patches, one per pixel of level l (``ImagePatches``)::

    image (512², 1) ─ DilatedStem(64; rates 1,2,4,8) ─ Res(64)               ─ skip 1 (512², 64)
      pool ─ concat[·, conv1×1(64)(patches 2: 256², 4)]    ─ Res(128)        ─ skip 2 (256², 128)
      pool ─ concat[·, conv1×1(128)(patches 3: 128², 16)]  ─ Res(256)        ─ skip 3 (128², 256)
      pool ─ concat[·, conv1×1(256)(patches 4: 64², 64)]   ─ Res(512)        ─ skip 4 (64², 512)
      pool ─ Res(1024) ─ ASPP(256; rates 6,12,18)                            ─ (32², 256)
    prior (512², 1) ─ ConvBox l (max-pool 2**(l-1), three convs) ─ multiplies skip l
    decoder l = 4…1: upsample ─ concat[·, skip l × ConvBox l] ─ Res(width l) ─ conv1×1 sigmoid
                     = side output "level_l" at (512 / 2**(l-1))²

Outputs, as a list: ``level_1`` (H, W, 1) the final map, then ``level_2`` (H/2, W/2, 1) … down
to ``level_depth``; only ``level_1`` without deep supervision. The multi-level loss
(Section 3.6) compares each with the label at that resolution.
"""

from __future__ import annotations

import keras
from keras import layers

from liverseg.config import Profile, TuningConfig
from liverseg.models.blocks import (
    ASPP, ConvBox, DilatedStem, ImagePatches, ResidualBlock, upsample,
)


def build_tuning_net(config: Profile | TuningConfig | None = None) -> keras.Model:
    """Build the tuning net: inputs ``image`` and ``prior``, outputs ``level_1``… (see module).

    ``config`` is a :class:`~liverseg.config.Profile` (its ``tuning`` part is used) or a
    :class:`~liverseg.config.TuningConfig`; ``None`` gives the paper configuration.
    """
    if isinstance(config, Profile):
        config = config.tuning
    c = config or TuningConfig()
    size, widths = c.image_size, c.level_filters

    def res(filters, name):
        return ResidualBlock(filters, c.dropout, c.batch_norm, c.residual,
                             c.residual_merge, name=name)

    image = keras.Input((size, size, c.channels), name="image")
    prior = keras.Input((size, size, 1), name="prior")

    # Encoder. Level l runs at size / 2**(l-1) with widths[l-1] filters.
    x = DilatedStem(widths[0], c.dilation_rates, name="stem")(image)
    x = res(widths[0], name="enc1")(x)
    skips = [x]
    for level in range(2, c.depth + 1):
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
        if level in c.patch_levels:
            patches = ImagePatches(2 ** (level - 1), c.patch_arrangement,
                                   name=f"patches{level}")(image)
            patches = layers.Conv2D(widths[level - 2], 1, name=f"patches{level}_proj")(patches)
            x = layers.Concatenate(name=f"enc{level}_concat")([x, patches])
        x = res(widths[level - 1], name=f"enc{level}")(x)
        skips.append(x)

    x = layers.MaxPooling2D(2, name="bottleneck_pool")(x)
    x = res(c.bottleneck_filters or widths[-1] * 2, name="bottleneck")(x)
    if c.use_aspp:
        x = ASPP(c.aspp_filters, c.aspp_rates, name="aspp")(x)

    # Decoder, deepest level first; a side output at every level.
    outputs = {}
    for level in range(c.depth, 0, -1):
        filters = widths[level - 1]
        x = upsample(x, filters, c.upsampling, name=f"dec{level}_up")
        skip = skips[level - 1]
        if c.use_convbox:
            location = ConvBox(c.convbox_filters, 2 ** (level - 1),
                               c.convbox_channels or filters, name=f"convbox{level}")(prior)
            skip = layers.Multiply(name=f"gate{level}")([skip, location])
        x = layers.Concatenate(name=f"dec{level}_concat")([x, skip])
        x = res(filters, name=f"dec{level}")(x)
        if c.deep_supervision or level == 1:
            outputs[level] = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32",
                                           name=f"level_{level}")(x)

    ordered = [outputs[level] for level in sorted(outputs)]
    return keras.Model({"image": image, "prior": prior}, ordered, name="tuning_net")
