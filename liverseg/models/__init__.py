"""The two networks of the paper and their building blocks (Keras 3, any backend).

Importing this package registers the custom layers, so ``keras.models.load_model(path)``
loads a saved model with no ``custom_objects``.
"""

from liverseg.models.blocks import (
    ASPP,
    ConvBox,
    DilatedStem,
    ImagePatches,
    ResidualBlock,
    depth_to_space,
    image_to_tiles,
    space_to_depth,
    tiles_to_image,
)
from liverseg.models.flops import FlopCount, forward_flops
from liverseg.models.localization import (
    build_localization_net,
)
from liverseg.models.tuning import build_tuning_net

__all__ = [
    "ASPP",
    "ConvBox",
    "DilatedStem",
    "FlopCount",
    "ImagePatches",
    "ResidualBlock",
    "build_localization_net",
    "build_tuning_net",
    "depth_to_space",
    "forward_flops",
    "image_to_tiles",
    "space_to_depth",
    "tiles_to_image",
]
