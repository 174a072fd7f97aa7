"""Named settings profiles: ``smoke`` (CI), ``demo`` (laptop CPU) and ``paper`` (Table 2).

Every chapter and the command line run under one profile, so a number in the book can always be
traced to the settings behind it. Config objects are plain dataclasses (no Keras import here) and
round-trip through JSON with ``to_dict`` / ``from_dict``.

    >>> from liverseg.config import profile
    >>> p = profile("paper")
    >>> p.train.learning_rate, p.train.batch_size, p.tuning.aspp_rates
    (0.0001, 4, (6, 12, 18))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

PATCH_ARRANGEMENTS = ("space_to_depth", "tiles")
UPSAMPLINGS = ("transpose", "bilinear")


def _tuplify(value):
    """JSON turns tuples into lists; turn them back so configs compare equal after a round trip."""
    return tuple(value) if isinstance(value, list) else value


class _Serializable:
    """``to_dict`` / ``from_dict`` for (nested) dataclasses."""

    _nested: dict[str, type] = {}  # field name -> config class, for nested configs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
        values = {k: _tuplify(v) for k, v in data.items()}
        for key, sub in cls._nested.items():
            if isinstance(values.get(key), dict):
                values[key] = sub.from_dict(values[key])
        return cls(**values)


@dataclass
class LocalizationConfig(_Serializable):
    """The first network (Section 3.3, Fig. 5): a U-Net-like encoder–decoder on whole slices.

    The paper gives no widths for it; the defaults are the original U-Net's (64 filters doubling
    over four pooling levels), with the paper's dropout 0.2 inside each conv block.
    """

    image_size: int = 512
    channels: int = 1
    base_filters: int = 64
    depth: int = 4  # pooling levels; the bottleneck runs at image_size / 2**depth
    dropout: float = 0.2
    batch_norm: bool = False
    upsampling: str = "transpose"  # "transpose" (Conv2DTranspose) or "bilinear" (UpSampling2D)

    def __post_init__(self):
        _check_common(self)


@dataclass
class TuningConfig(_Serializable):
    """The second, cascaded network (Sections 3.4–3.7, Figs. 8–12).

    Defaults are the paper configuration: 512×512 slices, four encoder levels of 64·2^(l-1)
    residual filters, a 1024-filter residual bottleneck, multi-level patch inputs at the levels
    whose feature maps are 256, 128 and 64 pixels (Table 3), a ConvBox gate on every skip
    connection, a DeepLabv3 ASPP (rates 6, 12, 18 as in Section 3.5; the Fig. 10 caption says
    4, 8, 12, 16 — pass ``aspp_rates=(4, 8, 12, 16)`` for that reading) and a sigmoid side output
    at every decoder level.

    Parameter count. The paper reports 38,059,141 parameters, 3,072 of them non-trainable.
    3,072 = mean + variance of 1,536 BatchNorm channels = exactly the six 256-wide BN layers of
    a DeepLabv3 ASPP (1×1 branch, three atrous branches, image pooling, projection), so
    BatchNorm sits in the ASPP only (``batch_norm=False`` for the residual blocks). With these
    defaults the model has 38,568,004 parameters, 3,072 non-trainable: 508,863 (1.3 %) more
    than the paper. Most of the budget is fixed by the 64…1024 residual widths and the
    1024→256 ASPP (7.9 M); the free choices, which the paper does not spell out, are ours:
    parameter-free bilinear upsampling in the decoder (2×2 transposed convs would add 1.7 M),
    patch projections to the previous level's width concatenated to the pooled features
    (Section 3.4; adding instead of concatenating would save 1.4 M), and a narrow ConvBox
    (16 filters, one attention map per level, 10 k; full-width location features would add
    6.3 M). The paper's odd total also suggests an odd
    number of 1-channel output convs; four side outputs give an even one.
    """

    image_size: int = 512
    channels: int = 1
    base_filters: int = 64
    depth: int = 4  # encoder levels with a skip connection; bottleneck at image_size / 2**depth
    bottleneck_filters: Optional[int] = None  # None: base_filters * 2**depth
    dilation_rates: tuple[int, ...] = (1, 2, 4, 8)  # parallel 3×3 convs of the first layer
    use_aspp: bool = True
    aspp_rates: tuple[int, ...] = (6, 12, 18)
    aspp_filters: int = 256
    dropout: float = 0.2
    patch_levels: tuple[int, ...] = (2, 3, 4)  # encoder levels that also see the image's patches
    patch_arrangement: str = "space_to_depth"  # lossless; "tiles" is the rejected alternative
    use_convbox: bool = True
    convbox_filters: int = 16  # width of the ConvBox's first two convs
    convbox_channels: Optional[int] = 1  # 1: one attention map per level; None: skip's width
    residual: bool = True
    deep_supervision: bool = True
    batch_norm: bool = False  # BatchNorm in the residual blocks (ASPP always has it)
    upsampling: str = "bilinear"  # "bilinear" (parameter-free, as in DeepLab) or "transpose"

    def __post_init__(self):
        _check_common(self)
        if self.patch_arrangement not in PATCH_ARRANGEMENTS:
            raise ValueError(
                f"patch_arrangement must be one of {PATCH_ARRANGEMENTS}, "
                f"got {self.patch_arrangement!r}"
            )
        bad = [lv for lv in self.patch_levels if not 2 <= lv <= self.depth]
        if bad:
            raise ValueError(
                f"patch_levels must lie in 2..depth={self.depth} (level 1 is the full image), "
                f"got {bad}"
            )
        if not self.dilation_rates:
            raise ValueError("dilation_rates must name at least one rate")
        if self.base_filters % len(self.dilation_rates):
            raise ValueError(
                f"base_filters={self.base_filters} must divide among the "
                f"{len(self.dilation_rates)} dilated first-layer branches"
            )

    @property
    def level_filters(self) -> tuple[int, ...]:
        """Filters of encoder/decoder level 1..depth (level 1 = full resolution)."""
        return tuple(self.base_filters * 2**i for i in range(self.depth))

    @property
    def output_names(self) -> tuple[str, ...]:
        """Model outputs, final full-resolution output first, deepest side output last."""
        n = self.depth if self.deep_supervision else 1
        return tuple(f"level_{i}" for i in range(1, n + 1))


def _check_common(config) -> None:
    if config.depth < 1:
        raise ValueError(f"depth must be >= 1, got {config.depth}")
    if config.image_size % 2**config.depth:
        raise ValueError(
            f"image_size={config.image_size} must be divisible by 2**depth={2**config.depth}"
        )
    if not 0.0 <= config.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {config.dropout}")
    if config.upsampling not in UPSAMPLINGS:
        raise ValueError(f"upsampling must be one of {UPSAMPLINGS}, got {config.upsampling!r}")


@dataclass
class TrainConfig(_Serializable):
    """Optimisation settings; the defaults are Table 2 of the paper."""

    optimizer: str = "adam"
    learning_rate: float = 1e-4
    batch_size: int = 4
    epochs: int = 100
    early_stopping_patience: int = 50  # "Epochs stopping count"
    self_training_iterations: int = 5  # Algorithm 1; Table 5 peaks at N = 5 on validation
    patch_area_threshold: float = 0.3  # μ of Eq. (7): patches with less annotation are dropped
    seed: int = 0


@dataclass
class Profile(_Serializable):
    """Everything a chapter or ``liverseg`` command needs to know about a run's scale."""

    name: str
    image_size: int
    n_cases: Optional[int]  # None: every case of the dataset
    localization: LocalizationConfig = field(default_factory=LocalizationConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    dataset: str = "synthetic"  # "synthetic", "lits" or "ircadb"
    planes: tuple[str, ...] = ("axial", "coronal", "sagittal")

    def __post_init__(self):
        for sub in (self.localization, self.tuning):
            if sub.image_size != self.image_size:
                raise ValueError(
                    f"profile {self.name!r}: {type(sub).__name__}.image_size={sub.image_size} "
                    f"differs from the profile's image_size={self.image_size}"
                )

    _nested = {"localization": LocalizationConfig, "tuning": TuningConfig, "train": TrainConfig}


def _smoke() -> Profile:
    size = 64
    return Profile(
        name="smoke",
        image_size=size,
        n_cases=4,
        localization=LocalizationConfig(image_size=size, base_filters=4, depth=3),
        tuning=TuningConfig(
            image_size=size, base_filters=4, depth=3, dilation_rates=(1, 2), patch_levels=(2, 3),
            aspp_filters=8, aspp_rates=(2, 4, 6),
        ),
        train=TrainConfig(batch_size=4, epochs=2, early_stopping_patience=1,
                          self_training_iterations=1),
    )


def _demo() -> Profile:
    size = 128
    return Profile(
        name="demo",
        image_size=size,
        n_cases=12,
        localization=LocalizationConfig(image_size=size, base_filters=16, depth=4),
        tuning=TuningConfig(
            image_size=size, base_filters=16, depth=4, patch_levels=(2, 3, 4),
            aspp_filters=64, aspp_rates=(3, 6, 9),
        ),
        train=TrainConfig(batch_size=8, epochs=15, early_stopping_patience=5,
                          self_training_iterations=2),
    )


def _paper() -> Profile:
    return Profile(name="paper", image_size=512, n_cases=None, dataset="lits")


_PROFILES = {"smoke": _smoke, "demo": _demo, "paper": _paper}
PROFILE_NAMES = tuple(_PROFILES)


def profile(name: str) -> Profile:
    """A fresh :class:`Profile` named ``smoke``, ``demo`` or ``paper``."""
    try:
        return _PROFILES[name]()
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r}; valid profiles: {', '.join(PROFILE_NAMES)}"
        ) from None
