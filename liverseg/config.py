"""Named settings profiles: ``smoke`` (CI), ``demo`` (the book, on a CPU) and ``paper`` (Table 2).

Every chapter and the command line run under one profile, so a number in the book can always be
traced to the settings behind it. Config objects are plain dataclasses (no Keras import here) and
round-trip through JSON with ``to_dict`` / ``from_dict``.

    >>> from liverseg.config import profile
    >>> p = profile("paper")
    >>> p.train.learning_rate, p.train.batch_size, p.tuning.aspp_rates, p.patches.area_threshold
    (0.0001, 4, (6, 12, 18), 0.3)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from liverseg.crf import CRFParams
from liverseg.datasets.planes import PLANES
from liverseg.lesion_synthesis import SynthesisConfig
from liverseg.preprocess import PreprocessConfig
from liverseg.prior_jitter import PriorJitterConfig

PATCH_ARRANGEMENTS = ("space_to_depth", "tiles")
RESIDUAL_MERGES = ("add", "concat")
DATASETS = ("synthetic", "lits", "ircadb")
OPTIMIZERS = ("adam", "sgd", "adamw")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
FUSIONS = ("soft", "union", "intersection", "majority")
LESION_VIEWS = ("liver_box", "full")  # see liverseg.lesion_view
UPSAMPLINGS = ("transpose", "bilinear")
EXECUTION_ONLY = ("train.devices",)  # settings that do not change what a run learns
PHANTOM_PHASES = ("unenhanced", "arterial", "portal_venous", "late")  # contrast phases of phantoms
SLICE_PROFILES = ("thickness", "spacing", "none")
APPEARANCE_MODES = ("realistic", "randomized")  # PhantomConfig.appearance (issue 17)
DICE_REDUCTIONS = ("sample", "batch")  # as liverseg.losses
STRUCTURES = ("liver", "lesion")
PRIOR_MODES = ("bbox", "boxes", "mask")  # as liverseg.prior


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
                values[key] = _from_dict(sub, values[key])
        return cls(**values)


def _from_dict(cls, data: dict[str, Any]):
    """``cls.from_dict(data)``, also for plain dataclasses of other modules (e.g. CRFParams)."""
    if hasattr(cls, "from_dict"):
        return cls.from_dict(data)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    return cls(**{k: _tuplify(v) for k, v in data.items()})


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
    computed, not what it learns, so it is left out of :meth:`Profile.learned_settings`.

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
    book's comparison reuses the profile's networks. 0: none.
    """

    iterations: int = 5
    fine_tune_epochs: int = 10
    patience: int = 1
    min_delta: float = 0.0
    metric: str = "dice"
    pseudo_labels: str = "prediction"
    unlabelled_share: float = 0.0
    unlabelled_phantoms: int = 0

    def __post_init__(self):
        if self.pseudo_labels not in ("prediction", "annotation"):
            raise ValueError(f"pseudo_labels must be 'prediction' or 'annotation', got {self.pseudo_labels!r}")
        if not 0.0 <= self.unlabelled_share < 1.0:  # also refuses NaN
            raise ValueError(f"self_training.unlabelled_share must be in [0, 1), "
                             f"got {self.unlabelled_share}")
        if self.unlabelled_phantoms < 0:
            raise ValueError(f"self_training.unlabelled_phantoms must be >= 0, "
                             f"got {self.unlabelled_phantoms}")
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


@dataclass
class PhantomConfig(_Serializable):
    """How the synthetic phantoms are scanned, and how varied their livers are (issue 10).

    The scanner settings below never change the patient of a seed (anatomy, lesions, each
    tissue's place in its HU band); they decide how it is imaged
    (:mod:`liverseg.datasets.synthetic.scanner`).
    Each case draws: a contrast ``phase`` (``phases`` with probabilities ``phase_weights``; the
    HU bands of each phase and their sources are in :mod:`liverseg.datasets.synthetic.tissues`);
    a noise level (``noise_hu``, HU) and grain (``noise_correlation_mm``: the in-plane Gaussian
    that filters white noise, 0 = white; ``None``: the classic grain of 0.6 voxel whatever the
    spacing); an in-plane resolution (``psf_mm``, the reconstruction kernel's blur); a slice
    thickness (one of ``slice_thickness_mm``) whose partial volume ``slice_profile`` sets:
    ``"thickness"`` (a slice profile of that FWHM along z), ``"spacing"`` (about one slice
    spacing, the classic) or ``"none"``; the field of view (``fov_margin``: its size over the
    body's; a clinical 512² scan's pixel is kept within ``in_plane_spacing_mm``), the table in
    it (``table_probability``), beam-hardening streaks from the spine (``streak_probability``,
    amplitude ``streak_hu``) and metal (``metal_probability``: a surgical clip beside the liver
    or pedicle screws, saturating the CT scale, with streaks of ``metal_streak_hu``).

    The anatomy settings do change the patient (each from random streams of its own, so the
    classic draws stay put). Lesions (:mod:`liverseg.datasets.synthetic.lesions`, which gives the
    LiTS measurements behind the defaults): none in ``healthy_probability`` of the cases; else 1–8
    of radius log-uniform in ``lesion_radius_mm``, or, in ``multifocal_probability`` of them,
    ``multifocal_count`` small lesions (radius log-normal of median ``multifocal_radius_median_mm``
    and ``multifocal_radius_sigma_log``, within ``multifocal_radius_mm``) plus
    ``multifocal_large_count`` of ``multifocal_large_radius_mm``; each lesion darker than the
    liver by ``lesion_contrast_hu`` (uniform; or normal with ``lesion_contrast_normal_hu`` = (mean,
    sd), clipped to that range), lesions of 5 mm radius or more (80 %) with a core darker by
    ``core_darkening_hu`` (``None``: the classic necrotic centre of half the lesions over 12 mm),
    ``hyperdense_probability`` of them brighter than the liver by ``hyperdense_hu``,
    ``rim_probability`` with a rim brighter by ``rim_hu``, borders blurred over ``border_blur_mm``.
    Vessels and shape (:mod:`liverseg.datasets.synthetic.liver`, with its sources):
    ``vessel_generations`` of branches from the portal and hepatic trunks, down to
    ``vessel_tip_radius_mm``; the left lobe's reach times ``left_lobe_scale``; a Riedel's lobe in
    ``riedel_probability`` of the livers; the liver scaled to ``liver_volume_l`` litres (``None``:
    as the body's frame makes it, 0.5–2 L). ``matrix``: the scan's in-plane pixels (``None``: the
    profile's ``image_size``; :attr:`Profile.phantom_shape`) — the networks take slices resized
    to their input, so a matrix finer than the liver networks' input keeps detail for the lesion
    view, which is cut from the volume before it is resized.

    Appearance beyond realism (issue 17, after SynthSeg; :mod:`liverseg.datasets.synthetic.appearance`,
    from random streams of its own, so it never moves the anatomy, the lesions or the label).
    ``appearance="randomized"`` gives each case's soft tissues (skin, fats, muscle, heart, blood,
    liver, its vessels, spleen, kidneys, pancreas, bowel wall, fluid, discs) a mean HU uniform in
    ``appearance_tissue_hu``, bone and cortex one in ``appearance_bone_hu`` (air, lung, gas and
    the table keep their bands), each of those a texture sd uniform in ``appearance_texture_hu``
    (HU); lesions stay their drawn contrast below (or above) the new liver. After the scanner's
    blur and before its noise, a smooth bias field multiplies the attenuation (HU + 1000) by
    ``1 ± b`` (``b`` uniform in ``appearance_bias``; air stays −1000) and a gamma (log-uniform in
    ``appearance_gamma``) bends the HU inside ``appearance_gamma_window_hu`` (identity outside).
    ``liver_perfusion_hu`` (either mode): the amplitude range (HU) of patchy, perfusion-like
    enhancement of the liver parenchyma; ``(0, 0)``, the default, draws none.
    :func:`~liverseg.datasets.synthetic.appearance.randomize_appearance` re-draws all this per
    (seed, epoch, case). The defaults keep the mode off: the mixture and :meth:`classic` are
    unchanged.

    The defaults are the realistic mixture: mostly portal-venous scans, as DESIGN.md takes LiTS
    to be (the phase weights are our estimate, not a census of LiTS), 8–30 HU noise (routine
    to low-dose abdominal CT) with an in-plane grain of 0.6–1.2 mm (the noise of one real LiTS
    liver crop, volume 117, correlates 0.31–0.43 between neighbouring pixels, which a Gaussian
    of about 0.6 pixel gives; its pixel size is unknown, about 1.5 mm assumed), 0.7–5 mm
    slices and 0.5–1 mm pixels (DESIGN.md), streaks in 30 % and metal in 5 % of the scans.
    :meth:`classic` is the generator before these settings existed, bit for bit (no anatomical
    variety: 30 % healthy, 1–8 lesions of 2.5–40 mm, 10–60 HU darker, 7 vessel tubes); the ``smoke``
    profile keeps it, since the test suite's figures rest on those phantoms; ``demo`` (the
    book) and ``paper`` use the mixture. Arms beside the body are not drawn (they are anatomy,
    not acquisition).
    """

    phases: tuple[str, ...] = PHANTOM_PHASES
    phase_weights: tuple[float, ...] = (0.1, 0.15, 0.65, 0.1)
    noise_hu: tuple[float, float] = (8.0, 30.0)
    noise_correlation_mm: Optional[tuple[float, float]] = (0.6, 1.2)
    psf_mm: tuple[float, float] = (0.4, 1.1)
    slice_thickness_mm: tuple[float, ...] = (0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
    slice_profile: str = "thickness"
    in_plane_spacing_mm: tuple[float, float] = (0.5, 1.0)
    fov_margin: tuple[float, float] = (1.0, 1.5)
    table_probability: float = 0.9
    streak_probability: float = 0.3
    streak_hu: tuple[float, float] = (10.0, 60.0)
    metal_probability: float = 0.05
    metal_streak_hu: tuple[float, float] = (100.0, 400.0)
    # lesions (issue 10, "lesions as in LiTS"; :mod:`liverseg.datasets.synthetic.lesions`)
    healthy_probability: float = 0.3
    lesion_radius_mm: tuple[float, float] = (2.5, 50.0)
    lesion_contrast_hu: tuple[float, float] = (10.0, 75.0)
    lesion_contrast_normal_hu: Optional[tuple[float, float]] = (45.0, 12.0)
    core_darkening_hu: Optional[tuple[float, float]] = (10.0, 25.0)
    multifocal_probability: float = 0.15
    multifocal_count: tuple[int, int] = (15, 80)
    multifocal_radius_mm: tuple[float, float] = (2.5, 10.0)
    multifocal_radius_median_mm: float = 4.0
    multifocal_radius_sigma_log: float = 0.6
    multifocal_large_count: tuple[int, int] = (1, 5)
    multifocal_large_radius_mm: tuple[float, float] = (15.0, 35.0)
    hyperdense_probability: float = 0.1
    hyperdense_hu: tuple[float, float] = (10.0, 40.0)
    rim_probability: float = 0.15
    rim_hu: tuple[float, float] = (20.0, 60.0)
    border_blur_mm: tuple[float, float] = (0.0, 3.0)
    # vessels and liver shape (issue 10, "anatomical variety"; :mod:`liverseg.datasets.synthetic.liver`)
    vessel_generations: int = 3
    vessel_tip_radius_mm: tuple[float, float] = (1.0, 1.5)
    left_lobe_scale: tuple[float, float] = (0.7, 1.5)
    riedel_probability: float = 0.1
    liver_volume_l: Optional[tuple[float, float]] = (1.0, 2.5)
    # the scan's matrix (issue 16, "lesions that are found")
    matrix: Optional[int] = None
    # appearance beyond realism (issue 17; :mod:`liverseg.datasets.synthetic.appearance`)
    appearance: str = "realistic"
    appearance_tissue_hu: tuple[float, float] = (-100.0, 200.0)
    appearance_bone_hu: tuple[float, float] = (150.0, 1200.0)
    appearance_texture_hu: tuple[float, float] = (0.0, 30.0)
    appearance_bias: tuple[float, float] = (0.0, 0.05)
    appearance_gamma: tuple[float, float] = (0.6, 1.6)
    appearance_gamma_window_hu: tuple[float, float] = (-100.0, 200.0)
    liver_perfusion_hu: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def classic(cls) -> "PhantomConfig":
        """The phantoms before issue 10: portal-venous or (20 %) unenhanced, 10–20 HU noise of a
        0.6-voxel grain, a one-spacing slice profile, the table always, no streaks, no metal."""
        return cls(phases=("unenhanced", "portal_venous"), phase_weights=(0.2, 0.8),
                   noise_hu=(10.0, 20.0), noise_correlation_mm=None, psf_mm=(0.5, 0.9),
                   slice_profile="spacing", fov_margin=(1.04, 1.2), table_probability=1.0,
                   streak_probability=0.0, metal_probability=0.0,
                   lesion_radius_mm=(2.5, 40.0), lesion_contrast_hu=(10.0, 60.0),
                   lesion_contrast_normal_hu=None, core_darkening_hu=None, multifocal_probability=0.0,
                   hyperdense_probability=0.0, rim_probability=0.0, border_blur_mm=(0.0, 0.0),
                   vessel_generations=0, left_lobe_scale=(1.0, 1.0), riedel_probability=0.0,
                   liver_volume_l=None)

    def __post_init__(self):
        name = "phantoms"
        if not self.phases or len(set(self.phases)) != len(self.phases):
            raise ValueError(f"{name}.phases must name distinct phases, got {self.phases}")
        bad = [p for p in self.phases if p not in PHANTOM_PHASES]
        if bad:
            raise ValueError(f"{name}.phases must be among {PHANTOM_PHASES}, got {bad}")
        if len(self.phase_weights) != len(self.phases):
            raise ValueError(f"{name}.phase_weights needs one weight per phase "
                             f"({len(self.phases)}), got {self.phase_weights}")
        if min(self.phase_weights) < 0 or abs(sum(self.phase_weights) - 1) > 1e-6:
            raise ValueError(f"{name}.phase_weights must be >= 0 and sum to 1, got {self.phase_weights}")
        _check_range(f"{name}.noise_hu", self.noise_hu)
        if self.matrix is not None and self.matrix < 8:
            raise ValueError(f"{name}.matrix must be None or at least 8 pixels, got {self.matrix}")
        if self.noise_correlation_mm is not None:
            _check_range(f"{name}.noise_correlation_mm", self.noise_correlation_mm)
        _check_range(f"{name}.psf_mm", self.psf_mm, positive=True)
        if not self.slice_thickness_mm or min(self.slice_thickness_mm) <= 0:
            raise ValueError(f"{name}.slice_thickness_mm must list positive thicknesses, "
                             f"got {self.slice_thickness_mm}")
        if self.slice_profile not in SLICE_PROFILES:
            raise ValueError(f"{name}.slice_profile must be one of {SLICE_PROFILES}, "
                             f"got {self.slice_profile!r}")
        _check_range(f"{name}.in_plane_spacing_mm", self.in_plane_spacing_mm, positive=True)
        _check_range(f"{name}.fov_margin", self.fov_margin, positive=True)
        _check_range(f"{name}.streak_hu", self.streak_hu)
        _check_range(f"{name}.metal_streak_hu", self.metal_streak_hu)
        _check_range(f"{name}.lesion_radius_mm", self.lesion_radius_mm, positive=True)
        _check_range(f"{name}.lesion_contrast_hu", self.lesion_contrast_hu)
        if self.lesion_contrast_normal_hu is not None:
            _check_range(f"{name}.lesion_contrast_normal_hu", self.lesion_contrast_normal_hu, ordered=False)
        if self.core_darkening_hu is not None:
            _check_range(f"{name}.core_darkening_hu", self.core_darkening_hu)
        _check_range(f"{name}.multifocal_count", self.multifocal_count, positive=True)
        _check_range(f"{name}.multifocal_large_count", self.multifocal_large_count)
        for field_name in ("multifocal_count", "multifocal_large_count"):
            value = getattr(self, field_name)
            if any(int(v) != v for v in value):
                raise ValueError(f"{name}.{field_name} must be whole numbers, got {value!r}")
        if self.multifocal_count[1] + self.multifocal_large_count[1] > 200:
            raise ValueError(f"{name}.multifocal_count + multifocal_large_count allow at most 200 lesions, "
                             f"got {self.multifocal_count} + {self.multifocal_large_count}")
        _check_range(f"{name}.multifocal_radius_mm", self.multifocal_radius_mm, positive=True)
        _check_range(f"{name}.multifocal_large_radius_mm", self.multifocal_large_radius_mm, positive=True)
        if not self.multifocal_radius_mm[0] <= self.multifocal_radius_median_mm <= self.multifocal_radius_mm[1]:
            raise ValueError(f"{name}.multifocal_radius_median_mm must lie in multifocal_radius_mm "
                             f"{self.multifocal_radius_mm}, got {self.multifocal_radius_median_mm}")
        if self.multifocal_radius_sigma_log < 0:
            raise ValueError(f"{name}.multifocal_radius_sigma_log must be >= 0, "
                             f"got {self.multifocal_radius_sigma_log}")
        _check_range(f"{name}.hyperdense_hu", self.hyperdense_hu)
        _check_range(f"{name}.rim_hu", self.rim_hu)
        _check_range(f"{name}.border_blur_mm", self.border_blur_mm)
        if int(self.vessel_generations) != self.vessel_generations or not 0 <= self.vessel_generations <= 5:
            raise ValueError(f"{name}.vessel_generations must be a whole number in 0..5, "
                             f"got {self.vessel_generations}")
        _check_range(f"{name}.vessel_tip_radius_mm", self.vessel_tip_radius_mm, positive=True)
        _check_range(f"{name}.left_lobe_scale", self.left_lobe_scale, positive=True)
        if self.liver_volume_l is not None:
            _check_range(f"{name}.liver_volume_l", self.liver_volume_l, positive=True)
        for field_name in ("table_probability", "streak_probability", "metal_probability", "healthy_probability",
                           "multifocal_probability", "hyperdense_probability", "rim_probability",
                           "riedel_probability"):
            value = getattr(self, field_name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}.{field_name} must be in [0, 1], got {value}")
        self._check_appearance(name)

    def _check_appearance(self, name: str) -> None:
        """The appearance settings (issue 17): each a ``(low, high)`` pair within its bounds."""
        if self.appearance not in APPEARANCE_MODES:
            raise ValueError(f"{name}.appearance must be one of {APPEARANCE_MODES}, got {self.appearance!r}")
        bounds = {  # setting: (lowest low, highest high, low may equal high)
            "appearance_tissue_hu": (-1000.0, 3000.0, True),
            "appearance_bone_hu": (-1000.0, 3000.0, True),
            "appearance_texture_hu": (0.0, 500.0, True),
            "appearance_bias": (0.0, 0.5, True),
            "appearance_gamma": (0.1, 10.0, True),
            "appearance_gamma_window_hu": (-1024.0, 3071.0, False),
            "liver_perfusion_hu": (0.0, 500.0, True),
        }
        for field_name, (lowest, highest, equal) in bounds.items():
            value = getattr(self, field_name)
            try:
                low, high = (float(v) for v in value)
            except (TypeError, ValueError):
                raise ValueError(f"{name}.{field_name} must be a (low, high) pair, got {value!r}") from None
            if not (lowest <= low and high <= highest and (low <= high if equal else low < high)):
                order = "<=" if equal else "<"
                raise ValueError(f"{name}.{field_name} must be a range with {lowest:g} <= low {order} high "
                                 f"<= {highest:g}, got {value!r}")


def _check_range(name: str, value, positive: bool = False, ordered: bool = True) -> None:
    """``value`` must be a ``(low, high)`` pair with ``0 <= low <= high`` (``0 < low`` if ``positive``;
    ``ordered=False``: a ``(mean, sd)`` pair, both ``>= 0``)."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair, got {value!r}") from None
    if not ordered:
        if low < 0 or high < 0:
            raise ValueError(f"{name} must be a (mean, sd) pair, both >= 0, got {value!r}")
        return
    if not (0 < low if positive else 0 <= low) or low > high:
        bound = "0 < low" if positive else "0 <= low"
        raise ValueError(f"{name} must be a range with {bound} <= high, got {value!r}")


@dataclass
class LesionConfig(_Serializable):
    """The lesion networks' own settings, where they differ from the liver's.

    The paper runs "the same cascade" for the lesions; the systems that find lesions give
    their second stage its own input size, sampling and loss (Christ et al.'s 388² liver box,
    H-DenseUNet's tumour-centred crops), so the lesion stage starts from the liver's settings
    and this section changes some of them: each field left ``None`` is the liver's.
    :meth:`Profile.stage` applies it (``settings.stage("lesion")``). The ROI prior of the
    lesion localizer keeps every component, a box around each (``prior_mode="boxes"``,
    ``prior_keep_largest=False``): the liver is one organ, but a liver may hold many lesions,
    and one box over the largest would hide the others from the tuner. ``image_size`` is the
    lesion view's input (the liver's box resized to it, :mod:`liverseg.lesion_view`);
    ``base_filters`` widens or narrows both lesion networks; the ``train`` fields are those
    of :class:`TrainConfig` (``prior_folds`` 1: the tuner learns from the main localizer's
    in-sample priors, where weak fold localizers may cover few lesions). ``synthesis`` joins
    the lesion stage's training volumes by synthetic copies with lesions inserted into their
    livers (:mod:`liverseg.lesion_synthesis`, drawn once per copy, not anew every epoch).
    """

    image_size: Optional[int] = None
    base_filters: Optional[int] = None
    learning_rate: Optional[float] = None
    batch_size: Optional[int] = None
    epochs: Optional[int] = None
    early_stopping_patience: Optional[int] = None
    empty_slice_fraction: Optional[float] = None
    loss_scheme: Optional[str] = None
    positive_weight: Optional[float] = None
    dice_over: Optional[str] = None
    positive_share: Optional[float] = None
    prior_folds: Optional[int] = None
    prior_mode: Optional[str] = "boxes"
    prior_keep_largest: Optional[bool] = False
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)

    _nested = {"synthesis": SynthesisConfig}

    #: where each override lands in the settings tree
    TARGETS = {
        "image_size": ("image_size", "localization.image_size", "tuning.image_size"),
        "base_filters": ("localization.base_filters", "tuning.base_filters"),
        **{name: (f"train.{name}",) for name in (
            "learning_rate", "batch_size", "epochs", "early_stopping_patience",
            "empty_slice_fraction", "loss_scheme", "positive_weight", "dice_over",
            "positive_share", "prior_folds")},
        "prior_mode": ("prior.mode",),
        "prior_keep_largest": ("prior.keep_largest",),
    }

    @classmethod
    def applied(cls, synthesis: SynthesisConfig | None = None) -> "LesionConfig":
        """A section with no override left (what a stage keeps once they are applied)."""
        return cls(**{name: None for name in cls.TARGETS},
                   synthesis=synthesis or SynthesisConfig())

    @classmethod
    def before_it_existed(cls) -> "LesionConfig":
        """The lesion stage of a settings tree saved before this section: the liver's
        settings throughout, one box over the largest lesion component."""
        return cls(prior_mode=None, prior_keep_largest=None)

    def __post_init__(self):
        if self.prior_mode not in (None, *PRIOR_MODES):
            raise ValueError(f"lesion.prior_mode must be one of {PRIOR_MODES} or None, "
                             f"got {self.prior_mode!r}")

    def changes(self) -> dict[str, Any]:
        """``Profile.replace`` keys of the overrides that are set."""
        return {target: getattr(self, name) for name, targets in self.TARGETS.items()
                for target in targets if getattr(self, name) is not None}


@dataclass
class ExperimentConfig(_Serializable):
    """How the experiment chapters compare settings (:mod:`liverseg.experiments`).

    Each variant is trained once per seed in ``seeds`` (``train.seed``) on the same split and
    scored on the test patients along ``plane`` (the paper's Tables 3–5 are axial).
    ``test_phantoms`` (synthetic data only): this many more phantoms, from another seed than
    the training data, join the split's test patients — a 70/20/10 split of a dozen phantoms
    tests on one patient, and held-out phantoms cost only inference. ``system_planes``: the
    planes of the results chapter's whole system (liver and lesion cascades); ``None``: every
    plane of the profile (``smoke`` keeps the lesion cascade on the axial plane alone, to stay
    within the test suite's time).
    """

    seeds: tuple[int, ...] = (0, 1, 2)
    plane: str = "axial"
    test_phantoms: int = 0
    system_planes: Optional[tuple[str, ...]] = None

    def __post_init__(self):
        if not self.seeds:
            raise ValueError("experiments.seeds must name at least one seed")
        if self.plane not in PLANES:
            raise ValueError(f"experiments.plane must be one of {PLANES}, got {self.plane!r}")
        if self.test_phantoms < 0:
            raise ValueError(f"experiments.test_phantoms must be >= 0, got {self.test_phantoms}")
        bad = [p for p in self.system_planes or () if p not in PLANES]
        if bad or self.system_planes == ():
            raise ValueError(f"experiments.system_planes must be None or planes of {PLANES}, "
                             f"got {self.system_planes}")


@dataclass
class Profile(_Serializable):
    """Every setting a run depends on; saved with every model folder and results file."""

    name: str
    image_size: int
    n_cases: Optional[int]  # None: every case of the dataset
    dataset: str = "synthetic"  # "synthetic", "lits" or "ircadb"
    planes: tuple[str, ...] = ("axial", "coronal", "sagittal")
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    localization: LocalizationConfig = field(default_factory=LocalizationConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    patches: PatchConfig = field(default_factory=PatchConfig)
    self_training: SelfTrainingConfig = field(default_factory=SelfTrainingConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    experiments: ExperimentConfig = field(default_factory=ExperimentConfig)
    phantoms: PhantomConfig = field(default_factory=PhantomConfig)
    lesion: LesionConfig = field(default_factory=LesionConfig)

    def __post_init__(self):
        for sub in (self.localization, self.tuning):
            if sub.image_size != self.image_size:
                raise ValueError(
                    f"profile {self.name!r}: {type(sub).__name__}.image_size={sub.image_size} "
                    f"differs from the profile's image_size={self.image_size}"
                )
        bad = [p for p in self.planes if p not in PLANES]
        if bad or not self.planes:
            raise ValueError(f"planes must be a non-empty subset of {PLANES}, got {self.planes}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.self_training.unlabelled_phantoms and self.dataset != "synthetic":
            raise ValueError("self_training.unlabelled_phantoms adds phantoms: synthetic data "
                             "only (use self_training.unlabelled_share on a real dataset)")
        for level in self.patches.levels:
            if self.image_size % 2 ** (level - 1):
                raise ValueError(f"image_size={self.image_size} cannot be cut at patch level {level}")
        if self.lesion.changes():
            try:
                self.stage("lesion")
            except ValueError as error:
                raise ValueError(f"profile {self.name!r}, lesion section: {error}") from None

    _nested = {
        "preprocess": PreprocessConfig, "localization": LocalizationConfig,
        "tuning": TuningConfig, "prior": PriorConfig, "train": TrainConfig,
        "patches": PatchConfig, "self_training": SelfTrainingConfig, "split": SplitConfig,
        "inference": InferenceConfig, "experiments": ExperimentConfig, "phantoms": PhantomConfig,
        "lesion": LesionConfig,
    }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Profile":
        """A saved settings tree back as a profile. A tree saved before the ``phantoms``
        section existed was made with the classic phantoms, so it reads back with those, not
        with today's default mixture."""
        if "phantoms" not in data:
            data = {**data, "phantoms": PhantomConfig.classic().to_dict()}
        if "lesion" not in data:
            data = {**data, "lesion": LesionConfig.before_it_existed().to_dict()}
        return super().from_dict(data)

    def learned_settings(self) -> dict[str, Any]:
        """:meth:`to_dict` without the settings that change only where a run is computed
        (:data:`EXECUTION_ONLY`): what a trained network or a number depends on, so two runs
        on different hardware share their stored networks and may resume each other."""
        data = self.to_dict()
        for dotted in EXECUTION_ONLY:
            *path, last = dotted.split(".")
            node = data
            for part in path:
                node = node[part]
            del node[last]
        return data

    @property
    def phantom_shape(self) -> tuple[int, int, int]:
        """``(z, y, x)`` voxels of a synthetic case: ``image_size / 2`` slices of
        ``phantoms.matrix`` (default ``image_size``) pixels squared."""
        matrix = self.phantoms.matrix or self.image_size
        return (self.image_size // 2, matrix, matrix)

    def stage(self, structure: str) -> "Profile":
        """The settings the networks of one structure train and segment with.

        ``"liver"``: this profile with an empty ``lesion`` section (the liver networks depend
        on no lesion setting, so changing one never retrains them). ``"lesion"``: the lesion
        section's overrides applied (:meth:`LesionConfig.changes`), which it then keeps only
        for what is the lesion stage's alone (``synthesis``). The data — which cases, the
        phantoms' size — always come from the profile itself, not from a stage.
        """
        if structure not in STRUCTURES:
            raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
        if structure == "liver":
            return self.replace(lesion=LesionConfig.applied())
        return self.replace(**self.lesion.changes(),
                            lesion=LesionConfig.applied(self.lesion.synthesis))

    def for_dataset(self, dataset: str) -> "Profile":
        """This profile on ``dataset`` (``"synthetic"``, ``"lits"``, ``"ircadb"``); a real dataset
        gets no held-out phantoms (``experiments.test_phantoms`` = 0)."""
        changes: dict[str, Any] = {"dataset": dataset}
        if dataset != "synthetic":
            changes["experiments.test_phantoms"] = 0
        return self.replace(**changes)

    def replace(self, **changes) -> "Profile":
        """A copy with some top-level fields or dotted sub-fields changed.

        ``p.replace(**{"train.epochs": 3, "planes": ("axial",)})``.
        """
        data = self.to_dict()
        for key, value in changes.items():
            *path, last = key.split(".")
            node = data
            for part in path:
                node = node[part]
            if last not in node:
                raise ValueError(f"profile has no setting {key!r}")
            node[last] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        return Profile.from_dict(data)


def _smoke() -> Profile:
    size = 64
    return Profile(
        name="smoke",
        image_size=size,
        n_cases=5,
        planes=("axial", "coronal", "sagittal"),
        localization=LocalizationConfig(image_size=size, base_filters=8, depth=3),
        tuning=TuningConfig(
            image_size=size, base_filters=8, depth=3, dilation_rates=(1, 2), patch_levels=(2, 3),
            aspp_filters=8, aspp_rates=(2, 4, 6),
        ),
        # CRF distances are pixels: 1/8 of the paper's 512-pixel settings at 64 pixels
        prior=PriorConfig(margin=2, crf=CRFParams(gaussian_sxy=1.0, bilateral_sxy=2.5)),
        train=TrainConfig(learning_rate=3e-3, batch_size=8, epochs=20, early_stopping_patience=4,
                          prior_folds=1),
        patches=PatchConfig(levels=(2, 3)),
        self_training=SelfTrainingConfig(iterations=1, fine_tune_epochs=1),
        experiments=ExperimentConfig(seeds=(0,), test_phantoms=2, system_planes=("axial",)),
        phantoms=PhantomConfig.classic(),  # the book's numbers rest on these phantoms
        lesion=LesionConfig(epochs=3),  # the lesion chapter trains four cascades
    )


def _demo() -> Profile:
    # What `make book` renders: three seeds of every experiment in about two hours on a 2-core
    # machine, so the slices stay at 64 pixels and the networks grow instead.
    size = 64
    return Profile(
        name="demo",
        image_size=size,
        n_cases=10,
        localization=LocalizationConfig(image_size=size, base_filters=16, depth=4),
        tuning=TuningConfig(
            image_size=size, base_filters=16, depth=4, patch_levels=(2, 3, 4),
            aspp_filters=32, aspp_rates=(2, 4, 6),
        ),
        prior=PriorConfig(margin=2, crf=CRFParams(gaussian_sxy=1.0, bilateral_sxy=2.5)),
        train=TrainConfig(learning_rate=1e-3, batch_size=8, epochs=20, early_stopping_patience=4),
        self_training=SelfTrainingConfig(iterations=2, fine_tune_epochs=3),
        experiments=ExperimentConfig(test_phantoms=4),
        # the realistic mixture (PhantomConfig()): the book ships networks trained on it
        # the lesion stage of the "Finding lesions" ladder's top rung (`closer_view`): on `demo`
        # the paper's lesion stage found no lesion (global Dice 0.08 ± 0.13, 3 seeds)
        lesion=LesionConfig(image_size=128, base_filters=8, loss_scheme="uniform",
                            positive_weight=10.0, dice_over="batch", positive_share=0.5,
                            empty_slice_fraction=1.0, prior_folds=1,
                            synthesis=SynthesisConfig(share=0.9, validation=True)),
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
