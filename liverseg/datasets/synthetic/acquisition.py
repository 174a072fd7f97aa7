"""Where the scanner samples the patient: field of view, spacing and slice count."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .anatomy import Frame, table_depth
from .shapes import Grid

#: reconstructed slice thicknesses (mm) met in LiTS-like abdominal CT (0.7–5 mm)
SLICE_THICKNESS_MM = (0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
IN_PLANE_SPACING_MM = (0.5, 1.0)
IN_PLANE_PIXELS = 512


@dataclasses.dataclass
class Acquisition:
    """A ``shape`` grid of ``spacing`` mm; anatomy is scaled by ``scale`` to fit when both were imposed."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    center: tuple[float, float]  # (X, Y) mm at the middle of each slice
    z_top: float  # Z mm of the last (most superior) slice
    scale: float = 1.0

    def grid(self) -> Grid:
        """Voxel-centre coordinates in the anatomy's millimetres (physical mm / ``scale``)."""
        (nz, ny, nx), (sz, sy, sx) = self.shape, self.spacing
        z = self.z_top - (nz - 1 - np.arange(nz)) * sz / self.scale
        y = self.center[1] + (np.arange(ny) - (ny - 1) / 2) * sy / self.scale
        x = self.center[0] + (np.arange(nx) - (nx - 1) / 2) * sx / self.scale
        return Grid(z.astype(np.float32), y.astype(np.float32), x.astype(np.float32))

    def origin(self) -> tuple[float, float, float]:
        """RAS+ position (mm) of voxel (0, 0, 0): R = −X, A = −Y, S = Z."""
        grid = self.grid()
        return (-float(grid.x[0]) * self.scale, -float(grid.y[0]) * self.scale, float(grid.z[0]) * self.scale)


def sample_acquisition(rng: np.random.Generator, f: Frame, shape=None, spacing=None) -> Acquisition:
    """Draw a scan of frame ``f``.

    With neither ``shape`` nor ``spacing``: a clinical scan, 512×512 at 0.5–1 mm, one of the
    usual slice thicknesses (0.7–5 mm), from above the diaphragm to below the liver. With
    ``shape`` only: the same field of view resampled to ``shape`` (coarser spacing). With
    ``spacing`` only: as many voxels as the field of view needs. With both: exactly those,
    the anatomy shrunk if it would not fit in-plane, the slab centred on the liver if short.
    """
    if shape is not None and (len(shape) != 3 or min(shape) < 1):
        raise ValueError(f"shape must be three positive voxel counts (z, y, x), got {shape}")
    if spacing is not None and (len(spacing) != 3 or min(spacing) <= 0):
        raise ValueError(f"spacing must be three positive sizes (z, y, x) in mm, got {spacing}")
    margin = rng.uniform(1.04, 1.2)
    width = 2 * f.half_width * margin
    height = (f.front + f.back + table_depth(f)) * margin
    center = (rng.uniform(-0.03, 0.03) * width, (f.back + table_depth(f) - f.front) / 2)
    z_top = rng.uniform(15, 60) * f.size
    z_bottom = -1.05 * f.liver_height - rng.uniform(50, 180) * f.size
    coverage = z_top - z_bottom
    thickness = float(rng.choice(SLICE_THICKNESS_MM))
    fov = max(width, height)
    if shape is None and spacing is None:
        pixel = float(np.clip(fov / IN_PLANE_PIXELS, *IN_PLANE_SPACING_MM))
        nz = int(round(coverage / thickness)) + 1
        return Acquisition((nz, IN_PLANE_PIXELS, IN_PLANE_PIXELS), (thickness, pixel, pixel), center, z_top)
    if spacing is None:
        nz, ny, nx = (int(n) for n in shape)
        pixel = max(width / nx, height / ny)
        return Acquisition((nz, ny, nx), (coverage / nz, pixel, pixel), center, z_top)
    sz, sy, sx = (float(s) for s in spacing)
    if shape is None:
        shape = (math.ceil(coverage / sz), math.ceil(fov / sy), math.ceil(fov / sx))
        return Acquisition(tuple(shape), (sz, sy, sx), center, z_top)
    nz, ny, nx = (int(n) for n in shape)
    scale = min(1.0, nx * sx / width, ny * sy / height)
    slab = nz * sz / scale
    if slab < coverage:  # too short for the whole liver: centre the slab on it
        z_top = -0.45 * f.liver_height + slab / 2
    return Acquisition((nz, ny, nx), (sz, sy, sx), center, z_top, scale)
