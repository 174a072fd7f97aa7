"""The liver: a large right lobe and a tapering left lobe, with its vessels and gallbladder.

The shape is the smooth union of two ellipsoids, randomly deformed, then pressed against
the diaphragm above and the abdominal wall around, so its dome follows the right
hemidiaphragm and its lateral surface the ribs, as in CT.
"""

from __future__ import annotations

import numpy as np

from .anatomy import ABDOMEN, Frame
from .shapes import (
    Coords, Layer, SmoothField, ellipsoid, local_axes, rotation, smooth_min, solid_tube, tube_box,
)
from .tissues import Tissue as T


def _tapered_ellipsoid(c: Coords, center, axes, taper: float) -> np.ndarray:
    """Ellipsoid whose depth and height shrink by ``taper`` towards its +X (patient-left) end."""
    u, v, w = local_axes(c, center)
    ax, ay, az = (np.float32(a) for a in axes)
    shrink = 1 - np.float32(taper) * np.clip(u / ax, 0, 1)
    radius = np.sqrt((u / ax) ** 2 + (v / (ay * shrink)) ** 2 + (w / (az * shrink)) ** 2)
    return (radius - 1) * np.float32(np.mean(axes))


def liver(f: Frame, rng: np.random.Generator) -> list[Layer]:
    """Liver parenchyma, then its vessels and the gallbladder in its fossa."""
    width, front, back = f.cavity
    s, h = f.size, f.liver_height
    right_center = np.array([-0.48 * width, 0.5 * (back - front), -0.45 * h])
    right_axes = np.array([0.55 * width, 0.5 * (front + back), 0.55 * h]) * rng.uniform(0.88, 1.02, 3)
    right_turn = rotation(y_deg=-rng.uniform(10, 25), z_deg=rng.uniform(-10, 10))
    left_center = np.array([rng.uniform(0.0, 0.15) * width, -0.45 * front, -0.3 * h])
    left_axes = np.array([0.6 * width, 0.32 * front, 0.2 * h]) * rng.uniform(0.75, 1.15, 3)
    taper = rng.uniform(0.4, 0.7)
    bumps = SmoothField(rng, (80, 200))
    bump_height = rng.uniform(6, 14) * s

    def inside(c: Coords) -> np.ndarray:
        lobes = smooth_min(
            ellipsoid(c, right_center, right_axes, right_turn),
            _tapered_ellipsoid(c, left_center, left_axes, taper),
            25 * s,
        )
        bumped = bump_height * bumps(c)
        shape = lobes + bumped < 0
        beside_spine = np.sqrt(c.X**2 + (c.Y - f.spine_y) ** 2) < 55 * s + 0.5 * bumped
        return shape & (c.Z < f.dome(c) - 5 * s) & f.in_cavity(c, 1.0) & ~beside_spine

    box = ((-1.3 * h, 0.0), (-front, back), (-width, width))
    return [Layer(T.LIVER, inside, box, into=ABDOMEN)] + _vessels(f, rng) + _gallbladder(f, rng)


def _vessels(f: Frame, rng) -> list[Layer]:
    """Portal vein from behind the pancreas into the hilum, branching; hepatic veins fanning
    from the IVC. Outside the liver they are blood; inside, hepatic vessel (labelled liver)."""
    width, front, back = f.cavity
    s, h, y0 = f.size, f.liver_height, f.spine_y

    def point(x, y, z):
        return np.array([x, y, z]) + rng.uniform(-8, 8, 3) * s

    hilum = point(-0.25 * width, -0.1 * front, -0.55 * h)
    confluence = point(0.05 * width, y0 - 45 * s, -0.7 * h)
    right = point(-0.6 * width, 0.0, -0.45 * h)
    left = point(0.0, -0.5 * front, -0.38 * h)
    ivc_top = np.array([-0.18 * width, y0 - 42 * s, -0.1 * h])
    trees = [  # (points, radii) along each branch
        ([confluence, hilum], [7 * s, 6.5 * s]),
        ([hilum, right, point(-0.85 * width, -0.4 * front, -0.5 * h)], [5 * s, 3.5 * s, 1.5 * s]),
        ([right, point(-0.75 * width, 0.5 * back, -0.3 * h)], [3 * s, 1.5 * s]),
        ([hilum, left, point(0.3 * width, -0.55 * front, -0.32 * h)], [4.5 * s, 3 * s, 1.5 * s]),
    ]
    for end in ((-0.85 * width, 0.0, -0.25 * h), (-0.35 * width, -0.65 * front, -0.2 * h),
                (0.1 * width, -0.6 * front, -0.15 * h)):
        trees.append(([ivc_top, point(*end)], [5 * s, 1.5 * s]))  # hepatic veins
    layers = []
    for points, radii in trees:
        layers += [solid_tube(T.HEPATIC_VESSEL, points, radii, into=(T.LIVER,)),
                   solid_tube(T.BLOOD, points, radii, into=(T.VISCERAL_FAT,))]
    return layers


def _gallbladder(f: Frame, rng) -> list[Layer]:
    """A bile-filled pear under the liver, in its fossa (absent after cholecystectomy)."""
    if rng.uniform() < 0.15:
        return []
    width, front, _ = f.cavity
    s, h = f.size, f.liver_height
    center = np.array([-0.2 * width, -0.5 * front, -0.62 * h]) + rng.uniform(-10, 10, 3) * s
    axes = np.array([16, 16, 36]) * s * rng.uniform(0.7, 1.2, 3)
    turn = rotation(x_deg=rng.uniform(25, 55), y_deg=rng.uniform(-20, 20))
    inside = lambda c: (ellipsoid(c, center, axes, turn) < 0) & f.in_cavity(c, 2.0)  # noqa: E731
    box = tube_box([center], [axes.max()])
    return [Layer(T.FLUID, inside, box, into=(T.LIVER, T.HEPATIC_VESSEL) + ABDOMEN)]
