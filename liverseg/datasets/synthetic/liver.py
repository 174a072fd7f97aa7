"""The liver: a large right lobe and a tapering left lobe, with its vessels and gallbladder.

The shape is the smooth union of two ellipsoids, randomly deformed, then pressed against
the diaphragm above and the abdominal wall around, so its dome follows the right
hemidiaphragm and its lateral surface the ribs, as in CT.

Anatomical variety (issue 10; :class:`liverseg.config.PhantomConfig`, whose ``classic()``
preset draws none of it): the left lobe's reach (``left_lobe_scale``), from small to crossing
the midline towards the spleen — at its extreme the "beaver tail" or "sliver of liver", an
elongated left lobe that contacts or wraps the spleen (Radiopaedia, "Beaver tail liver";
Glenisson et al., "Accessory liver lobes", J Visc Surg 2014;151:451) — and a Riedel's lobe
(``riedel_probability``, 10 %), a tongue of the right lobe hanging down lateral to the
gallbladder, towards the iliac crest, reported in 3.3–31 % of people and more often in women
(Gillard et al., "Riedel's lobe of the liver: fact or fiction?", Clin Anat 1998;11:47; Eurorad
case 9437, 2011), and the left lobe's depth and height (``left_lobe_thickness``, off by
default): at the upper levels a real left lobe can be broad and thick, reaching forward across
the midline, where a phantom's tapers to a crescent (issue 17). The vessel tree
(``vessel_generations``): portal and hepatic veins branch from lobar to segmental to
subsegmental veins (Couinaud's segments), and in portal-venous CT
bright branches down to 1–1.5 mm radius fill about 3–5 % of the liver (one real LiTS crop,
volume 117, measured for issue 10, had about 9 times more bright branches and 3 times more
liver near a vessel than the classic phantoms). Every such draw comes from its own streams
(``shape_rng``, ``vessel_rng``), never from the anatomy's. Liver volume (``liver_volume_l``,
1.0–2.5 L): the lobes are scaled to a volume drawn half by body size, half at random; CT
volumetry of 369 adults found 1205 ± 258 mL, range 594–2250 (Feng et al., World J
Gastroenterol 2017;23:4968); Western livers run larger, and livers with tumours larger still.
"""

from __future__ import annotations

import numpy as np

from liverseg.config import PhantomConfig

from .anatomy import ABDOMEN, Frame
from .shapes import (
    Coords, Grid, Layer, SmoothField, ellipsoid, local_axes, rotation, smooth_min, solid_tube, tube_box,
)
from .tissues import Tissue as T


def _tapered_ellipsoid(c: Coords, center, axes, taper: float) -> np.ndarray:
    """Ellipsoid whose depth and height shrink by ``taper`` towards its +X (patient-left) end."""
    u, v, w = local_axes(c, center)
    ax, ay, az = (np.float32(a) for a in axes)
    shrink = 1 - np.float32(taper) * np.clip(u / ax, 0, 1)
    radius = np.sqrt((u / ax) ** 2 + (v / (ay * shrink)) ** 2 + (w / (az * shrink)) ** 2)
    return (radius - 1) * np.float32(np.mean(axes))


def liver(f: Frame, rng: np.random.Generator, config: PhantomConfig | None = None,
          vessel_rng: np.random.Generator | None = None,
          shape_rng: np.random.Generator | None = None) -> list[Layer]:
    """Liver parenchyma, then its vessels and the gallbladder in its fossa (``config``: the
    anatomical variety, drawn from ``shape_rng`` and ``vessel_rng``; ``None``: the classic)."""
    config = PhantomConfig.classic() if config is None else config
    shape_rng = np.random.default_rng(0) if shape_rng is None else shape_rng
    vessel_rng = np.random.default_rng(0) if vessel_rng is None else vessel_rng
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
    reach = shape_rng.uniform(*config.left_lobe_scale)  # 1.0 exactly in the classic preset
    left_axes = left_axes * np.array([reach, 1.0, 1.0])
    left_center = left_center + np.array([0.3 * (reach - 1) * 0.6 * width, 0.0, 0.0])
    riedel = None
    if shape_rng.uniform() < config.riedel_probability:
        riedel = (np.array([-0.6 * width, 0.15 * (back - front), -0.95 * h]),
                  np.array([0.22 * width, 0.3 * (front + back), 0.4 * h]) * shape_rng.uniform(0.8, 1.2, 3))

    target = None
    if config.liver_volume_l is not None:  # larger bodies, larger livers (half the spread is size)
        low, high = config.liver_volume_l
        where = 0.5 * np.clip((s - 0.88) / 0.24, 0, 1) + 0.5 * shape_rng.uniform()
        target = low + (high - low) * where
    if config.left_lobe_thickness != (1.0, 1.0):  # drawn last: the draws above stay put
        thickness = shape_rng.uniform(*config.left_lobe_thickness)
        left_axes = left_axes * np.array([1.0, thickness, thickness])  # its depth and height
    grow = [1.0]  # scales the lobes' axes, towards ``target`` litres (1.0 exactly in the classic)

    def inside(c: Coords) -> np.ndarray:
        k = grow[0]
        lobes = smooth_min(
            ellipsoid(c, right_center, right_axes * k, right_turn),
            _tapered_ellipsoid(c, left_center, left_axes * k, taper),
            25 * s,
        )
        if riedel is not None:
            lobes = smooth_min(lobes, ellipsoid(c, riedel[0], riedel[1] * k), 30 * s)
        bumped = bump_height * bumps(c)
        shape = lobes + bumped < 0
        beside_spine = np.sqrt(c.X**2 + (c.Y - f.spine_y) ** 2) < 55 * s + 0.5 * bumped
        return shape & (c.Z < f.dome(c) - 5 * s) & f.in_cavity(c, 1.0) & ~beside_spine

    box = ((-1.3 * h, 0.0), (-front, back), (-width, width))
    if target is not None or riedel is not None:
        box = ((-1.8 * h, 0.0), (-front, back), (-width, width))
    if target is not None:
        coarse = Grid(*(np.arange(low, high, 6.0, dtype=np.float32) for low, high in box))
        for _ in range(3):  # the dome and the wall clip it: a few fixed-point steps
            litres = float(np.count_nonzero(inside(coarse.coords()))) * 6.0**3 / 1e6
            grow[0] *= float(np.clip((target / max(litres, 0.05)) ** (1 / 3), 0.7, 1.4))
    trees, vessels = _vessels(f, rng)
    branches = _branches(trees, inside, config, vessel_rng, s) if config.vessel_generations else []
    return [Layer(T.LIVER, inside, box, into=ABDOMEN)] + vessels + branches + _gallbladder(f, rng)


def _branches(trees, inside, config: PhantomConfig, rng: np.random.Generator, s: float) -> list[Layer]:
    """Further generations of branches from the portal and hepatic trunks inside the liver: each
    segment sprouts 2 (first generation) or 1–2 branches, at 30–70° from it, shorter and thinner
    generation by generation down to ``vessel_tip_radius_mm``; a branch is kept when its end and
    middle lie in the liver (``inside``)."""
    generations = int(config.vessel_generations)
    tip = rng.uniform(*config.vessel_tip_radius_mm)
    step = 1.6  # radius ratio from one generation to the next
    parents = [(np.asarray(p0, float), np.asarray(p1, float))
               for points, _ in trees[1:] for p0, p1 in zip(points[:-1], points[1:])]
    layers = []
    for g in range(generations):
        r_start, r_end = tip * step ** (generations - g), tip * step ** (generations - g - 1)
        low, high = np.array([40.0, 60.0]) * s * 0.65**g
        children = []
        for p0, p1 in parents:
            direction = (p1 - p0) / max(np.linalg.norm(p1 - p0), 1e-6)
            for _ in range(2 if g == 0 else int(rng.integers(1, 3))):
                start = p0 + rng.uniform(0.35, 1.0) * (p1 - p0)
                length = rng.uniform(low, high)
                tries = rng.normal(size=(8, 3))
                tries -= (tries @ direction)[:, None] * direction  # perpendicular to the parent
                tries /= np.maximum(np.linalg.norm(tries, axis=1, keepdims=True), 1e-6)
                angle = np.radians(rng.uniform(30, 70, 8))[:, None]
                ends = start + length * (np.cos(angle) * direction + np.sin(angle) * tries)
                middles = 0.5 * (start + ends)
                points = np.concatenate([ends, middles])
                ok = np.asarray(inside(Coords(*(points[:, i].astype(np.float32) for i in (2, 1, 0)))))
                good = np.flatnonzero(ok[:8] & ok[8:])
                if good.size:
                    children.append((start, ends[good[0]]))
        for start, end in children:
            layers.append(solid_tube(T.HEPATIC_VESSEL, [start, end], [r_start, r_end], into=(T.LIVER,)))
        parents = children
    return layers


def _vessels(f: Frame, rng) -> tuple[list, list[Layer]]:
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
    return trees, layers


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
