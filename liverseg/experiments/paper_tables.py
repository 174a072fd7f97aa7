"""The paper's result tables (Tables 3–6), as printed, to set beside ours.

Values are copied from the paper's text (decimal commas made points). The paper does not say
how its scores are aggregated (per slice, per case or over all pixels); its liver mIoU 0.907
equals D / (2 − D) of its Dice 0.9511, the foreground IoU of a single overlap, so ``miou``
here is most likely the foreground IoU — the book discusses it in the report chapter.
"""

from __future__ import annotations

# Table 3. Impact of patch level on segmentation performance (Axial plan)
TABLE_3 = {
    "caption": "Table 3. Impact of patch level on segmentation performance (Axial plan)",
    "columns": ("Level-1 (256)", "Level-2 (128)", "Level-3 (64)"),
    "rows": {
        "accuracy": (0.9512, 0.952, 0.9732),
        "dice": (0.9301, 0.9102, 0.9511),
        "miou": (0.8810, 0.870, 0.907),
    },
}

# Table 4. Effects of multi-level custom loss function (Axial plan)
TABLE_4 = {
    "caption": "Table 4. Effects of multi-level custom loss function (Axial plan)",
    "columns": ("Without", "With"),
    "rows": {
        "accuracy": (0.9020, 0.9732),
        "dice": (0.9430, 0.9511),
        "miou": (0.8913, 0.907),
    },
}

# Table 5. Effects of iterations in the reiterative learning (Axial plan): N = 0..7,
# (validation, test) for each metric
TABLE_5 = {
    "caption": "Table 5. Effects of iterations in the reiterative learning (Axial plan)",
    "iterations": tuple(range(8)),
    "accuracy": {"val": (0.9520, 0.9572, 0.9600, 0.9690, 0.9701, 0.9732, 0.9730, 0.9710),
                 "test": (0.9410, 0.9481, 0.9575, 0.9591, 0.9610, 0.9621, 0.9732, 0.9730)},
    "dice": {"val": (0.8402, 0.8682, 0.8953, 0.9120, 0.9420, 0.9511, 0.9641, 0.9672),
             "test": (0.8510, 0.8964, 0.9015, 0.9265, 0.9310, 0.9331, 0.9244, 0.9202)},
    "miou": {"val": (0.8210, 0.8470, 0.8670, 0.8810, 0.8750, 0.9700, 0.9640, 0.9680),
             "test": (0.8530, 0.8723, 0.8870, 0.8920, 0.8910, 0.9070, 0.9010, 0.9020)},
}

# Table 6. Performance comparison on two datasets
TABLE_6 = {
    "caption": "Table 6. Performance comparison on two datasets",
    "columns": ("accuracy", "dice", "miou"),
    "rows": {
        ("liver", "LiTS"): (0.9732, 0.9511, 0.9070),
        ("liver", "3D-IRCADb"): (0.9701, 0.9330, 0.9210),
        ("lesion", "LiTS"): (0.9471, 0.9313, 0.8718),
        ("lesion", "3D-IRCADb"): (0.9524, 0.9417, 0.9249),
    },
}
