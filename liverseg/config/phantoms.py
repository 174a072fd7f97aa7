"""How the synthetic phantoms are scanned and how varied they are (:class:`PhantomConfig`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Optional

from liverseg.config._base import (APPEARANCE_MODES, PHANTOM_PHASES, SLICE_PROFILES, _Serializable,
                                   _check_range)


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
    (seed, epoch, case); ``appearance_draws`` (``K``, 0: none) renders each *training* phantom of
    the liver stage again ``K`` times in advance (draw ``k`` of (``split.seed``, ``k``, case)), and
    epoch ``e`` learns from draw ``e % (K + 1)`` alone, the phantom as made being draw 0 — each
    patient once an epoch, in a new appearance up to ``K + 1`` epochs (validation and test
    phantoms are never re-drawn). The defaults keep
    the mode off: the mixture and :meth:`classic` are unchanged.

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
    appearance_draws: int = 0

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

    @property
    def draws_appearance(self) -> bool:
        """Whether these settings draw any appearance (the randomized mode or perfusion)."""
        return self.appearance == "randomized" or self.liver_perfusion_hu[1] > 0

    def key(self) -> str:
        """A short hash of the family: the one rule that names its slice folders
        (``appearance_draws`` left out at 0, so folders cut before it existed keep their
        names)."""
        tree = self.to_dict()
        if not self.appearance_draws:
            del tree["appearance_draws"]
        return hashlib.sha1(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:10]

    def _check_appearance(self, name: str) -> None:
        """The appearance settings (issue 17): each a ``(low, high)`` pair within its bounds."""
        if self.appearance not in APPEARANCE_MODES:
            raise ValueError(f"{name}.appearance must be one of {APPEARANCE_MODES}, got {self.appearance!r}")
        draws = self.appearance_draws
        if isinstance(draws, bool) or int(draws) != draws or draws < 0:
            raise ValueError(f"{name}.appearance_draws must be a whole number >= 0, got {draws!r}")
        self.appearance_draws = int(draws)
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
        if self.appearance_draws and not self.draws_appearance:
            raise ValueError(f"{name}.appearance_draws needs appearance='randomized' or a "
                             f"liver_perfusion_hu range above 0: there is nothing to draw")
