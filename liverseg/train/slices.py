"""Slices of one plane, at the model's input size, for a cascade to learn from.

A :class:`SliceSet` holds the network inputs, the same slices in HU (for the CRF of the ROI
prior) and the 0/1/2 labels, each ``(N, S, S)`` with ``S`` the profile's ``image_size``.
Built in memory from :class:`~liverseg.datasets.base.Case` objects: each volume is
preprocessed once (window → median → z-score, ``liverseg.preprocess``), cut along the plane
(``liverseg.datasets.planes``) and resized to ``S × S`` (``liverseg.resample``),
exactly as :mod:`liverseg.inference` does with a volume to segment.

Which slices a network learns from may depend on the labels (``training_indices``); what it
is validated or tested on never does: validation and test use every slice of their patients.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np
from liverseg.datasets.planes import to_slices
from liverseg.errors import InvalidDataError
from liverseg.resample import to_model_size
from liverseg.labels import LESION, LIVER
from liverseg.preprocess import PreprocessConfig, liver_region, mask_outside, preprocess

STRUCTURES = ("liver", "lesion")


@dataclasses.dataclass
class SliceSet:
    """Slices of several patients along one plane (all arrays ``(N, S, S)`` but ``case_ids``)."""

    images: np.ndarray  # float32 network input
    hu: np.ndarray  # float32 HU, for the CRF
    labels: np.ndarray  # uint8 0/1/2
    case_ids: np.ndarray  # (N,) the patient of each slice

    def __len__(self) -> int:
        return len(self.images)

    def take(self, index) -> "SliceSet":
        """The slices at ``index`` (an index array or boolean mask)."""
        return SliceSet(self.images[index], self.hu[index], self.labels[index], self.case_ids[index])

    def of_cases(self, case_ids: Iterable[str]) -> "SliceSet":
        """The slices of the given patients."""
        return self.take(np.isin(self.case_ids, list(case_ids)))

    def target(self, structure: str) -> np.ndarray:
        """``(N, S, S)`` float32 0/1 mask of ``"liver"`` (label ≥ 1) or ``"lesion"`` (label 2)."""
        return target_mask(self.labels, structure)


def target_mask(labels: np.ndarray, structure: str) -> np.ndarray:
    """0/1 float32 mask of a structure in a 0/1/2 label array."""
    if structure == "liver":
        return (labels >= LIVER).astype(np.float32)
    if structure == "lesion":
        return (labels == LESION).astype(np.float32)
    raise InvalidDataError(f"structure must be one of {STRUCTURES}, got {structure!r}")


def case_slices(
    case,
    plane: str,
    size: int,
    preprocess_config: PreprocessConfig | None = None,
    structure: str = "liver",
    liver_margin: int = 2,
) -> SliceSet:
    """One case's slices along ``plane`` at ``size × size``.

    For ``structure="lesion"`` the input is masked to the reference liver grown by
    ``liver_margin`` voxels (training; :mod:`liverseg.inference` masks with the predicted liver).
    """
    if case.label is None:
        raise InvalidDataError(f"case {case.case_id} has no label to learn from")
    hu = np.asarray(case.image.array, np.float32)
    image = preprocess(hu, preprocess_config, source=case.image.path)
    if structure == "lesion":
        region = liver_region(case.label >= LIVER, liver_margin)
        image = mask_outside(image, region)
        hu = mask_outside(hu, region, fill=-1000.0)
    elif structure not in STRUCTURES:
        raise InvalidDataError(f"structure must be one of {STRUCTURES}, got {structure!r}")
    images = to_model_size(to_slices(image, plane), size, order=1)
    hus = to_model_size(to_slices(hu, plane), size, order=1)
    labels = to_model_size(to_slices(case.label, plane), size, order=0).astype(np.uint8)
    return SliceSet(images, hus, labels, np.full(len(images), case.case_id, dtype=object))


def build_slices(cases, plane: str, size: int, preprocess_config: PreprocessConfig | None = None,
                 structure: str = "liver", liver_margin: int = 2) -> SliceSet:
    """:func:`case_slices` of several cases, concatenated in their order."""
    parts = [case_slices(c, plane, size, preprocess_config, structure, liver_margin) for c in cases]
    if not parts:
        raise InvalidDataError("no cases to cut into slices")
    return SliceSet(
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.hu for p in parts]),
        np.concatenate([p.labels for p in parts]),
        np.concatenate([p.case_ids for p in parts]),
    )


def training_indices(labels: np.ndarray, structure: str, empty_fraction: float,
                     seed: int = 0) -> np.ndarray:
    """Indices of the training slices: every slice with the structure, plus ``empty_fraction``
    of the others (at least one when there are any), drawn with ``seed``; sorted.

    Raises:
        InvalidDataError: no slice contains the structure.
    """
    present = target_mask(labels, structure).any(axis=(1, 2))
    positive = np.flatnonzero(present)
    if len(positive) == 0:
        raise InvalidDataError(f"no training slice contains {structure}: nothing to learn")
    negative = np.flatnonzero(~present)
    n_empty = int(round(empty_fraction * len(negative)))
    if empty_fraction > 0 and len(negative):
        n_empty = max(n_empty, 1)
    chosen = np.random.default_rng(seed).choice(negative, n_empty, replace=False)
    return np.sort(np.concatenate([positive, chosen]).astype(np.int64))
