"""Settings of the networks, their training and inference (Table 2 and the sections of the
paper that each names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from liverseg.config._base import (COMBINATIONS, DICE_REDUCTIONS, FUSIONS, LESION_VIEWS,
                                   LOSS_SCHEMES, OPTIMIZERS, PATCH_ARRANGEMENTS, PRECISIONS,
                                   PRIOR_MODES, RESIDUAL_MERGES, UPSAMPLINGS, Number, Pair,
                                   Section, setting, subsection)
from liverseg.crf import CRFParams
from liverseg.errors import SettingError
from liverseg.prior_jitter import PriorJitterConfig
from liverseg.train.intensity import IntensityConfig
from liverseg.train.spatial import SpatialConfig


@dataclass
class LocalizationConfig(Section):
    """The first network (Section 3.3, Fig. 5): a U-Net-like encoder–decoder on whole slices.

    The paper gives no widths for it; the defaults are the original U-Net's (64 filters doubling
    over four pooling levels), with the paper's dropout 0.2 inside each conv block.
    """

    image_size: int = setting(512, whole=True, at_least=1)
    channels: int = setting(1, whole=True, at_least=1)
    base_filters: int = setting(64, whole=True, at_least=1)
    depth: int = setting(4, whole=True, at_least=1)  # pooling levels; bottleneck at image_size / 2**depth
    dropout: float = setting(0.2, at_least=0, below=1)
    batch_norm: bool = setting(False, flag=True)
    # "transpose" (Conv2DTranspose) or "bilinear" (UpSampling2D)
    upsampling: str = setting("transpose", choices=UPSAMPLINGS)

    _section = "localization"

    def _check_across(self):
        _check_divisible(self)


@dataclass
class TuningConfig(Section):
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

    image_size: int = setting(512, whole=True, at_least=1)
    channels: int = setting(1, whole=True, at_least=1)
    base_filters: int = setting(64, whole=True, at_least=1)
    depth: int = setting(4, whole=True, at_least=1)  # encoder levels with a skip connection
    # None: base_filters * 2**depth
    bottleneck_filters: Optional[int] = setting(None, whole=True, at_least=1, optional=True)
    # parallel 3×3 convs of the first layer
    dilation_rates: tuple[int, ...] = setting((1, 2, 4, 8), items=Number(whole=True, at_least=1),
                                              nonempty=True)
    use_aspp: bool = setting(True, flag=True)
    aspp_rates: tuple[int, ...] = setting((6, 12, 18), items=Number(whole=True, at_least=1))
    aspp_filters: int = setting(256, whole=True, at_least=1)
    dropout: float = setting(0.2, at_least=0, below=1)
    # encoder levels that also see the image's patches (2..depth)
    patch_levels: tuple[int, ...] = setting((2, 3, 4), items=Number(whole=True, at_least=2))
    # §3.4's 256/128/64-pixel patches; or "space_to_depth"
    patch_arrangement: str = setting("tiles", choices=PATCH_ARRANGEMENTS)
    use_convbox: bool = setting(True, flag=True)
    convbox_filters: int = setting(16, whole=True, at_least=1)  # the ConvBox's first two convs
    # 1: one attention map per level; None: the skip's width
    convbox_channels: Optional[int] = setting(1, whole=True, at_least=1, optional=True)
    residual: bool = setting(True, flag=True)
    # "add" (He et al.) or "concat" (Fig. 11's text)
    residual_merge: str = setting("add", choices=RESIDUAL_MERGES)
    deep_supervision: bool = setting(True, flag=True)
    # BatchNorm in the residual blocks (ASPP always has it)
    batch_norm: bool = setting(False, flag=True)
    # "bilinear" (parameter-free, as in DeepLab) or "transpose"
    upsampling: str = setting("bilinear", choices=UPSAMPLINGS)

    _section = "tuning"

    def _check_across(self):
        _check_divisible(self)
        if any(level > self.depth for level in self.patch_levels):
            raise SettingError(f"tuning.patch_levels must lie in 2..depth={self.depth} (level 1 "
                               f"is the full image), got {self.patch_levels}")
        if self.base_filters % len(self.dilation_rates):
            raise SettingError(f"tuning.base_filters={self.base_filters} must divide among the "
                               f"{len(self.dilation_rates)} dilated first-layer branches "
                               f"(tuning.dilation_rates)")

    @property
    def level_filters(self) -> tuple[int, ...]:
        """Filters of encoder/decoder level 1..depth (level 1 = full resolution)."""
        return tuple(self.base_filters * 2**i for i in range(self.depth))

    @property
    def output_names(self) -> tuple[str, ...]:
        """Model outputs, final full-resolution output first, deepest side output last."""
        n = self.depth if self.deep_supervision else 1
        return tuple(f"level_{i}" for i in range(1, n + 1))


def _check_divisible(config) -> None:
    if config.image_size % 2**config.depth:
        raise SettingError(f"{config._section}.image_size={config.image_size} must be divisible "
                           f"by 2**depth={2**config.depth}")


@dataclass
class TrainConfig(Section):
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
    computed, not what it learns, so it is left out of :meth:`Profile.learned_settings`.
    ``early_stopping_start``: the epochs without a lower validation loss count towards
    ``early_stopping_patience`` only after this epoch (Keras' ``EarlyStopping(start_from_epoch)``;
    0: from the first, the paper), so that a network whose loss spikes in its first epochs is
    not stopped before it recovers; the best epoch is still chosen among all of them, unless
    ``keep_best_after_start``: then among those after ``early_stopping_start`` only (Keras'
    ``start_from_epoch``), so that a noisy validation loss cannot keep an epoch of a network
    still learning (the `demo` lesion tuners of 60 epochs kept epochs 13 and 17).
    ``flips``: each training slice, its prior and its label mirrored or turned by one of the 8
    symmetries of the square, drawn anew every epoch (:mod:`liverseg.train.flips`), so that a
    network trained on few patients learns what its structure looks like rather than where it
    lay in them; off by default (the paper names no augmentation), never on validation.
    ``spatial`` (:class:`liverseg.train.spatial.SpatialConfig`): a share of the training rows
    zoomed, turned and shifted anew every epoch, image, prior and label alike, after SynthSeg
    (issue 17: real scans frame the liver otherwise than the phantoms); off by default
    (``share`` 0), never on validation; with ``flips`` the warp follows the flip.
    ``intensity`` (:class:`liverseg.train.intensity.IntensityConfig`): a share of the training
    rows' z-scored images mapped to ``scale * x + offset`` anew every epoch (another volume's
    mean and standard deviation would do that: a real abdomen or a crop puts the liver at
    another z than a phantom), after the warps; the prior and the label stay; off by default.

    The loss and the sampling, for a rare foreground (the lesions): ``positive_weight``
    weighs the foreground pixels' BCE term (1: the paper's Eq. 4); ``dice_over`` is
    ``"sample"`` (Eq. 5 per image, the paper) or ``"batch"`` (one Dice of the whole batch);
    ``small_lesion_weight`` raises the localizer's weight up to ``1 + small_lesion_weight``
    times where the foreground is small, so that its prior holds the small lesions too
    (:func:`liverseg.losses.small_lesion_weights`; 0: uniform, the default; the tuner keeps
    the uniform weight);
    ``positive_share`` is the share of every training batch taken from the slices that hold
    the structure, the rest from those that do not (0: the chosen slices in a plain shuffle,
    the paper; H-DenseUNet centres half of its crops on a tumour, nnU-Net a third).

    ``prior_jitter`` (:class:`liverseg.prior_jitter.PriorJitterConfig`): a share of the tuning
    network's training priors made too small, shifted or missing, anew every epoch, so that
    it learns to follow the image where the box is wrong (issue 17); validation, test and
    inference priors never are. Off by default (``share`` 0, the paper); the localizer does
    not depend on it, and off it leaves the store's keys as before it existed
    (:mod:`liverseg.train.store`). It applies to the tuner of each stage (liver and
    lesion) and to Algorithm 1's fine-tuning.
    """

    optimizer: str = setting("adam", choices=OPTIMIZERS)
    learning_rate: float = setting(1e-4, above=0)
    batch_size: int = setting(4, whole=True, at_least=1)
    epochs: int = setting(100, whole=True, at_least=1)
    early_stopping_patience: int = setting(50, whole=True, at_least=0)  # "Epochs stopping count"
    early_stopping_start: int = setting(0, whole=True, at_least=0)
    keep_best_after_start: bool = setting(False, flag=True)
    loss_scheme: str = setting("paper", choices=LOSS_SCHEMES)
    localization_loss: tuple[float, float] = setting((1.0, 1.0), pair=Pair(at_least=0, order=""))
    empty_slice_fraction: float = setting(0.1, at_least=0, at_most=1)
    prior_folds: int = setting(2, whole=True, at_least=1)
    precision: str = setting("float32", choices=PRECISIONS)
    jit_compile: Any = setting("auto", choices=("auto", True, False))
    seed: int = setting(0, whole=True, at_least=0)
    devices: int = setting(1, whole=True, at_least=1)
    positive_weight: float = setting(1.0, above=0)
    dice_over: str = setting("sample", choices=DICE_REDUCTIONS)
    small_lesion_weight: float = setting(0.0, at_least=0)
    positive_share: float = setting(0.0, at_least=0, at_most=1)
    flips: bool = setting(False, flag=True)
    prior_jitter: PriorJitterConfig = subsection(PriorJitterConfig)
    spatial: SpatialConfig = subsection(SpatialConfig)
    intensity: IntensityConfig = subsection(IntensityConfig)

    _section = "train"

    def _check_across(self):
        if self.batch_size % self.devices:
            raise SettingError(f"train.batch_size={self.batch_size} must be a multiple of "
                               f"train.devices={self.devices} (each device gets an equal share)")


@dataclass
class PriorConfig(Section):
    """The ROI prior given to the tuning network (:func:`liverseg.prior.roi_prior`).

    ``margin`` is in pixels of the model's input (about 1/32 of the slice). ``cam_layer``
    ``None`` uses :func:`liverseg.cam.default_cam_layer`. The CRF settings are
    :class:`liverseg.crf.CRFParams`.
    """

    mode: str = setting("bbox", choices=PRIOR_MODES)
    threshold: float = setting(0.5, at_least=0, at_most=1)
    margin: int = setting(16, whole=True, at_least=0)
    combine: str = setting("mean", choices=COMBINATIONS)
    cam_weight: float = setting(1 / 3, at_least=0, at_most=1)
    keep_largest: bool = setting(True, flag=True)
    use_crf: bool = setting(True, flag=True)
    cam_layer: Optional[str] = setting(None, kind=str, optional=True)
    crf: CRFParams = subsection(CRFParams)

    _section = "prior"

    def roi_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`liverseg.prior.roi_priors`."""
        return dict(mode=self.mode, threshold=self.threshold, margin=self.margin,
                    combine=self.combine, cam_weight=self.cam_weight,
                    keep_largest=self.keep_largest, use_crf=self.use_crf, crf_params=self.crf)


@dataclass
class PatchConfig(Section):
    """The patch dataset of Algorithm 1: tiles of each level kept when μ = A / C ≥ threshold.

    Level l cuts the slice into a 2**(l-1) × 2**(l-1) grid (l = 2, 3, 4: the 256, 128 and
    64 pixel patches of a 512 slice, section 3.4); ``area_threshold`` is Eq. 7's 0.3.
    """

    # level 1 is the whole slice
    levels: tuple[int, ...] = setting((2, 3, 4), items=Number(whole=True, at_least=2))
    area_threshold: float = setting(0.3, at_least=0, at_most=1)

    _section = "patches"


@dataclass
class SelfTrainingConfig(Section):
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

    iterations: int = setting(5, whole=True, at_least=0)
    fine_tune_epochs: int = setting(10, whole=True, at_least=1)
    patience: int = setting(1, whole=True, at_least=0)
    min_delta: float = setting(0.0, at_least=0)
    metric: str = setting("dice", choices=("dice", "miou", "accuracy"))
    pseudo_labels: str = setting("prediction", choices=("prediction", "annotation"))
    unlabelled_share: float = setting(0.0, at_least=0, below=1)
    unlabelled_phantoms: int = setting(0, whole=True, at_least=0)
    unlabelled_seed: int = setting(23456, whole=True, at_least=0)

    _section = "self_training"

    def _check_across(self):
        if (self.unlabelled_share or self.unlabelled_phantoms) and self.pseudo_labels != "prediction":
            raise SettingError("self_training.unlabelled_share and unlabelled_phantoms need "
                               "self_training.pseudo_labels='prediction': unlabelled patients "
                               "have no annotation to label their patches")


@dataclass
class SplitConfig(Section):
    """Patient-level split (section 3.1: 70 / 20 / 10 %), deterministic for ``seed``."""

    # (train, val, test), summing to 1
    fractions: tuple[float, float, float] = setting((0.7, 0.2, 0.1),
                                                    items=Number(at_least=0, at_most=1))
    seed: int = setting(0, whole=True, at_least=0)

    _section = "split"

    def _check_across(self):
        if len(self.fractions) != 3 or abs(sum(self.fractions) - 1) > 1e-6:
            raise SettingError(f"split.fractions must be three shares (train, val, test) that "
                               f"sum to 1, got {self.fractions}")


@dataclass
class InferenceConfig(Section):
    """From per-plane probabilities to the 0/1/2 label volume (sections 3.9–3.10).

    ``fusion``: ``"soft"`` (Eq. 8, the mean), ``"union"``, ``"intersection"``, ``"majority"``;
    ``fill``: hole filling of the liver (``"3d"``, ``"slice"`` or ``None``);
    ``min_lesion_size``: lesion components below this many mm³ become liver;
    ``lesions``: run the lesion cascade inside the liver; ``liver_margin``: voxels by which the
    liver mask is dilated before the lesion networks look inside it; ``lesion_view``: what
    they see of it (:mod:`liverseg.lesion_view`): ``"liver_box"``, the liver's bounding box
    resized to the input (Christ et al.), or ``"full"``, the whole slice masked to the liver.
    """

    fusion: str = setting("soft", choices=FUSIONS)
    threshold: float = setting(0.5, at_least=0, at_most=1)
    batch_size: int = setting(8, whole=True, at_least=1)
    fill: Optional[str] = setting("3d", choices=("3d", "slice"), optional=True)
    min_lesion_size: float = setting(10.0, at_least=0)
    lesions: bool = setting(True, flag=True)
    liver_margin: int = setting(2, whole=True, at_least=0)
    lesion_view: str = setting("liver_box", choices=LESION_VIEWS)

    _section = "inference"
