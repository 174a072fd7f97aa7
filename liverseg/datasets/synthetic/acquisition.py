"""Where the scanner samples the patient: field of view, spacing, slice thickness and count.

The ranges (slice thicknesses, in-plane spacing, field-of-view margin) are those of
:class:`liverseg.config.PhantomConfig`; what the image looks like on that grid (noise, slice
profile, streaks, metal) is :mod:`.scanner`'s.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from liverseg.config import PhantomConfig

from .anatomy import Frame, table_depth
from .shapes import Grid

IN_PLANE_PIXELS = 512


@dataclasses.dataclass
class Acquisition:
    """A ``shape`` grid of ``spacing`` mm; anatomy is scaled by ``scale`` to fit when both were imposed."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    center: tuple[float, float]  # (X, Y) mm at the middle of each slice
    z_top: float  # Z mm of the last (most superior) slice
    scale: float = 1.0
    thickness: float = 0.0  # reconstructed slice thickness (mm): the z spacing of a clinical scan

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


def sample_acquisition(
    rng: np.random.Generator, f: Frame, shape=None, spacing=None, config: PhantomConfig | None = None
) -> Acquisition:
    """Draw a scan of frame ``f`` (``config``: :meth:`PhantomConfig.classic` if ``None``).

    The field of view is the body (and table) times a margin drawn from ``config.fov_margin``;
    the slice thickness is one of ``config.slice_thickness_mm``. With neither ``shape`` nor
    ``spacing``: a clinical scan, 512×512 at the pixel that fits the field of view (kept within
    ``config.in_plane_spacing_mm``), slices as thick as drawn, from above the diaphragm to below
    the liver. With ``shape`` only: the same field of view resampled to ``shape`` (coarser
    spacing). With ``spacing`` only: as many voxels as the field of view needs. With both:
    exactly those, the anatomy shrunk if it would not fit in-plane, the slab centred on the
    liver if short. The drawn thickness is kept in :attr:`Acquisition.thickness` either way.
    """
    config = PhantomConfig.classic() if config is None else config
    if shape is not None and (len(shape) != 3 or min(shape) < 1):
        raise ValueError(f"shape must be three positive voxel counts (z, y, x), got {shape}")
    if spacing is not None and (len(spacing) != 3 or min(spacing) <= 0):
        raise ValueError(f"spacing must be three positive sizes (z, y, x) in mm, got {spacing}")
    margin = rng.uniform(*config.fov_margin)
    width = 2 * f.half_width * margin
    height = (f.front + f.back + table_depth(f)) * margin
    center = (rng.uniform(-0.03, 0.03) * width, (f.back + table_depth(f) - f.front) / 2)
    z_top = rng.uniform(*config.scan_above_liver_mm) * f.size
    z_bottom = -1.05 * f.liver_height - rng.uniform(*config.scan_below_liver_mm) * f.size
    coverage = z_top - z_bottom
    thickness = float(rng.choice(config.slice_thickness_mm))
    fov = max(width, height)
    if shape is None and spacing is None:
        pixel = float(np.clip(fov / IN_PLANE_PIXELS, *config.in_plane_spacing_mm))
        nz = int(round(coverage / thickness)) + 1
        return Acquisition((nz, IN_PLANE_PIXELS, IN_PLANE_PIXELS), (thickness, pixel, pixel), center, z_top,
                           thickness=thickness)
    if spacing is None:
        nz, ny, nx = (int(n) for n in shape)
        pixel = max(width / nx, height / ny)
        return Acquisition((nz, ny, nx), (coverage / nz, pixel, pixel), center, z_top, thickness=thickness)
    sz, sy, sx = (float(s) for s in spacing)
    if shape is None:
        shape = (math.ceil(coverage / sz), math.ceil(fov / sy), math.ceil(fov / sx))
        return Acquisition(tuple(shape), (sz, sy, sx), center, z_top, thickness=thickness)
    nz, ny, nx = (int(n) for n in shape)
    scale = min(1.0, nx * sx / width, ny * sy / height)
    slab = nz * sz / scale
    if slab < coverage:  # too short for the whole liver: centre the slab on it
        z_top = -0.45 * f.liver_height + slab / 2
    return Acquisition((nz, ny, nx), (sz, sy, sx), center, z_top, scale, thickness)
