"""The body and the organs around the liver, each as a few painted layers.

Sizes are millimetres for an average adult, multiplied by the case's ``size``. Every
function draws its own variations from ``rng`` in a fixed order and returns layers in
painting order (later layers cover earlier ones where their ``into`` allows).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .shapes import (
    UNBOUNDED, Coords, Layer, SmoothField, box_around, ellipsoid, outline, reuse_last, rotation,
    solid_ellipsoid, solid_tube, tube, tube_box,
)
from .tissues import Tissue as T

ABDOMEN = (T.VISCERAL_FAT,)
SOFT_ORGANS = (T.VISCERAL_FAT, T.LIVER, T.HEPATIC_VESSEL)


@dataclasses.dataclass
class Frame:
    """The body outline and the landmarks organs are placed against (mm, patient frame).

    ``Z = 0`` is the top of the right hemidiaphragm; the liver hangs below it.
    """

    size: float
    half_width: float
    front: float  # anterior half-depth of the outline
    back: float  # posterior half-depth
    exponent: float  # superellipse exponent of the outline (2: ellipse)
    fat: float  # subcutaneous fat thickness (anterior and lateral; 0.6× at the back)
    wall: float  # abdominal-wall muscle thickness
    dome_left: float  # top of the left hemidiaphragm (below the right one)
    dome_drop: float  # how far the diaphragm falls from dome to cavity edge
    liver_height: float
    spine_y: float  # centre of the vertebral bodies

    @property
    def cavity(self) -> tuple[float, float, float]:
        """Half-width, anterior and posterior half-depths of the abdominal/thoracic cavity."""
        inset = self.fat + self.wall
        return self.half_width - inset, self.front - inset, self.back - 0.6 * self.fat - self.wall

    def rho(self, c: Coords, depth: float = 0.0, back_depth: float | None = None) -> np.ndarray:
        """Normalised radius (< 1 inside) of the body outline moved ``depth`` mm inwards."""
        back_depth = depth if back_depth is None else back_depth
        width, front, back = self.half_width - depth, self.front - depth, self.back - back_depth
        return outline(c.X, c.Y, width, front, back, self.exponent)

    def in_cavity(self, c: Coords, margin: float = 0.0) -> np.ndarray:
        depth = self.fat + self.wall + margin
        return self.rho(c, depth, 0.6 * self.fat + self.wall + margin) < 1

    def dome(self, c: Coords) -> np.ndarray:
        """Height Z of the diaphragm above (X, Y): two paraboloid domes, the right one higher."""
        width, front, back = self.cavity
        y_top = -0.1 * front
        depth = np.where(c.Y < y_top, np.float32(front), np.float32(back))
        fall_y = ((c.Y - np.float32(y_top)) / depth) ** 2
        right = -self.dome_drop * (((c.X + 0.45 * width) / (0.7 * width)) ** 2 + fall_y)
        left = self.dome_left - self.dome_drop * (((c.X - 0.45 * width) / (0.7 * width)) ** 2 + fall_y)
        return np.maximum(right, left)

    @property
    def lowest_dome(self) -> float:
        return self.dome_left - 2.2 * self.dome_drop


def sample_frame(rng: np.random.Generator) -> Frame:
    size = rng.uniform(0.88, 1.12)
    fat = rng.uniform(8, 40) * size
    wall = rng.uniform(7, 13) * size
    back = rng.uniform(95, 120) * size
    return Frame(
        size=size,
        half_width=rng.uniform(0.92, 1.08) * 155 * size + 0.4 * fat,
        front=rng.uniform(0.9, 1.1) * 105 * size + 0.5 * fat,
        back=back,
        exponent=rng.uniform(2.0, 2.6),
        fat=fat,
        wall=wall,
        dome_left=-rng.uniform(8, 25) * size,
        dome_drop=rng.uniform(55, 80) * size,
        liver_height=rng.uniform(140, 190) * size,
        spine_y=back - 0.6 * fat - 3 - 72 * size,
    )


def body(f: Frame) -> list[Layer]:
    """Skin, subcutaneous fat, the muscular wall, and the cavity split by the diaphragm."""
    top_of_domes = ((f.lowest_dome - 10, np.inf), (-np.inf, np.inf), (-np.inf, np.inf))
    return [
        Layer(T.SKIN, lambda c: f.rho(c) < 1),
        Layer(T.FAT, lambda c: f.rho(c, 2.0) < 1, into=(T.SKIN,)),
        Layer(T.MUSCLE, lambda c: f.rho(c, f.fat, 0.6 * f.fat) < 1, into=(T.FAT,)),
        Layer(T.VISCERAL_FAT, lambda c: f.in_cavity(c), into=(T.MUSCLE,)),
        Layer(T.MUSCLE, lambda c: (c.Z > f.dome(c) - 5 * f.size) & f.in_cavity(c), top_of_domes,
              into=ABDOMEN),  # the diaphragm
        Layer(T.LUNG, lambda c: (c.Z > f.dome(c)) & f.in_cavity(c), top_of_domes, into=(T.MUSCLE,) + ABDOMEN),
    ]


def heart(f: Frame, rng) -> list[Layer]:
    """The heart resting on the central diaphragm, wrapped in mediastinal fat."""
    width, front, _ = f.cavity
    center = (rng.uniform(0.05, 0.2) * width, -0.35 * front, f.dome_left + 30 * f.size)
    axes = np.array([55, 44, 45]) * f.size * rng.uniform(0.9, 1.1)
    turn = rotation(z_deg=rng.uniform(20, 40))
    box = box_around(center, axes.max() + 12)

    def within(grow=0.0):
        return lambda c: (ellipsoid(c, center, axes + grow, turn) < 0) & (c.Z > f.dome(c))

    return [
        Layer(T.VISCERAL_FAT, within(9 * f.size), box, into=(T.LUNG,)),
        Layer(T.HEART, within(), box, into=(T.VISCERAL_FAT,)),
        Layer(T.BLOOD, within(-11 * f.size), box, into=(T.HEART,)),  # chambers
    ]


def spine(f: Frame, rng) -> list[Layer]:
    """Paraspinal and psoas muscles, vertebral bodies with discs, canal, arch and spinous process."""
    s, y0 = f.size, f.spine_y
    period, disc = rng.uniform(27, 33) * s, rng.uniform(5, 8) * s
    offset = rng.uniform(0, period)
    in_disc = lambda c: np.mod(c.Z - offset, period) < disc  # noqa: E731
    body_axes = (rng.uniform(19, 24) * s, rng.uniform(15, 19) * s)
    canal_y = y0 + body_axes[1] + 12 * s

    def vertebral_body(c, inset=0.0):
        return (c.X / (body_axes[0] - inset)) ** 2 + ((c.Y - y0) / (body_axes[1] - inset)) ** 2 < 1

    def arch(c):
        r = np.sqrt(c.X**2 + (c.Y - canal_y) ** 2)
        spinous = (np.abs(c.X) < 4 * s) & (c.Y > canal_y) & (c.Y < canal_y + 38 * s)
        beside_canal = (np.abs(c.Y - canal_y + 2 * s) < 3.5 * s) & (np.abs(c.X) < 30 * s)
        transverse = beside_canal & (np.mod(c.Z - offset, period) > period - 10 * s)
        return ((r < 16 * s) & (c.Y > y0 + body_axes[1] - 2)) | (spinous & ~in_disc(c)) | transverse

    psoas_top = -f.liver_height * rng.uniform(0.45, 0.6)

    def psoas(c):
        radius = np.clip((psoas_top - c.Z) * 0.2, 0, 26 * s)
        x = np.abs(c.X) - (body_axes[0] + radius)
        return (radius > 1) & (x**2 + (c.Y - y0 + 4 * s) ** 2 < radius**2)

    def paraspinal(c):
        return ((np.abs(c.X) - 36 * s) / (27 * s)) ** 2 + ((c.Y - canal_y - 16 * s) / (24 * s)) ** 2 < 1

    box = ((-np.inf, np.inf), (y0 - 25 * s, canal_y + 45 * s), (-80 * s, 80 * s))
    return [
        Layer(T.MUSCLE, paraspinal, box),
        Layer(T.MUSCLE, psoas, ((-np.inf, psoas_top), box[1], box[2]), into=ABDOMEN),
        Layer(T.CORTEX, lambda c: vertebral_body(c) & ~in_disc(c), box),
        Layer(T.BONE, lambda c: vertebral_body(c, 2.5 * s), box, into=(T.CORTEX,)),
        Layer(T.DISC, lambda c: vertebral_body(c) & in_disc(c), box),
        Layer(T.CORTEX, arch, box),
        Layer(T.FLUID, lambda c: c.X**2 + (c.Y - canal_y) ** 2 < (9 * s) ** 2, box),
    ]


def ribs(f: Frame, rng) -> list[Layer]:
    """Ribs as bony bands in the chest wall, descending from the spine towards the front."""
    s = f.size
    period = rng.uniform(24, 30) * s
    drop = rng.uniform(100, 150) * s  # height lost from back to front
    offset = rng.uniform(0, period)
    depth = f.fat + 0.5 * f.wall
    lowest = -f.liver_height * rng.uniform(0.65, 0.85)

    def cross_section(c):
        """(radial, vertical) offsets from the nearest rib's centre line, in rib radii."""
        rho = f.rho(c, depth, 0.6 * f.fat + 0.5 * f.wall)
        radius = np.sqrt(c.X**2 + c.Y**2) / np.maximum(rho, 1e-3)
        radial = (rho - 1) * radius / (3.5 * s)
        angle = np.abs(np.arctan2(c.X, c.Y)) / np.pi  # 0 at the back, 1 at the front
        height = c.Z + drop * angle - offset
        index = np.floor(height / period + 0.5)
        vertical = (height - index * period) / (5 * s)
        front_end = 0.85 - 0.04 * np.clip(-index, 0, 6)
        exists = (angle > 0.12) & (angle < front_end) & (c.Z > lowest + drop * angle)
        return radial, vertical, exists

    def rib(c, core=1.0):
        radial, vertical, exists = cross_section(c)
        return exists & (radial**2 + vertical**2 < core)

    box = ((lowest, np.inf), UNBOUNDED[1], UNBOUNDED[2])
    return [Layer(T.CORTEX, rib, box), Layer(T.BONE, lambda c: rib(c, 0.45), box, into=(T.CORTEX,))]


def great_vessels(f: Frame, rng) -> list[Layer]:
    """Aorta left of the midline in front of the spine; IVC on the right, behind the liver."""
    s, y0 = f.size, f.spine_y
    bottom = -f.liver_height - 400
    aorta = [(14 * s, y0 - 32 * s, bottom), (12 * s, y0 - 30 * s, -60 * s), (36 * s, y0 - 6 * s, 60 * s),
             (36 * s, y0 - 6 * s, 400)]  # abdominal: in front of the spine; thoracic: to its left
    ivc = [(-24 * s, y0 - 30 * s, bottom), (-26 * s, y0 - 38 * s, -70 * s), (-22 * s, y0 - 46 * s, 10 * s)]
    aorta, ivc = ([np.array(p) + rng.uniform(-5, 5, 3) * s for p in path] for path in (aorta, ivc))
    aorta_r, ivc_r = rng.uniform(10, 13, 2) * s
    into = SOFT_ORGANS + (T.LUNG, T.MUSCLE, T.HEART)
    return [
        solid_tube(T.VISCERAL_FAT, aorta, [aorta_r + 5] * len(aorta), into=(T.LUNG,)),  # mediastinal fat
        solid_tube(T.BLOOD, aorta, [aorta_r] * len(aorta), into),
        solid_tube(T.BLOOD, ivc, [ivc_r] * len(ivc), into),
    ]


def kidneys(f: Frame, rng) -> list[Layer]:
    """Two kidneys beside the spine, the right one lower (under the liver), with sinus and pelvis."""
    s = f.size
    right_z = -f.liver_height * rng.uniform(0.5, 0.65)
    layers = []
    for side, z in ((-1, right_z), (1, right_z + rng.uniform(10, 30) * s)):
        center = np.array([side * rng.uniform(55, 68) * s, f.spine_y + rng.uniform(5, 15) * s, z])
        axes = np.array([24, 21, 52]) * s * rng.uniform(0.88, 1.12)
        turn = rotation(z_deg=-side * rng.uniform(25, 45), y_deg=side * rng.uniform(8, 20))
        medial = turn @ np.array([-side, 0.0, 0.0])  # the hilum faces the spine
        box = box_around(center, axes.max() + 2)
        layers += [
            solid_ellipsoid(T.KIDNEY, center, axes, turn, SOFT_ORGANS + (T.SPLEEN,), box),
            solid_ellipsoid(T.VISCERAL_FAT, center + 0.5 * axes[0] * medial, axes * [0.45, 0.4, 0.55], turn,
                            (T.KIDNEY,), box),  # renal sinus
            solid_ellipsoid(T.FLUID, center + 0.75 * axes[0] * medial, axes * [0.3, 0.25, 0.25], turn,
                            (T.KIDNEY, T.VISCERAL_FAT), box),  # pelvis
        ]
    return layers


def spleen(f: Frame, rng) -> list[Layer]:
    """A crescent against the left posterolateral wall, under the left dome."""
    width, _, back = f.cavity
    s = f.size
    center = np.array([0.62 * width, 0.3 * back, f.dome_left - rng.uniform(45, 60) * s])
    axes = np.array([22, 55, 48]) * s * rng.uniform(0.85, 1.2, 3)
    turn = rotation(z_deg=rng.uniform(20, 35), x_deg=rng.uniform(-15, 5))
    hilum = center + turn @ np.array([-1.5 * axes[0], 0, 0])

    def inside(c):
        bean = ellipsoid(c, center, axes, turn) < 0
        crescent = bean & (ellipsoid(c, hilum, axes * [1.2, 0.6, 0.6], turn) > 0)
        return crescent & f.in_cavity(c, 1.0) & (c.Z < f.dome(c) - 5 * s)

    return [Layer(T.SPLEEN, inside, box_around(center, axes.max()), into=ABDOMEN)]


def stomach(f: Frame, rng) -> list[Layer]:
    """Stomach under the left dome, against the left liver lobe: wall, fluid, and a gas cap in front."""
    width, front, _ = f.cavity
    s = f.size
    center = np.array([0.3 * width, -0.2 * front, f.dome_left - rng.uniform(40, 60) * s])
    axes = np.array([42, 38, 62]) * s * rng.uniform(0.75, 1.15, 3)
    turn = rotation(y_deg=rng.uniform(-40, -20), x_deg=rng.uniform(-15, 15), z_deg=rng.uniform(-15, 15))
    folds = SmoothField(rng, (30, 60))
    gas_level = center[1] - axes[1] * rng.uniform(0.3, 0.95)  # gas rises to the front
    wall = rng.uniform(3, 6) * s

    @reuse_last
    def distance(c):
        return ellipsoid(c, center, axes, turn) + 5 * s * folds(c)

    def inside(c, d=0.0):
        return (distance(c) < -d) & f.in_cavity(c, 1.0) & (c.Z < f.dome(c) - 5 * s)

    box = box_around(center, axes.max() + 6 * s)
    return [
        Layer(T.BOWEL_WALL, inside, box, into=SOFT_ORGANS),
        Layer(T.FLUID, lambda c: inside(c, wall), box, into=(T.BOWEL_WALL,)),
        Layer(T.GAS, lambda c: inside(c, wall) & (c.Y < gas_level), box, into=(T.FLUID,)),
    ]


def pancreas(f: Frame, rng) -> list[Layer]:
    """Head near the duodenum, body across the aorta, tail towards the splenic hilum."""
    width, _, _ = f.cavity
    s, y0, h = f.size, f.spine_y, f.liver_height
    points = [(-0.2 * width, y0 - 50 * s, -0.72 * h), (0.05 * width, y0 - 55 * s, -0.66 * h),
              (0.45 * width, y0 - 10 * s, -0.58 * h)]
    points = [np.array(p) + rng.uniform(-6, 6, 3) * s for p in points]
    radii = np.array([16, 11, 9]) * s * rng.uniform(0.8, 1.2)
    lobules = SmoothField(rng, (15, 30))
    inside = lambda c: tube(c, points, radii) + 3 * s * lobules(c) < 0  # noqa: E731
    return [Layer(T.PANCREAS, inside, tube_box(points, radii + 4), into=ABDOMEN)]


def colon(f: Frame, rng) -> list[Layer]:
    """Ascending colon up to the liver's lower tip, transverse in front, descending on the left."""
    width, front, back = f.cavity
    s, h = f.size, f.liver_height
    flexure = -h * rng.uniform(0.75, 0.95)
    points = [
        (-0.68 * width, 0.1 * back, -h - 400), (-0.65 * width, 0.0, flexure),
        (-0.3 * width, -0.6 * front, flexure - 20 * s), (0.3 * width, -0.6 * front, flexure - 10 * s),
        (0.68 * width, 0.15 * back, f.dome_left - 100 * s), (0.72 * width, 0.25 * back, -h - 400),
    ]
    points = [np.array(p) + rng.uniform(-10, 10, 3) * s for p in points]
    radii = [rng.uniform(16, 24) * s] * len(points)
    stool = SmoothField(rng, (15, 40))
    box = tube_box(points, radii)
    distance = reuse_last(lambda c: tube(c, points, radii))
    return [
        Layer(T.BOWEL_WALL, lambda c: distance(c) < 0, box, into=ABDOMEN),
        Layer(T.FLUID, lambda c: distance(c) < -3 * s, box, into=(T.BOWEL_WALL,)),
        Layer(T.GAS, lambda c: (distance(c) < -3 * s) & (stool(c) > 0.3), box, into=(T.FLUID,)),
    ]


def small_bowel(f: Frame, rng) -> list[Layer]:
    """Packed loops filling the free abdomen: the lobes of a warped egg-crate pattern, each
    with a wall and fluid (sometimes gas) content, thin mesenteric fat between them."""
    top = -f.liver_height * rng.uniform(0.35, 0.5)
    wavenumber = np.float32(2 * np.pi / (rng.uniform(55, 75) * f.size))
    warps = [SmoothField(rng, (60, 140)) for _ in range(3)]
    gas = SmoothField(rng, (20, 50))
    warp = np.float32(12 * f.size)

    @reuse_last
    def loops(c):
        x, y, z = (axis + warp * field(c) for axis, field in zip((c.X, c.Y, c.Z), warps))
        retroperitoneum = y > f.spine_y - 5 * f.size  # the kidneys keep their fat
        return ~retroperitoneum * (np.cos(wavenumber * x) * np.cos(wavenumber * y) * np.cos(wavenumber * z))

    box = ((-np.inf, top), UNBOUNDED[1], UNBOUNDED[2])
    return [
        Layer(T.BOWEL_WALL, lambda c: np.abs(loops(c)) > 0.07, box, into=ABDOMEN),
        Layer(T.FLUID, lambda c: np.abs(loops(c)) > 0.25, box, into=(T.BOWEL_WALL,)),
        Layer(T.GAS, lambda c: (np.abs(loops(c)) > 0.25) & (gas(c) > 1.6), box, into=(T.FLUID,)),
    ]


def table(f: Frame, rng) -> list[Layer]:
    """The curved patient table under the back: carbon shells around a foam core."""
    top = f.back + rng.uniform(0, 8)
    thickness = rng.uniform(15, 25)
    shell = 2.5

    def depth(c):
        return c.Y - (top - 4e-4 * c.X**2)

    return [
        Layer(T.TABLE, lambda c: (depth(c) > 0) & (depth(c) < thickness), into=(T.AIR,)),
        Layer(T.FOAM, lambda c: (depth(c) > shell) & (depth(c) < thickness - shell), into=(T.TABLE,)),
    ]


def table_depth(f: Frame) -> float:
    """How far below the body outline the table reaches (for the field of view)."""
    return 8 + 25 + 5


def anatomy_layers(f: Frame, rng, liver) -> list[Layer]:
    """All layers in painting order; ``liver(frame, rng)`` supplies the liver's own layers."""
    return (
        body(f) + heart(f, rng) + liver(f, rng) + spleen(f, rng) + stomach(f, rng) + pancreas(f, rng)
        + kidneys(f, rng) + great_vessels(f, rng) + spine(f, rng) + ribs(f, rng) + colon(f, rng)
        + small_bowel(f, rng) + table(f, rng)
    )
