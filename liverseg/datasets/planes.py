"""Cut a canonical ``(z, y, x)`` volume into 2D slices along one anatomical plane, and back.

The paper trains one network per plane (axial, coronal, sagittal) and fuses their
probabilities by soft voting (section 3.10), so every plane needs an exact inverse that
puts per-slice predictions back into the volume.

Canonical array (see :mod:`liverseg.io`): axis 0 runs inferior→superior, axis 1
anterior→posterior, axis 2 patient right→left. Slices come out in the usual display
orientation of each plane:

=========  ============  =========================  ==============================
plane      slice ``k``   image rows (top → bottom)  image columns (left → right)
=========  ============  =========================  ==============================
axial      ``z = k``     y: anterior → posterior    x: patient right → left
coronal    ``y = k``     z: superior → inferior     x: patient right → left
sagittal   ``x = k``     z: superior → inferior     y: anterior → posterior
=========  ============  =========================  ==============================

So ``to_slices(a, "coronal")[k, r, c] == a[nz - 1 - r, k, c]`` and
``to_slices(a, "sagittal")[k, r, c] == a[nz - 1 - r, c, k]``. Stacks are
``(n, h, w)``: axial ``(nz, ny, nx)``, coronal ``(ny, nz, nx)``, sagittal ``(nx, nz, ny)``.
Both functions return views of their input (no copy); copy before writing into them.
"""

from __future__ import annotations

import numpy as np

from liverseg.errors import InvalidDataError, ShapeError

PLANES = ("axial", "coronal", "sagittal")

# Axis order of the (z, y, x) array after flipping z, per plane: (slice axis, row axis, column axis).
_AXES = {"axial": (0, 1, 2), "coronal": (1, 0, 2), "sagittal": (2, 0, 1)}


def check_plane(plane: str) -> str:
    """Return ``plane`` if it is one of :data:`PLANES`, else raise :class:`InvalidDataError`."""
    if plane not in PLANES:
        raise InvalidDataError(f"unknown plane {plane!r}; expected one of {', '.join(PLANES)}")
    return plane


def to_slices(volume_array: np.ndarray, plane: str) -> np.ndarray:
    """Slices ``(n, h, w)`` of a canonical ``(z, y, x)`` array along ``plane`` (see module doc)."""
    check_plane(plane)
    array = np.asarray(volume_array)
    if array.ndim != 3:
        raise ShapeError(f"expected a (z, y, x) volume, got an array of shape {array.shape}")
    if plane != "axial":
        array = array[::-1]  # superior at the top of coronal and sagittal images
    return array.transpose(_AXES[plane])


def from_slices(slices: np.ndarray, plane: str) -> np.ndarray:
    """The ``(z, y, x)`` array whose :func:`to_slices` along ``plane`` is ``slices`` (exact inverse)."""
    check_plane(plane)
    stack = np.asarray(slices)
    if stack.ndim != 3:
        raise ShapeError(f"expected an (n, h, w) stack of slices, got an array of shape {stack.shape}")
    array = stack.transpose(np.argsort(_AXES[plane]))
    return array if plane == "axial" else array[::-1]


def plane_spacing(spacing, plane: str) -> tuple[float, float, float]:
    """Voxel size ``(between slices, row, column)`` in mm of the slices of a ``(z, y, x)`` spacing."""
    check_plane(plane)
    sz_sy_sx = tuple(float(s) for s in spacing)
    if len(sz_sy_sx) != 3:
        raise ShapeError(f"expected a (z, y, x) spacing, got {spacing!r}")
    return tuple(sz_sy_sx[axis] for axis in _AXES[plane])
