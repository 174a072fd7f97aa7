"""Tissue classes of the phantoms and their CT numbers per contrast phase.

Each case draws one mean HU per tissue from these ranges, for its contrast phase (chosen by
:class:`liverseg.config.PhantomConfig`). The liver's HU and its contrast to the spleen and the
vessels are what tells the phases apart (liver HU; spleen − liver; blood):

- ``unenhanced``: liver 50–70; spleen darker (about −10); blood 35–50.
- ``arterial`` (late arterial, ~35 s after the injection): liver 65–95; spleen clearly
  brighter (+25 to +95); aorta 230–350.
- ``portal_venous`` (~70 s): liver 90–130; spleen about as bright (+5 on average); 150–200.
- ``late`` (delayed / equilibrium, 3–5 min): liver 80–105; spleen alike (0 on average); 120–160.

Sources. ``portal_venous`` is DESIGN.md's table ("Synthetic phantoms"), used as it stands.
``unenhanced``: liver 50–70 HU, normally about 10 HU above the spleen (textbook figures, e.g.
Webb, Brant & Major, *Fundamentals of Body CT*; Piekarski et al., Radiology 1980;137:727, found
the liver consistently denser than the spleen in 100 normal adults); blood 35–50 and kidney
25–40 are usual non-contrast values. ``arterial`` (late arterial / portal-inflow phase, 25–40 s):
aorta 290–360 HU at its peak and the liver only 20–30 HU above its baseline (Radiopaedia, "Late
arterial phase"), the aorta here 230–350 so that it stays above 200; spleen 80–110 HU above its
baseline against 15–25 for the liver, a spleen-to-liver contrast of about 80 HU (AJR study "MDCT
of the liver and hypervascular hepatocellular carcinomas: optimizing scan delays for
bolus-tracking techniques of hepatic arterial and portal venous phases"); renal cortex,
pancreas and portal vein (~145 HU) at their arterial peaks. ``late``: the delayed phase at 3–5
min (phase timings as reviewed by Bae, Radiology 2010;256:32), after the portal-venous peak:
aorta and liver come down towards equilibrium, liver and spleen alike — typical values, less
well documented than the other phases. The phantoms have one blood tissue, so the IVC follows
the aorta (in a real arterial phase it is still dark below the renal veins), and one vessel
tissue inside the liver (portal and hepatic branches alike). A lesion's HU is set relative to
the case's liver, whatever the phase: hypodense by default, some hyperdense or rim-enhancing in
the mixture (:mod:`.lesions`); hypervascular lesions lighting up in the arterial phase alone are
not modelled.
"""

from __future__ import annotations

import enum

import numpy as np


class Tissue(enum.IntEnum):
    """Ids in a phantom's tissue map; lesion ``k`` is ``LESION + k``."""

    AIR = 0
    SKIN = 1
    FAT = 2  # subcutaneous
    VISCERAL_FAT = 3  # inside the abdominal cavity and mediastinum: where bowel may lie
    MUSCLE = 4
    LUNG = 5
    HEART = 6  # myocardium
    BLOOD = 7  # heart chambers, aorta, IVC, portal vein outside the liver
    LIVER = 8
    HEPATIC_VESSEL = 9  # portal / hepatic vein branches inside the liver: labelled liver
    SPLEEN = 10
    KIDNEY = 11
    PANCREAS = 12
    BOWEL_WALL = 13  # stomach, colon and small-bowel walls
    FLUID = 14  # bile, bowel content, urine, CSF
    GAS = 15  # bowel and stomach gas
    BONE = 16  # trabecular bone
    CORTEX = 17  # cortical bone
    DISC = 18  # intervertebral disc
    TABLE = 19  # carbon shell of the patient table
    FOAM = 20  # table core
    LESION = 32


#: phase → tissue → (low, high) HU from which the case's mean for that tissue is drawn.
TISSUE_HU: dict[str, dict[Tissue, tuple[float, float]]] = {
    "portal_venous": {
        Tissue.AIR: (-1000, -1000),
        Tissue.SKIN: (20, 60),
        Tissue.FAT: (-120, -80),
        Tissue.VISCERAL_FAT: (-120, -80),
        Tissue.MUSCLE: (40, 60),
        Tissue.LUNG: (-920, -860),
        Tissue.HEART: (90, 130),
        Tissue.BLOOD: (150, 200),
        Tissue.LIVER: (90, 130),
        Tissue.HEPATIC_VESSEL: (150, 200),
        Tissue.SPLEEN: (100, 130),
        Tissue.KIDNEY: (150, 250),
        Tissue.PANCREAS: (80, 120),
        Tissue.BOWEL_WALL: (40, 120),
        Tissue.FLUID: (0, 20),
        Tissue.GAS: (-1000, -950),
        Tissue.BONE: (300, 450),
        Tissue.CORTEX: (700, 1000),
        Tissue.DISC: (70, 110),
        Tissue.TABLE: (100, 300),
        Tissue.FOAM: (-900, -800),
    },
}
TISSUE_HU["unenhanced"] = {
    **TISSUE_HU["portal_venous"],
    Tissue.MUSCLE: (40, 55),
    Tissue.HEART: (35, 50),
    Tissue.BLOOD: (35, 50),
    Tissue.LIVER: (50, 70),
    Tissue.HEPATIC_VESSEL: (35, 50),
    Tissue.SPLEEN: (40, 55),
    Tissue.KIDNEY: (25, 40),
    Tissue.PANCREAS: (35, 50),
    Tissue.BOWEL_WALL: (30, 50),
}
TISSUE_HU["arterial"] = {
    **TISSUE_HU["portal_venous"],
    Tissue.MUSCLE: (45, 60),
    Tissue.HEART: (100, 150),
    Tissue.BLOOD: (230, 350),
    Tissue.LIVER: (65, 95),
    Tissue.HEPATIC_VESSEL: (100, 170),
    Tissue.SPLEEN: (120, 160),
    Tissue.KIDNEY: (140, 220),
    Tissue.PANCREAS: (100, 140),
    Tissue.BOWEL_WALL: (50, 130),
}
TISSUE_HU["late"] = {
    **TISSUE_HU["portal_venous"],
    Tissue.MUSCLE: (45, 60),
    Tissue.HEART: (80, 110),
    Tissue.BLOOD: (120, 160),
    Tissue.LIVER: (80, 105),
    Tissue.HEPATIC_VESSEL: (110, 150),
    Tissue.SPLEEN: (80, 105),
    Tissue.KIDNEY: (120, 180),
    Tissue.PANCREAS: (70, 100),
    Tissue.BOWEL_WALL: (40, 100),
}

#: lesions are hypodense: their mean lies this many HU below the case's liver mean.
LESION_CONTRAST_HU = (10.0, 60.0)

#: standard deviation (HU) of the fine-grained texture of each tissue (parenchyma, trabeculae).
TEXTURE_HU: dict[Tissue, float] = {
    Tissue.FAT: 6.0,
    Tissue.VISCERAL_FAT: 8.0,
    Tissue.MUSCLE: 5.0,
    Tissue.LUNG: 25.0,
    Tissue.LIVER: 5.0,
    Tissue.SPLEEN: 4.0,
    Tissue.KIDNEY: 8.0,
    Tissue.PANCREAS: 10.0,
    Tissue.FLUID: 3.0,
    Tissue.BONE: 50.0,
    Tissue.CORTEX: 60.0,
}

#: tissues whose enhancement follows the smooth, contrast-like variation across the body.
ENHANCING = (
    Tissue.HEART, Tissue.BLOOD, Tissue.LIVER, Tissue.HEPATIC_VESSEL, Tissue.SPLEEN,
    Tissue.KIDNEY, Tissue.PANCREAS, Tissue.BOWEL_WALL, Tissue.MUSCLE,
)

#: tissue ids that the label calls liver (LiTS counts the vessels inside the liver as liver).
LIVER_TISSUES = (Tissue.LIVER, Tissue.HEPATIC_VESSEL)
MAX_LESIONS = 256 - Tissue.LESION


def lookup_table(values: dict[int, float], default: float = 0.0, dtype=np.float32) -> np.ndarray:
    """A 256-entry table mapping tissue ids to ``values`` (``default`` elsewhere)."""
    table = np.full(256, default, dtype=dtype)
    for tissue, value in values.items():
        table[int(tissue)] = value
    return table
