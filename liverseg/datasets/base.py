"""The ``Case`` every dataset module yields."""

from __future__ import annotations

import dataclasses

import numpy as np

from liverseg.errors import InvalidDataError, ShapeError
from liverseg.io import Volume
from liverseg.labels import BACKGROUND, LESION, LIVER


@dataclasses.dataclass
class Case:
    """One patient: a CT image and its label (0 background, 1 liver, 2 lesion: LiTS convention)."""

    case_id: str
    image: Volume
    label: np.ndarray | None

    def __post_init__(self):
        if self.label is None:
            return
        source = self.image.path
        if self.label.shape != self.image.array.shape:
            raise ShapeError(
                f"label shape {self.label.shape} differs from image shape {self.image.array.shape}",
                source,
            )
        values = np.unique(self.label)
        if not np.isin(values, (BACKGROUND, LIVER, LESION)).all():
            raise InvalidDataError(f"label values {values.tolist()} are not within {{0, 1, 2}}", source)
        self.label = self.label.astype(np.uint8, copy=False)
