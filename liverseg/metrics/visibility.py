"""How visible each reference lesion is: its contrast against the liver's own texture.

A detection recall means little without the lesions it counts. A lesion of a few voxels whose
mean differs from its liver by less than the liver's texture, vessels and noise move the mean
of any region its size, cannot be told from the liver by any detector at a useful precision.
:func:`lesion_visibility` gives every 3D lesion component a matched-footprint z: the mean of
the image over the lesion's own footprint, against the means of that footprint placed
everywhere else it fits inside the liver (their median and sd, so that texture, vessels and
noise grain all count). ``z`` > 0: darker than the liver (hypodense); a |z| below about 3
is inside what the liver itself varies by at that size.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

from liverseg.errors import InvalidDataError, ShapeError
from liverseg.metrics._checks import as_mask

#: footprint placements needed for a null distribution; fewer gives ``z`` NaN
MIN_PLACEMENTS = 10


def lesion_visibility(image, lesions, liver, connectivity: int = 1) -> list[dict]:
    """One row per 3D component of ``lesions``: ``voxels``, ``contrast`` (the liver's median
    footprint mean minus the lesion's mean, in the image's units) and ``z`` (``contrast`` over
    the sd of the footprint means in the liver; NaN when the footprint fits fewer than
    :data:`MIN_PLACEMENTS` times in the liver outside the lesions).

    ``image``: ``(D, H, W)`` (or ``(H, W)``) intensities, finite; ``lesions``, ``liver``: masks
    of its shape (the liver with or without its lesions: they are left out of the null).
    Components as :func:`~liverseg.metrics.lesion_detection` counts them (``connectivity`` 1).
    Raises ``ShapeError`` for mismatched shapes, ``InvalidDataError`` for a non-finite image.
    """
    image = np.asarray(image, dtype=np.float64)
    lesions, liver = as_mask(lesions, "lesions"), as_mask(liver, "liver")
    if not image.shape == lesions.shape == liver.shape:
        raise ShapeError(f"image {image.shape}, lesions {lesions.shape} and liver {liver.shape} "
                         "must have one shape")
    if not np.isfinite(image).all():
        raise InvalidDataError("the image holds NaN or infinite values")
    background = liver & ~lesions  # the liver the lesions are compared with
    weighted, inside = np.where(background, image, 0.0), background.astype(np.float64)
    structure = ndimage.generate_binary_structure(lesions.ndim, min(connectivity, lesions.ndim))
    ids, n = ndimage.label(lesions, structure)
    rows = []
    for box, k in zip(ndimage.find_objects(ids), range(1, n + 1)):
        footprint = (ids[box] == k).astype(np.float64)
        area = footprint.sum()
        flipped = footprint[(slice(None, None, -1),) * footprint.ndim]  # correlation
        sums = signal.fftconvolve(weighted, flipped, mode="same")
        counts = signal.fftconvolve(inside, flipped, mode="same")
        null = sums[counts > area - 0.5] / area  # placements wholly inside the liver
        mean = float(image[box][footprint > 0].mean())
        if len(null) < MIN_PLACEMENTS:
            contrast = z = float("nan")
        else:
            contrast = float(np.median(null)) - mean
            z = contrast / max(float(null.std()), 1e-12)
        rows.append({"voxels": int(area), "contrast": contrast, "z": z})
    return rows
