"""What the tests share: the tiny profile their Keras networks are built from."""

from __future__ import annotations

from liverseg.config import LocalizationConfig, Profile, TuningConfig, profile

TINY_SIZE = 32


def tiny_profile(size: int = TINY_SIZE, **changes) -> Profile:
    """``smoke`` at ``size`` pixels with 4-filter networks of depth 2, two dilation rates and
    one patch level: the smallest system every stage runs on, built or trained in seconds.
    ``changes`` are :meth:`Profile.replace`'s (dotted paths as keys of a ``**{...}``)."""
    return profile("smoke").replace(
        image_size=size,
        localization=LocalizationConfig(image_size=size, base_filters=4, depth=2),
        tuning=TuningConfig(image_size=size, base_filters=4, depth=2, dilation_rates=(1, 2),
                            patch_levels=(2,), aspp_filters=4, aspp_rates=(1, 2)),
        **{"patches.levels": (2,), **changes},
    )
