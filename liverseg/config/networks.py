"""Settings of the networks, their training and inference (Table 2 and the sections of the
paper that each names)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from liverseg.config._base import (DICE_REDUCTIONS, FUSIONS, LESION_VIEWS, OPTIMIZERS,
                                   PATCH_ARRANGEMENTS, PRECISIONS, RESIDUAL_MERGES, UPSAMPLINGS,
                                   _check_seed, _Serializable)
from liverseg.crf import CRFParams
from liverseg.prior_jitter import PriorJitterConfig


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
    whose feature maps are 256, 128 and 64 pixels (Table 3; the slice cut into 2×2, 4×4 and
    8×8 tiles of 256, 128 and 64 pixels stacked as channels, as §3.4 reads; the book's patch
    chapter compares the aligned ``"space_to_depth"`` layout), a ConvBox gate on every skip
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

    ``residual_merge``: ``"add"`` (He et al.'s residual learning, "a function with reference to
    the input feature map"; the default, which the count above assumes) or ``"concat"`` (the
    Fig. 11 text's "concatenating the input": the block's input is concatenated to its output
    and a 1×1 convolution brings the width back to the block's filters).
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
    patch_arrangement: str = "tiles"  # §3.4's 256/128/64-pixel patches; or "space_to_depth"
    use_convbox: bool = True
    convbox_filters: int = 16  # width of the ConvBox's first two convs
    convbox_channels: Optional[int] = 1  # 1: one attention map per level; None: skip's width
    residual: bool = True
    residual_merge: str = "add"  # "add" (He et al.) or "concat" (Fig. 11's text)
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
        if self.residual_merge not in RESIDUAL_MERGES:
            raise ValueError(
                f"residual_merge must be one of {RESIDUAL_MERGES}, got {self.residual_merge!r}"
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
    """Optimisation of every network of a run; the defaults are Table 2 of the paper.

    ``learning_rate`` is what the optimizer gets, in every profile (the small profiles set
    their own). ``loss_scheme`` is the multi-level weighting of the tuning network
    (:func:`liverseg.losses.multi_level_weights`); the localization network is trained with
    ``localization_loss`` = (α, β) of BCE + Dice (Eq. 6). ``empty_slice_fraction``: the
    training slices are those that contain the structure plus this share of the others (drawn
    with ``seed``); validation and test always use every slice. ``prior_folds``: the tuning
    network's training priors come from localizers trained out-of-fold on the other
    ``prior_folds - 1`` folds of the training patients (1: in-sample, from the final localizer;
    optimistic). ``precision``: a Keras dtype policy (``"float32"``, ``"mixed_bfloat16"``,
    ``"mixed_float16"``); ``jit_compile``: ``"auto"``, True or False, as ``Model.compile``
    (``"auto"``: no XLA for TensorFlow on a CPU-only machine, where compiling costs more than it
    saves; ``jax.jit`` on JAX, which without it runs op by op, several times slower).
    ``devices``: data-parallel training over this many accelerators (``keras.distribution``
    ``DataParallel``, JAX backend only): each batch of ``batch_size`` slices is split between
    them, so ``batch_size`` must be a multiple of ``devices``. It decides where a run is
    computed, not what it learns, so it is left out of :meth:`Profile.learned_settings`; so is
    ``slices_on_disk``: :func:`liverseg.train.system.train_system` keeps the slices in
    ``np.memmap`` files instead of in RAM (``None``: when there are more than 30 cases,
    ``n_cases`` ``None`` or > 30).

    The loss and the sampling, for a rare foreground (the lesions): ``positive_weight``
    weighs the foreground pixels' BCE term (1: the paper's Eq. 4); ``dice_over`` is
    ``"sample"`` (Eq. 5 per image, the paper) or ``"batch"`` (one Dice of the whole batch);
    ``positive_share`` is the share of every training batch taken from the slices that hold
    the structure, the rest from those that do not (0: the chosen slices in a plain shuffle,
    the paper; H-DenseUNet centres half of its crops on a tumour, nnU-Net a third).

    ``prior_jitter`` (:class:`liverseg.prior_jitter.PriorJitterConfig`): a share of the tuning
    network's training priors made too small, shifted or missing, anew every epoch, so that
    it learns to follow the image where the box is wrong (issue 17); validation, test and
    inference priors never are. Off by default (``share`` 0, the paper); the localizer does
    not depend on it, and off it leaves the store's keys as before it existed
    (:mod:`liverseg.experiments.store`). It applies to the tuner of each stage (liver and
    lesion) and to Algorithm 1's fine-tuning.
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-4
    batch_size: int = 4
    epochs: int = 100
    early_stopping_patience: int = 50  # "Epochs stopping count"
    loss_scheme: str = "paper"
    localization_loss: tuple[float, float] = (1.0, 1.0)
    empty_slice_fraction: float = 0.1
    prior_folds: int = 2
    precision: str = "float32"
    jit_compile: Any = "auto"
    seed: int = 0
    devices: int = 1
    positive_weight: float = 1.0
    dice_over: str = "sample"
    positive_share: float = 0.0
    prior_jitter: PriorJitterConfig = field(default_factory=PriorJitterConfig)
    slices_on_disk: Optional[bool] = None

    _nested = {"prior_jitter": PriorJitterConfig}

    def __post_init__(self):
        if self.positive_weight <= 0:
            raise ValueError(f"positive_weight must be > 0, got {self.positive_weight}")
        if self.dice_over not in DICE_REDUCTIONS:
            raise ValueError(f"dice_over must be one of {DICE_REDUCTIONS}, got {self.dice_over!r}")
        if not 0.0 <= self.positive_share <= 1.0:
            raise ValueError(f"positive_share must be in [0, 1], got {self.positive_share}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not 0.0 <= self.empty_slice_fraction <= 1.0:
            raise ValueError(f"empty_slice_fraction must be in [0, 1], got {self.empty_slice_fraction}")
        if self.prior_folds < 1:
            raise ValueError(f"prior_folds must be >= 1, got {self.prior_folds}")
        for name in ("batch_size", "epochs", "devices"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.devices:
            raise ValueError(f"batch_size={self.batch_size} must be a multiple of "
                             f"devices={self.devices} (each device gets an equal share)")
        if self.slices_on_disk is not None and not isinstance(self.slices_on_disk, bool):
            raise ValueError(f"train.slices_on_disk must be True, False or None (more than 30 "
                             f"cases), got {self.slices_on_disk!r}")


@dataclass
class PriorConfig(_Serializable):
    """The ROI prior given to the tuning network (:func:`liverseg.prior.roi_prior`).

    ``margin`` is in pixels of the model's input (about 1/32 of the slice). ``cam_layer``
    ``None`` uses :func:`liverseg.cam.default_cam_layer`. The CRF settings are
    :class:`liverseg.crf.CRFParams`.
    """

    mode: str = "bbox"
    threshold: float = 0.5
    margin: int = 16
    combine: str = "mean"
    cam_weight: float = 1 / 3
    keep_largest: bool = True
    use_crf: bool = True
    cam_layer: Optional[str] = None
    crf: CRFParams = field(default_factory=CRFParams)

    _nested = {"crf": CRFParams}

    def roi_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`liverseg.prior.roi_priors`."""
        return dict(mode=self.mode, threshold=self.threshold, margin=self.margin,
                    combine=self.combine, cam_weight=self.cam_weight,
                    keep_largest=self.keep_largest, use_crf=self.use_crf, crf_params=self.crf)


@dataclass
class PatchConfig(_Serializable):
    """The patch dataset of Algorithm 1: tiles of each level kept when μ = A / C ≥ threshold.

    Level l cuts the slice into a 2**(l-1) × 2**(l-1) grid (l = 2, 3, 4: the 256, 128 and
    64 pixel patches of a 512 slice, section 3.4); ``area_threshold`` is Eq. 7's 0.3.
    """

    levels: tuple[int, ...] = (2, 3, 4)
    area_threshold: float = 0.3

    def __post_init__(self):
        if not 0.0 <= self.area_threshold <= 1.0:
            raise ValueError(f"area_threshold must be in [0, 1], got {self.area_threshold}")
        if any(level < 2 for level in self.levels):
            raise ValueError(f"patch levels start at 2 (level 1 is the whole slice), got {self.levels}")


@dataclass
class SelfTrainingConfig(_Serializable):
    """Algorithm 1: train, segment the patches, add them with their predicted masks, fine-tune.

    ``iterations`` is the most rounds after the first training (5: Table 5's validation
    accuracy and mIoU peak at N = 5, its validation Dice rises on to N = 7);
    a round that does not raise the validation ``metric`` by more than ``min_delta`` counts
    against ``patience`` and the best round's weights are kept. ``pseudo_labels``:
    ``"prediction"`` (S of Algorithm 1, the network's own masks) or ``"annotation"``.

    ``unlabelled_share``: the share of the training patients treated as unlabelled (the paper's
    "weakly labelled" reading; :func:`liverseg.train.self_training.unlabelled_patients` picks
    them with ``split.seed``, at least one and never all). Their labels are read by nothing:
    not the choice of training slices, the localizer, the priors, the tuner, nor Algorithm 1,
    which cuts their slices into patches kept by the *predicted* area μ = Â / C and labelled by
    S. ``0`` (the default): every training patient is annotated, and Algorithm 1's patches are
    tiles of annotated slices. It needs ``pseudo_labels="prediction"``. In the lesion stage
    their lesion labels are hidden, but their lesion view is still cut around the reference
    liver, as for every training patient.

    ``unlabelled_phantoms`` (synthetic data only): this many more phantoms, of a dataset seed
    of their own (:func:`liverseg.train.system.unlabelled_phantoms`), join Algorithm 1 as
    unlabelled patients, their labels never loaded into it. Unlike ``unlabelled_share`` it
    changes no network trained before Algorithm 1 (those never saw these patients), so the
    book's comparison reuses the profile's networks. 0: none. ``unlabelled_seed``: their dataset
    seed is ``unlabelled_seed + split.seed``, neither the training data's nor the held-out test
    phantoms' (``experiments.held_out_seed``); at its default it leaves the store's keys as
    before it was a setting.
    """

    iterations: int = 5
    fine_tune_epochs: int = 10
    patience: int = 1
    min_delta: float = 0.0
    metric: str = "dice"
    pseudo_labels: str = "prediction"
    unlabelled_share: float = 0.0
    unlabelled_phantoms: int = 0
    unlabelled_seed: int = 23456

    def __post_init__(self):
        if self.pseudo_labels not in ("prediction", "annotation"):
            raise ValueError(f"pseudo_labels must be 'prediction' or 'annotation', got {self.pseudo_labels!r}")
        if not 0.0 <= self.unlabelled_share < 1.0:  # also refuses NaN
            raise ValueError(f"self_training.unlabelled_share must be in [0, 1), "
                             f"got {self.unlabelled_share}")
        if self.unlabelled_phantoms < 0:
            raise ValueError(f"self_training.unlabelled_phantoms must be >= 0, "
                             f"got {self.unlabelled_phantoms}")
        _check_seed("self_training.unlabelled_seed", self.unlabelled_seed)
        unlabelled = self.unlabelled_share or self.unlabelled_phantoms
        if unlabelled and self.pseudo_labels != "prediction":
            raise ValueError("self_training.unlabelled_share and unlabelled_phantoms need "
                             "pseudo_labels='prediction': unlabelled patients have no annotation "
                             "to label their patches")
        if self.metric not in ("dice", "miou", "accuracy"):
            raise ValueError(f"metric must be 'dice', 'miou' or 'accuracy', got {self.metric!r}")


@dataclass
class SplitConfig(_Serializable):
    """Patient-level split (section 3.1: 70 / 20 / 10 %), deterministic for ``seed``."""

    fractions: tuple[float, float, float] = (0.7, 0.2, 0.1)
    seed: int = 0


@dataclass
class InferenceConfig(_Serializable):
    """From per-plane probabilities to the 0/1/2 label volume (sections 3.9–3.10).

    ``fusion``: ``"soft"`` (Eq. 8, the mean), ``"union"``, ``"intersection"``, ``"majority"``;
    ``fill``: hole filling of the liver (``"3d"``, ``"slice"`` or ``None``);
    ``min_lesion_size``: lesion components below this many mm³ become liver;
    ``lesions``: run the lesion cascade inside the liver; ``liver_margin``: voxels by which the
    liver mask is dilated before the lesion networks look inside it; ``lesion_view``: what
    they see of it (:mod:`liverseg.lesion_view`): ``"liver_box"``, the liver's bounding box
    resized to the input (Christ et al.), or ``"full"``, the whole slice masked to the liver.
    """

    fusion: str = "soft"
    threshold: float = 0.5
    batch_size: int = 8
    fill: Optional[str] = "3d"
    min_lesion_size: float = 10.0
    lesions: bool = True
    liver_margin: int = 2
    lesion_view: str = "liver_box"

    def __post_init__(self):
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.lesion_view not in LESION_VIEWS:
            raise ValueError(f"lesion_view must be one of {LESION_VIEWS}, got {self.lesion_view!r}")
        if self.fill not in ("3d", "slice", None):
            raise ValueError(f"fill must be '3d', 'slice' or None, got {self.fill!r}")
