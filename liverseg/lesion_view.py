"""What the lesion networks see: the volume inside the liver (the second stage of the cascade).

The paper runs "the same cascade" for lesions (its Fig. 18) without saying where the lesion
networks look; liverseg follows Christ et al.'s two-stage reading: the lesion networks work
inside the liver. :func:`lesion_view` sets every voxel outside the liver region (the liver
grown by ``InferenceConfig.liver_margin`` voxels) to the window's floor and, with
``InferenceConfig.lesion_view = "liver_box"`` (the default), crops the volume to that region's
bounding box, so that every slice the lesion networks take is the liver, resized to the
network's input: a 20-pixel lesion of a 512-pixel slice whose liver spans 180 pixels is
56 pixels at a 512 input, and the lesion of a 64 × 64 slice grows about threefold.
``"full"`` keeps the whole slice (masked) instead: the lesions stay as small as in the scan.

Training cuts the reference liver's view (:mod:`liverseg.train.slices`), inference the
predicted liver's (:mod:`liverseg.inference.volume`); :meth:`LesionView.paste` puts what the
networks found back into the volume.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from liverseg.config import LESION_VIEWS
from liverseg.errors import InvalidDataError, ShapeError
from liverseg.preprocess import liver_region, mask_outside

HU_FLOOR = -1000.0  # what the HU copy (the CRF's input) holds outside the liver region


@dataclasses.dataclass
class LesionView:
    """The lesion networks' part of a ``(z, y, x)`` volume; all arrays the shape of ``box``."""

    image: np.ndarray  # float32 preprocessed, the window's floor outside ``region``
    hu: np.ndarray  # float32 HU, ``HU_FLOOR`` outside ``region``
    region: np.ndarray  # bool, the liver grown by the margin
    box: tuple[slice, slice, slice]  # where the view lies in the volume
    shape: tuple[int, int, int]  # the volume's shape

    def crop(self, volume: np.ndarray) -> np.ndarray:
        """``volume`` (the whole volume's shape) cut to the view's box."""
        return np.asarray(volume)[self.box]

    def paste(self, values: np.ndarray) -> np.ndarray:
        """``values`` (the view's shape) in a volume of the whole shape, zero elsewhere."""
        out = np.zeros(self.shape, np.asarray(values).dtype)
        out[self.box] = values
        return out


def region_box(region: np.ndarray) -> tuple[slice, ...]:
    """The bounding box of a non-empty boolean array, as slices."""
    region = np.asarray(region, bool)
    if not region.any():
        raise InvalidDataError("the liver region is empty: there is no box to crop to")
    box = []
    for axis in range(region.ndim):
        other = tuple(a for a in range(region.ndim) if a != axis)
        present = np.flatnonzero(region.any(axis=other))
        box.append(slice(int(present[0]), int(present[-1]) + 1))
    return tuple(box)


def lesion_view(image: np.ndarray, hu: np.ndarray, liver: np.ndarray, margin: int,
                view: str = "liver_box") -> LesionView:
    """The lesion networks' view of a volume: ``image`` (preprocessed) and ``hu`` masked to
    ``liver`` grown by ``margin`` voxels, cropped to its bounding box for ``view="liver_box"``.

    Raises:
        InvalidDataError: an unknown ``view``, or an empty ``liver`` (nothing to look at).
        ShapeError: the three volumes differ in shape.
    """
    if view not in LESION_VIEWS:
        raise InvalidDataError(f"lesion view must be one of {LESION_VIEWS}, got {view!r}")
    liver = np.asarray(liver, bool)
    if not (np.shape(image) == np.shape(hu) == liver.shape):
        raise ShapeError(f"image {np.shape(image)}, HU {np.shape(hu)} and liver {liver.shape} "
                         "differ in shape")
    if not liver.any():
        raise InvalidDataError("no liver: the lesion networks have nothing to look at")
    region = liver_region(liver, margin)
    box = (region_box(region) if view == "liver_box"
           else tuple(slice(0, n) for n in region.shape))
    image = np.asarray(image)
    floor = float(image.min())  # the window's floor, of the whole volume: a box may not reach it
    region = region[box]
    return LesionView(mask_outside(image[box], region, fill=floor),
                      mask_outside(np.asarray(hu)[box], region, fill=HU_FLOOR), region, box,
                      liver.shape)
