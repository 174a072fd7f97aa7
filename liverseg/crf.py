"""Fully connected CRF refinement of a foreground probability map (paper section 3.9).

The localisation network's map is blurry at the liver's border (paper Fig. 7) and may
leave small false positives; a dense CRF (Krähenbühl & Koltun, NeurIPS 2011) pulls the
border onto the CT's intensity edges and cleans isolated specks. Its energy has a unary
term, ``-log p``, and two pairwise Potts terms between every pair of pixels ``i, j``:

* a Gaussian (smoothness) kernel ``gaussian_compat * exp(-|p_i - p_j|^2 / 2 gaussian_sxy^2)``
  that removes specks smaller than a few pixels;
* a bilateral (appearance) kernel
  ``bilateral_compat * exp(-|p_i - p_j|^2 / 2 bilateral_sxy^2
  - |I_i - I_j|^2 / 2 bilateral_srgb^2)``
  that gives nearby pixels of similar grey level the same label, so the border follows
  the intensity edge.

The CT slice enters as one grey channel: HU are clipped to ``window`` and rescaled to
0..255, and ``bilateral_srgb`` is a grey-level standard deviation in those units. The
paper gives none of its CRF settings; the defaults below are ours (see :class:`CRFParams`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from liverseg.config._base import Pair, Section, setting
from liverseg.errors import InvalidDataError, ShapeError


@dataclass(frozen=True)
class CRFParams(Section):
    """Dense-CRF settings. Distances are in pixels, intensities in 0..255 window grey levels.

    Defaults (the paper gives none) are chosen for 0.6-0.9 mm pixels and the liver window:

    * ``iterations=5``: mean-field inference converges in about five steps.
    * ``gaussian_sxy=3, gaussian_compat=3``: the customary smoothness kernel of
      Krähenbühl & Koltun; it only removes specks of a few pixels.
    * ``bilateral_sxy=20``: about 1.5 cm, the reach over which the liver is homogeneous
      enough to vote on a pixel's label, well under the organ's size.
    * ``bilateral_srgb=10``: with the (-100, 200) HU window one grey level is 1.18 HU, so
      10 levels are about 12 HU: pixels within the image noise (10-20 HU, less after the
      median filter) attract each other; liver (90-130 HU) and fat or air do not at all,
      liver and muscle or bowel (40-60 HU, 40-70 levels away) only weakly.
    * ``bilateral_compat=5``: strong enough to move a blurred border by a few pixels onto
      the edge, weak enough that a confident prediction (p > 0.99) is not overruled.
    * ``window=(-100, 200)``: the paper's HU window (section 3.2). ``None`` rescales the
      slice's own min..max instead (for an already-normalised image).
    * ``clip=1e-5``: probabilities are clipped to [clip, 1] before ``-log``.
    * ``engine="pydensecrf"``: who filters the kernels: pydensecrf's permutohedral lattice on
      the CPU, slice by slice (the default), or ``"grid"``, :mod:`liverseg.crf_grid`'s
      separable blur and bilateral grid as array operations on a stack of slices, on the
      Keras backend's device (for a GPU; on a CPU it is 3-6 times slower than pydensecrf).
      The two approximate the same Gaussians, so their marginals differ a little.
    """

    ENGINES = ("pydensecrf", "grid")

    iterations: int = setting(5, whole=True, at_least=1)
    gaussian_sxy: float = setting(3.0, above=0)
    gaussian_compat: float = setting(3.0, at_least=0)
    bilateral_sxy: float = setting(20.0, above=0)
    bilateral_srgb: float = setting(10.0, above=0)
    bilateral_compat: float = setting(5.0, at_least=0)
    window: tuple[float, float] | None = setting((-100.0, 200.0), pair=Pair(order="<"), optional=True)
    clip: float = setting(1e-5, above=0, below=0.5)
    engine: str = setting("pydensecrf", choices=ENGINES)

    _section = "prior.crf"


def dense_crf(
    probability: np.ndarray,
    image: np.ndarray,
    params: CRFParams | None = None,
    **overrides,
) -> np.ndarray:
    """Refine a foreground probability map of one slice with a dense CRF.

    Args:
        probability: ``(H, W)`` foreground probability in [0, 1].
        image: the ``(H, W)`` CT slice (HU, or any intensity with ``window=None``).
        params: a :class:`CRFParams`; keyword ``overrides`` replace single fields,
            e.g. ``dense_crf(p, ct, iterations=10)``.

    Returns:
        ``(H, W)`` float32 refined foreground probability (the CRF's marginal).
    """
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import (
        create_pairwise_bilateral,
        create_pairwise_gaussian,
        unary_from_softmax,
    )

    params = dataclasses.replace(params or CRFParams(), **overrides)
    probability, image = check_crf_inputs(probability, image)
    height, width = probability.shape

    softmax = np.stack([1.0 - probability, probability])
    crf = dcrf.DenseCRF2D(width, height, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(softmax, clip=params.clip)))
    crf.addPairwiseEnergy(
        np.ascontiguousarray(create_pairwise_gaussian((params.gaussian_sxy,) * 2, (height, width))),
        compat=float(params.gaussian_compat),
    )
    bilateral = create_pairwise_bilateral(
        (params.bilateral_sxy,) * 2, (params.bilateral_srgb,), grey_levels(image, params.window)
    )
    crf.addPairwiseEnergy(np.ascontiguousarray(bilateral), compat=float(params.bilateral_compat))
    marginals = np.asarray(crf.inference(int(params.iterations)), dtype=np.float32)
    return marginals[1].reshape(height, width)


def grey_levels(image: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """The slice clipped to ``window`` (or its own range) and rescaled to 0..255, float32."""
    low, high = window if window is not None else (float(image.min()), float(image.max()))
    if high <= low:
        return np.zeros(image.shape, np.float32)
    return ((np.clip(image, low, high) - low) * (255.0 / (high - low))).astype(np.float32)


def check_crf_inputs(probability, image) -> tuple[np.ndarray, np.ndarray]:
    """``(probability, image)`` as float64 arrays, the probability clipped to [0, 1].

    Raises :class:`ShapeError` unless both are one ``(H, W)`` slice of the same shape, and
    :class:`InvalidDataError` for NaN or infinite values or a probability outside [0, 1].
    """
    probability = np.asarray(probability, dtype=np.float64)
    image = np.asarray(image, dtype=np.float64)
    if probability.ndim != 2:
        raise ShapeError(f"CRF needs one (H, W) probability map, got shape {probability.shape}")
    if image.shape != probability.shape:
        raise ShapeError(
            f"CRF image shape {image.shape} differs from probability shape {probability.shape}"
        )
    if not np.isfinite(probability).all():
        raise InvalidDataError("CRF probability map has NaN or infinite values")
    if not np.isfinite(image).all():
        raise InvalidDataError("CRF image has NaN or infinite values")
    if probability.min() < -1e-6 or probability.max() > 1 + 1e-6:
        raise InvalidDataError(
            "CRF probability must be in [0, 1], "
            f"got {probability.min():.3g}..{probability.max():.3g}"
        )
    return np.clip(probability, 0.0, 1.0), image
