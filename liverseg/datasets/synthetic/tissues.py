"""Tissue classes of the phantoms and their CT numbers (DESIGN.md, "Synthetic phantoms").

Each case draws one mean HU per tissue from these ranges, for its contrast phase:
``"portal_venous"`` (enhanced; most LiTS scans) or ``"unenhanced"``. Ranges quoted in
DESIGN.md are used as they stand; the unenhanced column, which DESIGN.md gives only for the
liver (50–70), follows usual non-contrast values (blood 35–50, kidney 25–40, ...).
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
