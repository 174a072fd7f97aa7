"""From layers to a tissue map, and from a tissue map to a CT image in HU."""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Mapping

import numpy as np
from scipy import ndimage

from .shapes import Grid, Layer, SmoothField
from .tissues import ENHANCING, TEXTURE_HU, Tissue, lookup_table


Shading = list  # of (window, mask, HU offsets inside the mask, tissue) from shaded layers


def paint(grid: Grid, layers: Iterable[Layer]) -> tuple[np.ndarray, Shading]:
    """Paint ``layers`` in order onto ``grid``: uint8 tissue ids, and the shaded layers' offsets."""
    tissues = np.zeros(grid.shape, np.uint8)
    shading = []
    for layer in layers:
        window = grid.window(layer.box)
        if window is None:
            continue
        coords = grid.coords(window)
        target = tissues[window]
        shape = target.shape
        inside = np.broadcast_to(layer.inside(coords), shape)
        if layer.into is not None:
            allowed = np.zeros(256, bool)
            allowed[list(layer.into)] = True
            inside = inside & allowed[target]
        if not inside.any():
            continue
        target[inside] = layer.tissue
        if layer.shade is not None:
            offsets = np.broadcast_to(layer.shade(coords), shape)[inside]
            shading.append((window, inside, offsets, layer.tissue))
    return tissues, shading


def unit_noise(rng: np.random.Generator, shape, sigma) -> np.ndarray:
    """Gaussian noise smoothed by ``sigma`` voxels and rescaled to unit variance."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    sigma = np.broadcast_to(np.asarray(sigma, float), (len(shape),))
    if not np.any(sigma > 0):
        return noise
    ndimage.gaussian_filter(noise, sigma, output=noise, mode="wrap")
    energy = 1.0
    for s in sigma:  # variance left after filtering = product of the kernels' energies
        impulse = np.zeros(int(8 * s) * 2 + 1)
        impulse[impulse.size // 2] = 1
        energy *= np.sum(ndimage.gaussian_filter1d(impulse, s) ** 2) if s > 0 else 1.0
    noise /= np.float32(np.sqrt(energy))
    return noise


def render_hu(
    tissues: np.ndarray,
    shading: Shading,
    grid: Grid,
    spacing: tuple[float, float, float],
    hu: Mapping[int, float],
    contrast: SmoothField,
    contrast_hu: float,
    rng: np.random.Generator,
    noise_hu: float,
    psf_mm: float,
    texture_mm: float = 1.2,
    slice_sigma: float = 0.45,
    noise_grain: tuple[float, float, float] = (0.0, 0.6, 0.6),
    artefacts: Callable[[np.ndarray], None] | None = None,
    texture_hu: Mapping[int, float] | None = None,
) -> np.ndarray:
    """The CT image: tissue means + texture + smooth enhancement variation, blurred by the
    scanner (partial volume), plus quantum noise; float32 rounded to whole HU, as stored CT (int16) reads.

    ``slice_sigma``: the slice profile along z (Gaussian sigma, voxels; the default, about one
    slice spacing wide, is the classic phantoms'); ``noise_grain``: the Gaussian (voxels per
    axis) that correlates the noise; ``artefacts(image)`` adds streaks or metal in place, after
    the blur and before the noise (:mod:`.scanner`); ``texture_hu``: the texture's sd (HU) per
    tissue (``None``: :data:`.tissues.TEXTURE_HU`); lesions take the liver's.
    """
    spacing = np.asarray(spacing, float)
    image = lookup_table(hu)[tissues]
    for window, mask, offsets, tissue in shading:
        region = image[window]
        region[mask] += np.where(tissues[window][mask] == tissue, offsets, 0)  # unless painted over since
    texture_hu = lookup_table(TEXTURE_HU if texture_hu is None else texture_hu)
    texture_hu[Tissue.LESION :] = texture_hu[Tissue.LIVER]
    texture = unit_noise(rng, tissues.shape, texture_mm / spacing)
    image += texture * texture_hu[tissues]
    image += np.float32(600) * ((texture > 2.3) & (tissues == Tissue.LUNG))  # lung vessels
    del texture
    enhancing = lookup_table({t: 1.0 for t in ENHANCING})[tissues]
    image += enhancing * (np.float32(contrast_hu) * contrast(grid.coords()))
    del enhancing
    # partial volume: the slice profile along z, plus the in-plane PSF
    blur = np.sqrt((psf_mm / spacing) ** 2 + 0.4**2)
    blur[0] = slice_sigma
    ndimage.gaussian_filter(image, blur, output=image, mode="nearest")
    if artefacts is not None:
        artefacts(image)
    image += np.float32(noise_hu) * unit_noise(rng, tissues.shape, noise_grain)
    np.clip(image, -1024, 3071, out=image)
    return np.rint(image, out=image)


@dataclasses.dataclass
class Scan:
    """Everything :func:`render_hu` takes for one phantom besides the tissues' mean HU and the
    random stream: kept with the phantom so that its image can be rendered again with another
    appearance (:mod:`.appearance`) without painting the anatomy anew."""

    tissues: np.ndarray
    shading: Shading
    grid: Grid
    spacing: tuple[float, float, float]
    contrast: SmoothField
    contrast_hu: float
    noise_hu: float
    psf_mm: float
    slice_sigma: float
    noise_grain: tuple[float, float, float]
    artefacts: Callable[[np.ndarray], None] | None = None

    def render(
        self,
        hu: Mapping[int, float],
        rng: np.random.Generator,
        texture_hu: Mapping[int, float] | None = None,
        shading: Shading = (),
        after_blur: Callable[[np.ndarray], None] | None = None,
    ) -> np.ndarray:
        """The image (:func:`render_hu`) for ``hu``, drawing texture and noise from ``rng``;
        ``shading`` adds offsets to the phantom's own, ``after_blur(image)`` changes the blurred
        image in place after the artefacts and before the noise."""
        artefacts = self.artefacts
        if after_blur is not None:
            def artefacts(image, own=self.artefacts):
                if own is not None:
                    own(image)
                after_blur(image)
        return render_hu(
            self.tissues, list(self.shading) + list(shading), self.grid, self.spacing, hu, self.contrast,
            self.contrast_hu, rng, self.noise_hu, psf_mm=self.psf_mm, slice_sigma=self.slice_sigma,
            noise_grain=self.noise_grain, artefacts=artefacts, texture_hu=texture_hu,
        )
