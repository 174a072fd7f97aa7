"""The :class:`Volume` container and the one reorientation into canonical ``(S, P, L)`` order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from nibabel import orientations as nio

from liverseg.errors import ShapeError

#: nibabel axis codes of the canonical array: axis 0 → Superior, 1 → Posterior, 2 → Left.
CANONICAL_AXCODES = ("S", "P", "L")
_CANONICAL_ORNT = nio.axcodes2ornt(CANONICAL_AXCODES)


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

    @property
    def source_shape(self) -> tuple[int, ...]:
        """Shape of the array in the source file's own index order."""
        if self.source_ornt is None:
            return self.shape
        return tuple(self.shape[int(axis)] for axis in _invert_ornt(self.source_ornt)[:, 0])

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

    def to_source_order(self, array: np.ndarray) -> np.ndarray:
        """Take a canonical-order array (same shape as ``self.array``) to the source's index order."""
        if array.shape != self.shape:
            raise ShapeError(f"array shape {array.shape} differs from volume shape {self.shape}", self.path)
        if self.source_ornt is None:
            return array
        return nio.apply_orientation(array, self.source_ornt)

    def from_source_order(self, array: np.ndarray) -> np.ndarray:
        """Reorient an array stored in the source's index order the way ``self.array`` was."""
        if tuple(array.shape) != self.source_shape:
            raise ShapeError(
                f"array shape {tuple(array.shape)} differs from the source shape {self.source_shape}", self.path
            )
        if self.source_ornt is None:
            return array
        return nio.apply_orientation(array, _invert_ornt(self.source_ornt))


def _to_canonical(stored: np.ndarray, affine: np.ndarray, path: Path | None, dtype=None) -> Volume:
    """Reorient a (stored array, voxel→RAS+ affine) pair to the canonical (S, P, L) order.

    The reorientation is a view (flips and transposes); the one copy made converts to ``dtype``.
    """
    source_ornt = nio.io_orientation(affine)
    to_canonical = nio.ornt_transform(source_ornt, _CANONICAL_ORNT)
    array = nio.apply_orientation(stored, to_canonical)
    canonical_affine = affine @ nio.inv_ornt_aff(to_canonical, stored.shape)
    spacing = tuple(float(s) for s in np.linalg.norm(canonical_affine[:3, :3], axis=0))
    back = nio.ornt_transform(_CANONICAL_ORNT, source_ornt)
    identity = np.array_equal(back, [[0, 1], [1, 1], [2, 1]])
    return Volume(
        array=np.ascontiguousarray(array, dtype=dtype),
        spacing=spacing,
        affine=canonical_affine,
        path=path,
        source_affine=np.asarray(affine, dtype=float),
        source_ornt=None if identity else back,
    )


def _invert_ornt(ornt: np.ndarray) -> np.ndarray:
    """Inverse of a nibabel orientation transform (axis permutation with flips)."""
    inverse = np.empty_like(ornt)
    for axis, (target, flip) in enumerate(ornt):
        inverse[int(target)] = (axis, flip)
    return inverse
