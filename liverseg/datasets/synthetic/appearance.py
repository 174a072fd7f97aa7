"""Appearance beyond realism (issue 17): tissue HU and texture drawn from wide ranges, a bias
field, a gamma and patchy liver enhancement, per case and anew per epoch.

SynthSeg (Billot et al., MedIA 2023) trains on images in which every label gets a random mean
and spread, under a bias field and random blur, so that the network can only learn shapes; it
then segments real scans of contrasts it never saw. Here, with
``PhantomConfig(appearance="randomized")``:

- each soft tissue (:data:`SOFT_TISSUES`) draws a mean HU uniform in
  ``appearance_tissue_hu``, bone and cortex one in ``appearance_bone_hu``; air, lung, gas and
  the table keep the bands of :mod:`.tissues` (they lie far outside the paper's [−100, 200]
  window anyway). Lesion ``k`` stays ``lesion.contrast`` HU below the new liver, as drawn by
  :mod:`.lesions`, so that lesions stay findable;
- each of those tissues draws a texture sd uniform in ``appearance_texture_hu`` (HU; lung and
  the rest keep :data:`.tissues.TEXTURE_HU`); lesions take the liver's;
- a bias field ``f`` (a smooth field of wavelengths 150–400 mm, squashed by ``tanh`` into
  [−1, 1]) multiplies the attenuation: ``HU → (HU + 1000)·(1 + b·f) − 1000`` with ``b``
  uniform in ``appearance_bias`` — a gain and an offset in HU at once; air stays −1000;
- a gamma ``γ`` (log-uniform in ``appearance_gamma``) maps HU inside the window
  ``[lo, hi] = appearance_gamma_window_hu``: ``lo + (hi − lo)·((HU − lo)/(hi − lo))^γ``, and
  leaves HU outside it alone (continuous and monotone).

Where in the scanner: the tissue means, the texture and the liver's perfusion make the
object; the scanner blurs it (partial volume, slice profile) and adds its streaks; the bias
field and the gamma then act on the blurred image, and the quantum noise comes last. That is
SynthSeg's order (blur, then bias, then the intensity transform) with the CT noise kept at the
level the scanner settings ask (a gamma after the noise would rescale it). The label comes from
the tissue map, never from the image, so it is exact whatever the appearance.

``liver_perfusion_hu`` (in either mode): patchy, perfusion-like enhancement of the liver
parenchyma (not its vessels or lesions): ``A·tanh(2·g)`` HU with ``g`` a smooth field of
wavelengths 30–90 mm and ``A`` uniform in that range (either sign: ``tanh`` swings both ways).

Every draw comes from streams of its own (:func:`appearance_stream`; at generation, the seed's
seventh child), so the anatomy, the lesions and the label of a seed never move.
:func:`randomize_appearance` re-renders a phantom with the appearance of (seed, epoch, case);
:func:`with_appearance_draws` makes ``appearance_draws`` such renderings of each training
phantom in advance, and training reads one per epoch
(:func:`liverseg.train.cascade.epoch_sampler`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING

import numpy as np

from liverseg.config import PhantomConfig
from liverseg.datasets.base import Case

from .shapes import Coords, Grid, SmoothField
from .tissues import TEXTURE_HU, Tissue

if TYPE_CHECKING:
    from .lesions import Lesion
    from .phantom import Phantom
    from .render import Scan

#: tissues whose mean HU is drawn from ``appearance_tissue_hu`` in the randomized mode.
SOFT_TISSUES = (
    Tissue.SKIN, Tissue.FAT, Tissue.VISCERAL_FAT, Tissue.MUSCLE, Tissue.HEART, Tissue.BLOOD, Tissue.LIVER,
    Tissue.HEPATIC_VESSEL, Tissue.SPLEEN, Tissue.KIDNEY, Tissue.PANCREAS, Tissue.BOWEL_WALL, Tissue.FLUID,
    Tissue.DISC,
)
#: tissues whose mean HU is drawn from ``appearance_bone_hu``.
BONE_TISSUES = (Tissue.BONE, Tissue.CORTEX)
#: what the randomized mode redraws; the rest (air, lung, gas, table) keeps its realistic band.
RANDOMIZED_TISSUES = SOFT_TISSUES + BONE_TISSUES

BIAS_WAVELENGTH_MM = (150.0, 400.0)
PERFUSION_WAVELENGTH_MM = (30.0, 90.0)


@dataclasses.dataclass
class Appearance:
    """One case's drawn appearance.

    Attributes:
        hu: tissue id → mean HU (lesion ``k`` at ``Tissue.LESION + k``), every tissue of the case.
        texture_hu: tissue id → texture sd (HU); ``None``: :data:`.tissues.TEXTURE_HU`.
        bias: ``b``, the bias field's amplitude as a fraction of the attenuation (0: none).
        bias_field: the smooth field behind it (``None`` in the realistic mode).
        gamma: the exponent of the intensity transform (1: none).
        gamma_window_hu: ``(lo, hi)`` HU where the gamma acts.
        perfusion_hu: ``A``, the amplitude (HU) of the liver's patchy enhancement (0: none).
        perfusion_field: the smooth field behind it (``None`` when ``A`` is 0).
    """

    hu: dict[int, float]
    texture_hu: dict[int, float] | None = None
    bias: float = 0.0
    bias_field: SmoothField | None = None
    gamma: float = 1.0
    gamma_window_hu: tuple[float, float] = (-100.0, 200.0)
    perfusion_hu: float = 0.0
    perfusion_field: SmoothField | None = None

    def bias_factor(self, coords: Coords) -> np.ndarray:
        """``1 + b·tanh(f)`` at ``coords`` (float32, broadcast over the grid; within ``1 ± b``)."""
        if self.bias_field is None or self.bias == 0:
            return np.ones(np.broadcast_shapes(coords.Z.shape, coords.Y.shape, coords.X.shape), np.float32)
        return np.float32(1) + np.float32(self.bias) * np.tanh(self.bias_field(coords))

    def perfusion(self, coords: Coords) -> np.ndarray:
        """The liver's perfusion offsets (HU) at ``coords``: ``A·tanh(2·g)``, within ``±A``."""
        if self.perfusion_field is None or self.perfusion_hu == 0:
            return np.zeros(np.broadcast_shapes(coords.Z.shape, coords.Y.shape, coords.X.shape), np.float32)
        return np.float32(self.perfusion_hu) * np.tanh(np.float32(2) * self.perfusion_field(coords))

    def apply_intensity(self, image: np.ndarray, grid: Grid) -> None:
        """The bias field, then the gamma, on ``image`` (HU, on ``grid``) in place."""
        if self.bias_field is not None and self.bias != 0:
            image += np.float32(1000)
            image *= self.bias_factor(grid.coords())
            image -= np.float32(1000)
        if self.gamma != 1.0:
            image[...] = gamma_transform(image, self.gamma, self.gamma_window_hu)

    @property
    def changes_intensity(self) -> bool:
        return (self.bias_field is not None and self.bias != 0) or self.gamma != 1.0


def gamma_transform(hu: np.ndarray, gamma: float, window: tuple[float, float]) -> np.ndarray:
    """``lo + (hi − lo)·t^γ`` with ``t = (hu − lo)/(hi − lo)`` inside ``window = (lo, hi)``;
    ``hu`` unchanged outside. Monotone and continuous; float32 like ``hu``."""
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    low, high = (float(v) for v in window)
    if not low < high:
        raise ValueError(f"the gamma window must be (low, high) with low < high, got {window}")
    hu = np.asarray(hu, np.float32)
    t = (hu - np.float32(low)) / np.float32(high - low)
    inside = (t > 0) & (t < 1)
    mapped = np.float32(low) + np.float32(high - low) * np.power(np.clip(t, 0, 1), np.float32(gamma))
    return np.where(inside, mapped, hu).astype(np.float32, copy=False)


def draw_appearance(
    seed: np.random.SeedSequence,
    config: PhantomConfig,
    hu: dict[int, float],
    lesions: list[Lesion],
) -> Appearance:
    """The appearance of one case from the stream ``seed``.

    Args:
        seed: the case's appearance stream (:func:`appearance_stream`, or the phantom's own);
            split in three, for the tissues (bias, gamma), the perfusion and whether the
            draw is randomized at all (``appearance_share``), so each lever drawn alone leaves
            the others' draws where they were.
        config: the ``appearance*`` and ``liver_perfusion_hu`` settings.
        hu: the case's realistic means (tissue id → HU): kept for the tissues the mode does
            not redraw, and all of them in the realistic mode.
        lesions: the case's lesions, in tissue order (their ``contrast`` to the liver is kept).

    Returns:
        an :class:`Appearance`. The number of draws does not depend on which tissues the case
        holds, so the same stream gives the same tissue means to every case.
    """
    # a third child for the share: the first two are those of before it existed
    tissue_seed, perfusion_seed, share_seed = seed.spawn(3)
    hu = {int(t): float(v) for t, v in hu.items() if int(t) < Tissue.LESION}
    appearance = Appearance(hu, gamma_window_hu=tuple(float(v) for v in config.appearance_gamma_window_hu))
    if config.appearance == "randomized" and _randomized(share_seed, config.appearance_share):
        rng = np.random.default_rng(tissue_seed)
        for tissue in RANDOMIZED_TISSUES:
            band = config.appearance_bone_hu if tissue in BONE_TISSUES else config.appearance_tissue_hu
            hu[int(tissue)] = float(rng.uniform(*band))
        appearance.texture_hu = {int(t): float(v) for t, v in TEXTURE_HU.items()}
        for tissue in RANDOMIZED_TISSUES:
            appearance.texture_hu[int(tissue)] = float(rng.uniform(*config.appearance_texture_hu))
        appearance.bias = float(rng.uniform(*config.appearance_bias))
        appearance.bias_field = SmoothField(rng, BIAS_WAVELENGTH_MM, waves=4)
        low, high = np.log(config.appearance_gamma)
        appearance.gamma = float(np.exp(rng.uniform(low, high)))
    if config.liver_perfusion_hu[1] > 0:
        rng = np.random.default_rng(perfusion_seed)
        appearance.perfusion_hu = float(rng.uniform(*config.liver_perfusion_hu))
        appearance.perfusion_field = SmoothField(rng, PERFUSION_WAVELENGTH_MM, waves=8)
    for k, lesion in enumerate(lesions):
        hu[int(Tissue.LESION) + k] = hu[int(Tissue.LIVER)] - lesion.contrast
    return appearance


def _randomized(seed: np.random.SeedSequence, share: float) -> bool:
    """Whether a draw is randomized, at the chance ``share`` (always at 1, as before it existed)."""
    return share >= 1.0 or np.random.default_rng(seed).random() < share


def perfusion_shading(appearance: Appearance, tissues: np.ndarray, grid: Grid) -> list:
    """The liver's perfusion as a shading entry of :func:`.render.paint` (empty when none)."""
    if appearance.perfusion_field is None or appearance.perfusion_hu == 0:
        return []
    window = (slice(None),) * 3
    mask = tissues == Tissue.LIVER
    if not mask.any():
        return []
    offsets = np.broadcast_to(appearance.perfusion(grid.coords(window)), tissues.shape)[mask]
    return [(window, mask, offsets, Tissue.LIVER)]


def render_with(scan: Scan, appearance: Appearance, rng: np.random.Generator) -> np.ndarray:
    """The image of ``scan`` (:class:`.render.Scan`) with ``appearance``; texture and noise
    drawn from ``rng``."""
    after_blur = None
    if appearance.changes_intensity:
        def after_blur(image):
            appearance.apply_intensity(image, scan.grid)
    return scan.render(appearance.hu, rng, texture_hu=appearance.texture_hu,
                       shading=perfusion_shading(appearance, scan.tissues, scan.grid), after_blur=after_blur)


def _whole(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return int(value)


def appearance_stream(seed: int, epoch: int, case_id: str) -> np.random.SeedSequence:
    """The random stream of a case's appearance at ``epoch`` of a run of ``seed``.

    ``case_id`` (a string, e.g. ``"phantom-0-3"``) enters as the first 8 bytes of its SHA-256,
    so the stream is the same in every process and on every machine (unlike ``hash``).

    Raises:
        ValueError: ``seed`` or ``epoch`` not a whole number >= 0, or ``case_id`` not a
            non-empty string.
    """
    seed, epoch = _whole("seed", seed), _whole("epoch", epoch)
    if not isinstance(case_id, str) or not case_id:
        raise ValueError(f"case_id must be a non-empty string, got {case_id!r}")
    case = int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:8], "little")
    return np.random.SeedSequence([17, seed, epoch, case])


def randomize_appearance(phantom: Phantom, seed: int, epoch: int, config: PhantomConfig) -> Phantom:
    """``phantom`` rendered again with the appearance of (``seed``, ``epoch``, its case id).

    The anatomy, the lesions, the tissue map and the label are ``phantom``'s (the same
    arrays); the tissue means, textures, bias field, gamma and liver perfusion are drawn from
    :func:`appearance_stream` as ``config`` asks (:func:`draw_appearance`), and so are the
    texture's and the noise's grain, at the phantom's noise level, blur and artefacts. The same
    arguments give the same image, bit for bit; another epoch, seed or case another draw.

    Args:
        phantom: a :class:`.phantom.Phantom` from :func:`.phantom.make_phantom` (it keeps the
            :class:`.render.Scan` needed to render again), of ``(z, y, x)`` voxels.
        seed: the run's seed, a whole number >= 0.
        epoch: the training epoch, a whole number >= 0.
        config: the ``appearance*`` and ``liver_perfusion_hu`` settings; anything else in it is
            ignored (the scanner and the anatomy are the phantom's).

    Returns:
        a new :class:`.phantom.Phantom`: ``case.image`` float32 whole HU of the phantom's shape
        and spacing, ``case.label`` and ``tissues`` the phantom's own, ``hu`` and
        ``appearance`` the new draw.

    Raises:
        ValueError: a phantom without its scan, ``config`` asking for no appearance draw
            (``appearance="realistic"`` and ``liver_perfusion_hu`` of (0, 0)), or a bad
            ``seed`` / ``epoch``.
    """
    if not isinstance(config, PhantomConfig):
        raise ValueError(f"config must be a PhantomConfig, got {type(config).__name__}")
    if not config.draws_appearance:
        raise ValueError("config draws no appearance: set appearance='randomized' or a liver_perfusion_hu "
                         "range above 0")
    scan = getattr(phantom, "scan", None)
    if scan is None:
        raise ValueError("phantom has no scan to render again; make it with make_phantom")
    stream = appearance_stream(seed, epoch, phantom.case.case_id)
    draw_seed, render_seed = stream.spawn(2)
    appearance = draw_appearance(draw_seed, config, phantom.hu, phantom.lesions)
    image = render_with(scan, appearance, np.random.default_rng(render_seed))
    volume = dataclasses.replace(phantom.case.image, array=image)
    case = Case(phantom.case.case_id, volume, phantom.case.label)
    return dataclasses.replace(phantom, case=case, hu=dict(appearance.hu), appearance=appearance)


def with_appearance_draws(cases: list, seed: int, shape: tuple[int, int, int],
                          config: PhantomConfig) -> list:
    """``cases`` (phantoms of :func:`.phantom.make_case`, at ``shape`` and ``config``) followed
    by ``config.appearance_draws`` renderings of each: draw ``k`` is :func:`randomize_appearance`
    ``(phantom, seed, k, config)`` with the case id ``{case_id}~synthetic{k}``
    (:data:`liverseg.lesion_synthesis.COPY_MARK`: a copy stays its patient's, in its fold, and
    :func:`liverseg.lesion_synthesis.epoch_rows` reads one draw per epoch). The label is the
    phantom's own. With ``appearance_draws`` 0, ``cases``.

    Raises:
        ValueError: a case that is not a phantom (its id is not ``phantom-…``), or whose phantom
            regenerated at ``shape`` and ``config`` has another label (other settings).
    """
    from liverseg.lesion_synthesis import COPY_MARK

    from .dataset import phantom_seed
    from .phantom import make_phantom

    cases = list(cases)
    if not config.appearance_draws:
        return cases
    draws = []
    for case in cases:
        phantom = make_phantom(phantom_seed(case.case_id), shape=shape, config=config)
        if case.label is not None and not np.array_equal(phantom.case.label, case.label):
            raise ValueError(f"{case.case_id}: the phantom made again at {shape} with these "
                             "phantoms settings is another patient; pass the settings it was made with")
        for k in range(1, config.appearance_draws + 1):
            drawn = randomize_appearance(phantom, seed, k, config).case
            drawn.case_id = f"{case.case_id}{COPY_MARK}{k}"
            draws.append((k, drawn))
    return cases + [case for _, case in sorted(draws, key=lambda pair: pair[0])]
