"""Reading and writing CT volumes in one array orientation.

Every reader returns a :class:`Volume` whose ``array`` is ``(z, y, x)``: axis 0 runs
inferior→superior and each axial slice ``array[k]`` is in radiological view (patient
right on the image's left, anterior at the top). In nibabel's axis codes that is
``("S", "P", "L")``; it is also the array order SimpleITK returns for an LPS image.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

#: nibabel axis codes of the canonical array: axis 0 → Superior, 1 → Posterior, 2 → Left.
CANONICAL_AXCODES = ("S", "P", "L")


@dataclasses.dataclass
class Volume:
    """A CT volume in canonical orientation, with what is needed to write results back.

    Attributes:
        array: ``(z, y, x)`` voxels (HU for images), canonical orientation.
        spacing: ``(z, y, x)`` voxel size in mm.
        affine: 4×4 voxel→RAS+ (mm) matrix of ``array`` (nibabel convention).
        path: the file or folder it was read from, if any.
        source_affine: voxel→RAS+ matrix of the array as stored in the source file.
        source_ornt: nibabel orientation transform taking the canonical array back to the
            stored array order (``None`` when the source already is canonical).
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    path: Path | None = None
    source_affine: np.ndarray | None = None
    source_ornt: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)

    @classmethod
    def from_canonical(cls, array, spacing, origin=(0.0, 0.0, 0.0), path=None) -> "Volume":
        """Wrap an array that already is in canonical ``(z, y, x)`` order.

        ``origin`` is the RAS+ position (mm) of voxel ``array[0, 0, 0]``.
        """
        sz, sy, sx = (float(s) for s in spacing)
        affine = np.eye(4)
        # columns: axis 0 → +S, axis 1 → +P (−A), axis 2 → +L (−R)
        affine[:3, :3] = [[0.0, 0.0, -sx], [0.0, -sy, 0.0], [sz, 0.0, 0.0]]
        affine[:3, 3] = origin
        return cls(np.asarray(array), (sz, sy, sx), affine, path, affine.copy(), None)
