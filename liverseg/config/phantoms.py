"""How the synthetic phantoms are scanned and how varied they are (:class:`PhantomConfig`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Optional

from liverseg.config._base import (APPEARANCE_MODES, PHANTOM_PHASES, SLICE_PROFILES, Number, Pair,
                                   Section, setting)
from liverseg.errors import SettingError

_RANGE = Pair(at_least=0)  # a (low, high) range of values >= 0
_SIZES = Pair(above=0)  # a (low, high) range of sizes > 0
#: settings added after slice folders were first named, with the value every scan had before
_KEYED_SINCE = {"appearance_draws": 0, "appearance_share": 1.0, "slices": None,
                "scan_above_liver_mm": (15.0, 60.0), "scan_below_liver_mm": (50.0, 180.0),
                "noise_matrix": None, "left_lobe_thickness": (1.0, 1.0)}


@dataclass
class PhantomConfig(Section):
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
    body's; a clinical 512² scan's pixel is kept within ``in_plane_spacing_mm``) and along z
    (``scan_above_liver_mm`` above the liver's dome, ``scan_below_liver_mm`` below its tip, in
    mm of an average-sized body: a whole abdomen, or the liver alone as in a liver-protocol
    scan, where the liver fills the coronal and sagittal slices top to bottom), the table in
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
    ``vessel_tip_radius_mm``; the left lobe's reach times ``left_lobe_scale`` and its depth and
    height times ``left_lobe_thickness``; a Riedel's lobe in
    ``riedel_probability`` of the livers; the liver scaled to ``liver_volume_l`` litres (``None``:
    as the body's frame makes it, 0.5–2 L) — every lobe alike, so a thicker left lobe at the
    same volume shrinks the right one; a left lobe that adds to the liver needs a larger target
    too (``left_lobe_scale`` 1.2–2.0, ``left_lobe_thickness`` 1.5–2.5 and ``liver_volume_l``
    1.5–3.5 put a fifth of the liver in the patient-left half of its width, the mixture's
    defaults a tenth: "From phantoms to real CT"). ``matrix``: the scan's in-plane pixels
    (``None``: the profile's ``image_size``; :attr:`Profile.phantom_shape`) — the networks take
    slices resized to their input, so a matrix finer than the liver networks' input keeps detail
    for the lesion view, which is cut from the volume before it is resized. ``slices``: the
    scan's slices (``None``: half the profile's ``image_size``) — the body's height is fixed in
    millimetres, so more slices are thinner ones, and a small lesion is no longer averaged away
    into the one 10–13 mm slice it shares with liver (the profile's 32 slices for a 64 input).
    ``noise_matrix``: the in-plane matrix whose pixel ``noise_hu`` describes (``None``: the
    phantom's own pixel, whatever its size). A scanner reconstructs a 512² matrix; a phantom of
    ``matrix`` 128 stands for that scan averaged over 4 × 4 pixels, whose noise is a quarter:
    the phantom's pixel noise is ``noise_hu × matrix / noise_matrix``. Without it a coarse
    phantom carries a 0.7 mm pixel's noise on a 3 mm pixel.

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
    ``appearance_share`` (randomized mode): the chance that a draw of (seed, epoch, case) is
    randomized; the other draws keep the realistic means and textures, with no bias field and
    no gamma (1, the default: every draw, as SynthSeg; below 1 the training set mixes both).
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

    phases: tuple[str, ...] = setting(PHANTOM_PHASES, items=PHANTOM_PHASES, nonempty=True,
                                      distinct=True)
    phase_weights: tuple[float, ...] = setting((0.1, 0.15, 0.65, 0.1), items=Number(at_least=0))
    noise_hu: tuple[float, float] = setting((8.0, 30.0), pair=_RANGE)
    noise_correlation_mm: Optional[tuple[float, float]] = setting((0.6, 1.2), pair=_RANGE,
                                                                  optional=True)
    psf_mm: tuple[float, float] = setting((0.4, 1.1), pair=_SIZES)
    slice_thickness_mm: tuple[float, ...] = setting(
        (0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0), items=Number(above=0), nonempty=True)
    slice_profile: str = setting("thickness", choices=SLICE_PROFILES)
    in_plane_spacing_mm: tuple[float, float] = setting((0.5, 1.0), pair=_SIZES)
    fov_margin: tuple[float, float] = setting((1.0, 1.5), pair=_SIZES)
    scan_above_liver_mm: tuple[float, float] = setting((15.0, 60.0), pair=_RANGE)
    scan_below_liver_mm: tuple[float, float] = setting((50.0, 180.0), pair=_RANGE)
    table_probability: float = setting(0.9, at_least=0, at_most=1)
    streak_probability: float = setting(0.3, at_least=0, at_most=1)
    streak_hu: tuple[float, float] = setting((10.0, 60.0), pair=_RANGE)
    metal_probability: float = setting(0.05, at_least=0, at_most=1)
    metal_streak_hu: tuple[float, float] = setting((100.0, 400.0), pair=_RANGE)
    # lesions (issue 10, "lesions as in LiTS"; :mod:`liverseg.datasets.synthetic.lesions`)
    healthy_probability: float = setting(0.3, at_least=0, at_most=1)
    lesion_radius_mm: tuple[float, float] = setting((2.5, 50.0), pair=_SIZES)
    lesion_contrast_hu: tuple[float, float] = setting((10.0, 75.0), pair=_RANGE)
    lesion_contrast_normal_hu: Optional[tuple[float, float]] = setting(  # (mean, sd)
        (45.0, 12.0), pair=Pair(at_least=0, order=""), optional=True)
    core_darkening_hu: Optional[tuple[float, float]] = setting((10.0, 25.0), pair=_RANGE,
                                                               optional=True)
    multifocal_probability: float = setting(0.15, at_least=0, at_most=1)
    multifocal_count: tuple[int, int] = setting((15, 80), pair=Pair(above=0, whole=True))
    multifocal_radius_mm: tuple[float, float] = setting((2.5, 10.0), pair=_SIZES)
    multifocal_radius_median_mm: float = setting(4.0, above=0)  # within multifocal_radius_mm
    multifocal_radius_sigma_log: float = setting(0.6, at_least=0)
    multifocal_large_count: tuple[int, int] = setting((1, 5), pair=Pair(at_least=0, whole=True))
    multifocal_large_radius_mm: tuple[float, float] = setting((15.0, 35.0), pair=_SIZES)
    hyperdense_probability: float = setting(0.1, at_least=0, at_most=1)
    hyperdense_hu: tuple[float, float] = setting((10.0, 40.0), pair=_RANGE)
    rim_probability: float = setting(0.15, at_least=0, at_most=1)
    rim_hu: tuple[float, float] = setting((20.0, 60.0), pair=_RANGE)
    border_blur_mm: tuple[float, float] = setting((0.0, 3.0), pair=_RANGE)
    # vessels and liver shape (issue 10, "anatomical variety"; :mod:`liverseg.datasets.synthetic.liver`)
    vessel_generations: int = setting(3, whole=True, at_least=0, at_most=5)
    vessel_tip_radius_mm: tuple[float, float] = setting((1.0, 1.5), pair=_SIZES)
    left_lobe_scale: tuple[float, float] = setting((0.7, 1.5), pair=_SIZES)
    left_lobe_thickness: tuple[float, float] = setting((1.0, 1.0), pair=_SIZES)
    riedel_probability: float = setting(0.1, at_least=0, at_most=1)
    liver_volume_l: Optional[tuple[float, float]] = setting((1.0, 2.5), pair=_SIZES, optional=True)
    # the scan's matrix (issue 16, "lesions that are found")
    matrix: Optional[int] = setting(None, whole=True, at_least=8, optional=True)
    slices: Optional[int] = setting(None, whole=True, at_least=4, optional=True)
    noise_matrix: Optional[int] = setting(None, whole=True, at_least=8, optional=True)
    # appearance beyond realism (issue 17; :mod:`liverseg.datasets.synthetic.appearance`)
    appearance: str = setting("realistic", choices=APPEARANCE_MODES)
    appearance_tissue_hu: tuple[float, float] = setting((-100.0, 200.0),
                                                        pair=Pair(at_least=-1000, at_most=3000))
    appearance_bone_hu: tuple[float, float] = setting((150.0, 1200.0),
                                                      pair=Pair(at_least=-1000, at_most=3000))
    appearance_texture_hu: tuple[float, float] = setting((0.0, 30.0), pair=Pair(at_least=0, at_most=500))
    appearance_bias: tuple[float, float] = setting((0.0, 0.05), pair=Pair(at_least=0, at_most=0.5))
    appearance_gamma: tuple[float, float] = setting((0.6, 1.6), pair=Pair(at_least=0.1, at_most=10))
    appearance_gamma_window_hu: tuple[float, float] = setting(
        (-100.0, 200.0), pair=Pair(at_least=-1024, at_most=3071, order="<"))
    liver_perfusion_hu: tuple[float, float] = setting((0.0, 0.0), pair=Pair(at_least=0, at_most=500))
    appearance_draws: int = setting(0, whole=True, at_least=0)
    appearance_share: float = setting(1.0, at_least=0, at_most=1)

    _section = "phantoms"

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

    def _check_across(self):
        if len(self.phase_weights) != len(self.phases) or abs(sum(self.phase_weights) - 1) > 1e-6:
            raise SettingError(f"phantoms.phase_weights must be one weight per phase of "
                               f"phantoms.phases ({len(self.phases)}) that sum to 1, "
                               f"got {self.phase_weights}")
        if self.multifocal_count[1] + self.multifocal_large_count[1] > 200:
            raise SettingError(f"phantoms.multifocal_count + multifocal_large_count allow at most "
                               f"200 lesions, got {self.multifocal_count} + {self.multifocal_large_count}")
        low, high = self.multifocal_radius_mm
        if not low <= self.multifocal_radius_median_mm <= high:
            raise SettingError(f"phantoms.multifocal_radius_median_mm must lie in "
                               f"multifocal_radius_mm {self.multifocal_radius_mm}, "
                               f"got {self.multifocal_radius_median_mm}")
        if self.appearance_share != 1.0 and self.appearance != "randomized":
            raise SettingError("phantoms.appearance_share needs appearance='randomized': it is "
                               "the share of the draws that are randomized")
        if self.appearance_draws and not self.draws_appearance:
            raise SettingError("phantoms.appearance_draws needs appearance='randomized' or a "
                               "liver_perfusion_hu range above 0: there is nothing to draw")

    @property
    def draws_appearance(self) -> bool:
        """Whether these settings draw any appearance (the randomized mode or perfusion)."""
        return self.appearance == "randomized" or self.liver_perfusion_hu[1] > 0

    def key(self) -> str:
        """A short hash of the family: the one rule that names its slice folders (a setting
        added later is left out at its value of before (:data:`_KEYED_SINCE`), so folders cut
        before it existed keep their names)."""
        tree = self.to_dict()
        for name, before in _KEYED_SINCE.items():
            if getattr(self, name) == before:
                del tree[name]
        return hashlib.sha1(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:10]
