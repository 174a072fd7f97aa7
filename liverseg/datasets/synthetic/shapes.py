"""Continuous shapes in patient millimetres, and the grid that samples them.

Patient coordinates: ``X`` towards the patient's left, ``Y`` posterior, ``Z`` superior (mm).
With these signs the canonical array ``(z, y, x)`` has every coordinate increasing with its
index, so patient right lands on the image's left and anterior at the top. Shapes are
functions of coordinates, not of voxels, so a phantom's anatomy does not depend on the grid
it is sampled on: the same seed at 64 or 512 pixels is the same patient.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Sequence

import numpy as np

Box = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]  # (Z, Y, X) mm ranges
UNBOUNDED: Box = ((-np.inf, np.inf),) * 3


class Coords(NamedTuple):
    """Open-grid coordinates, broadcastable to ``(z, y, x)``: Z ``(n,1,1)``, Y ``(1,n,1)``, X ``(1,1,n)``."""

    Z: np.ndarray
    Y: np.ndarray
    X: np.ndarray


@dataclasses.dataclass
class Layer:
    """One tissue painted where ``inside(coords)`` holds, within ``box``.

    ``into`` lists the tissues it may replace (``None``: any); ``shade`` optionally gives a
    HU offset inside it (e.g. a lesion's necrotic centre).
    """

    tissue: int
    inside: Callable[[Coords], np.ndarray]
    box: Box = UNBOUNDED
    into: Sequence[int] | None = None
    shade: Callable[[Coords], np.ndarray] | None = None


@dataclasses.dataclass
class Grid:
    """Voxel-centre coordinates (mm, patient frame) of each axis of a ``(z, y, x)`` array."""

    z: np.ndarray
    y: np.ndarray
    x: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.z.size, self.y.size, self.x.size)

    def window(self, box: Box) -> tuple[slice, slice, slice] | None:
        """The index ranges of the voxels inside ``box``; ``None`` when there are none."""
        window = []
        for axis, (low, high) in zip((self.z, self.y, self.x), box):
            start, stop = np.searchsorted(axis, low, "left"), np.searchsorted(axis, high, "right")
            if start >= stop:
                return None
            window.append(slice(int(start), int(stop)))
        return tuple(window)

    def coords(self, window=(slice(None),) * 3) -> Coords:
        """Coordinates of a window; the same object for the same window, so that
        :func:`reuse_last` can skip recomputing a shared field."""
        cached = self.__dict__.get("_last_coords")
        if cached is not None and cached[0] == window:
            return cached[1]
        wz, wy, wx = window
        coords = Coords(self.z[wz][:, None, None], self.y[wy][None, :, None], self.x[wx][None, None, :])
        self._last_coords = (window, coords)
        return coords


def reuse_last(function: Callable[[Coords], np.ndarray]) -> Callable[[Coords], np.ndarray]:
    """Remember ``function``'s last result, for layers that share an expensive field."""
    last = [None, None]

    def wrapper(c: Coords) -> np.ndarray:
        if last[0] is not c:
            last[0], last[1] = c, function(c)
        return last[1]

    return wrapper


def box_around(center, radius) -> Box:
    """The box of half-size ``radius`` (scalar or (z, y, x)) around ``center`` (X, Y, Z)."""
    rx, ry, rz = np.broadcast_to(np.asarray(radius, float), (3,))
    x, y, z = center
    return ((z - rz, z + rz), (y - ry, y + ry), (x - rx, x + rx))


def rotation(x_deg=0.0, y_deg=0.0, z_deg=0.0) -> np.ndarray:
    """Rotation matrix (applied to (X, Y, Z) vectors) from angles about the X, Y and Z axes."""
    ax, ay, az = np.radians([x_deg, y_deg, z_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def local_axes(c: Coords, center, turn: np.ndarray | None = None):
    """Coordinates of ``c`` relative to ``center`` (X, Y, Z), in the frame rotated by ``turn``."""
    d = (c.X - np.float32(center[0]), c.Y - np.float32(center[1]), c.Z - np.float32(center[2]))
    if turn is None:
        return d
    inverse = np.asarray(turn, np.float32).T  # world → local
    return tuple(inverse[i, 0] * d[0] + inverse[i, 1] * d[1] + inverse[i, 2] * d[2] for i in range(3))


def ellipsoid(c: Coords, center, axes, turn=None) -> np.ndarray:
    """Approximate signed distance (mm, negative inside) to an ellipsoid with semi-``axes`` (X, Y, Z)."""
    u, v, w = local_axes(c, center, turn)
    ax, ay, az = (np.float32(a) for a in axes)
    radius = np.sqrt((u / ax) ** 2 + (v / ay) ** 2 + (w / az) ** 2)
    return (radius - 1) * np.float32(np.mean(axes))


def segment_distance(c: Coords, start, end) -> tuple[np.ndarray, np.ndarray]:
    """Distance (mm) from ``c`` to the segment ``start``→``end``, and the position (0..1) along it."""
    start, end = np.asarray(start, np.float32), np.asarray(end, np.float32)
    direction = end - start
    length2 = max(float(direction @ direction), 1e-6)
    d = (c.X - start[0], c.Y - start[1], c.Z - start[2])
    t = np.clip((d[0] * direction[0] + d[1] * direction[1] + d[2] * direction[2]) / length2, 0, 1)
    distance2 = sum((d[i] - t * direction[i]) ** 2 for i in range(3))
    return np.sqrt(distance2), t


def tube(c: Coords, points, radii) -> np.ndarray:
    """Signed distance (mm) to a tube along a polyline whose radius tapers linearly between ``radii``."""
    best = None
    for (p0, p1), (r0, r1) in zip(zip(points[:-1], points[1:]), zip(radii[:-1], radii[1:])):
        distance, t = segment_distance(c, p0, p1)
        signed = distance - (r0 + (r1 - r0) * t)
        best = signed if best is None else np.minimum(best, signed)
    return best


def tube_box(points, radii) -> Box:
    points = np.asarray(points, float)
    r = max(radii)
    low, high = points.min(0) - r, points.max(0) + r
    return ((low[2], high[2]), (low[1], high[1]), (low[0], high[0]))


def outline(x, y, half_width, front, back, exponent) -> np.ndarray:
    """Normalised radius of a superellipse cross-section (< 1 inside): ``front``/``back`` are the
    anterior/posterior half-depths, so the body can be flatter at the back."""
    depth = np.where(y < 0, np.float32(front), np.float32(back))
    p = np.float32(exponent)
    return (np.abs(x / np.float32(half_width)) ** p + np.abs(y / depth) ** p) ** (1 / p)


def smooth_min(a, b, k):
    """Union of two signed distances with a rounded crease of width ``k`` mm."""
    h = np.clip(np.float32(0.5) + np.float32(0.5) * (b - a) / np.float32(k), 0, 1)
    return b + (a - b) * h - np.float32(k) * h * (1 - h)


class SmoothField:
    """A smooth random field (unit variance) in millimetres: a sum of random plane waves.

    Being a function of position, it gives the same values on any grid.
    """

    def __init__(self, rng: np.random.Generator, wavelength=(40.0, 120.0), waves: int = 8, planar=False):
        directions = rng.normal(size=(waves, 3))
        if planar:  # varies within axial slices only
            directions[:, 2] = 0
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        wavenumber = 2 * np.pi / rng.uniform(*wavelength, size=waves)
        self.k = (directions * wavenumber[:, None]).astype(np.float32)
        self.phase = rng.uniform(0, 2 * np.pi, size=waves).astype(np.float32)

    def __call__(self, c: Coords) -> np.ndarray:
        if c.Z.shape[1:] == (1, 1) and c.Y.shape[::2] == (1, 1) and c.X.shape[:2] == (1, 1):
            return self._on_open_grid(c)
        total = 0
        for (kx, ky, kz), phase in zip(self.k, self.phase):
            total = total + np.cos(kx * c.X + ky * c.Y + (kz * c.Z + phase))
        return total * np.float32(np.sqrt(2.0 / len(self.phase)))

    def _on_open_grid(self, c: Coords) -> np.ndarray:
        """Σ cos(k·p + φ) = Re Σ e^{i(kz z + φ)} e^{i(ky y + kx x)}: one matrix product."""
        z, y, x = c.Z.ravel(), c.Y.ravel(), c.X.ravel()
        kx, ky = self.k[:, 0, None, None], self.k[:, 1, None, None]
        in_plane = np.exp(1j * (ky * y[:, None] + kx * x)).astype(np.complex64)
        along_z = np.exp(1j * (self.k[:, 2, None] * z + self.phase[:, None])).astype(np.complex64)
        waves = len(self.phase)
        left = np.concatenate([along_z.real, -along_z.imag]).T  # (nz, 2 waves)
        right = np.concatenate([in_plane.real, in_plane.imag]).reshape(2 * waves, -1)
        total = (left @ right).reshape(z.size, y.size, x.size)
        return total * np.float32(np.sqrt(2.0 / waves))


def solid_ellipsoid(tissue: int, center, axes, turn=None, into=None, box: Box | None = None) -> Layer:
    """A layer filling an ellipsoid."""
    box = box_around(center, max(axes) + 1) if box is None else box
    return Layer(tissue, lambda c: ellipsoid(c, center, axes, turn) < 0, box, into)


def solid_tube(tissue: int, points, radii, into=None) -> Layer:
    """A layer filling a tube along ``points``."""
    return Layer(tissue, lambda c: tube(c, points, radii) < 0, tube_box(points, radii), into)
