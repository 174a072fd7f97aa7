"""Slices of one plane, at the model's input size, for a cascade to learn from.

A :class:`SliceSet` holds the network inputs, the same slices in HU (for the CRF of the ROI
prior) and the 0/1/2 labels, each ``(N, S, S)`` with ``S`` the profile's ``image_size``.
Built in memory from :class:`~liverseg.datasets.base.Case` objects: each volume is
preprocessed once (window → median → z-score, ``liverseg.preprocess``), cut along the plane
(``liverseg.datasets.planes``) and resized to ``S × S`` (``liverseg.resample``),
exactly as :mod:`liverseg.inference` does with a volume to segment.

Which slices a network learns from may depend on the labels (``training_indices``); what it
is validated or tested on never does: validation and test use every slice of their patients.
The lesion networks' slices are every slice of the reference liver's view
(:mod:`liverseg.lesion_view`): their validation judges the second stage on its own, given the
true liver; the whole system, given its own liver, is judged on volumes
(:mod:`liverseg.experiments.system_results`).

Memory. :func:`build_slices` without a ``folder`` holds every slice in RAM (9 bytes a pixel:
float32 input and HU, uint8 label; a 512 × 512 slice is 2.4 MB, LiTS's ~58 000 axial slices
~135 GB). With a ``folder`` it writes the three stacks case by case into ``.npy`` files there
and returns read-only ``np.memmap`` views of them, holding at most one case's slices at a time;
:func:`liverseg.train.loop.fit` then reads one batch at a time. Layout::

    folder/index.json                     format, case ids and slice counts, plane, size,
                                          structure, liver margin, preprocessing; shapes, dtypes
    folder/images.npy  hu.npy  labels.npy  (N, S, S) float32, float32, uint8

Each file is written beside its name and renamed when complete (:mod:`liverseg.io.atomic`),
``index.json`` last, so a folder with an ``index.json`` is complete; it is reused by a later
call with the same cases and settings, and rebuilt otherwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np
from liverseg.datasets.planes import to_slices
from liverseg.errors import InvalidDataError
from liverseg.io.atomic import atomic_path, atomic_write_text
from liverseg.resample import to_model_size
from liverseg.labels import LESION, LIVER
from liverseg.lesion_view import lesion_view as lesion_view_of
from liverseg.lesion_view import region_box
from liverseg.preprocess import PreprocessConfig, liver_region, preprocess

STRUCTURES = ("liver", "lesion")
INDEX = "index.json"
FORMAT = "liverseg-slices/1"
ARRAYS = ("images", "hu", "labels")


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
        """The slices at ``index`` (an index array or boolean mask).

        On a set built in a folder (``np.memmap`` arrays) the chosen slices are read into
        memory: ``len(index) × S² × 9`` bytes (a sorted index array reads the files in order).
        A slice object (``take(slice(a, b))``) keeps memmap views and reads nothing.
        """
        return SliceSet(self.images[index], self.hu[index], self.labels[index], self.case_ids[index])

    def of_cases(self, case_ids: Iterable[str]) -> "SliceSet":
        """The slices of the given patients."""
        return self.take(np.isin(self.case_ids, list(case_ids)))

    def target(self, structure: str) -> np.ndarray:
        """``(N, S, S)`` float32 0/1 mask of ``"liver"`` (label ≥ 1) or ``"lesion"`` (label 2);
        in memory (4 bytes a pixel) even for memmap labels: to train, pass ``labels`` and
        :func:`target_mask` as :func:`liverseg.train.loop.fit`'s per-batch ``targets``."""
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
    lesion_view: str = "liver_box",
) -> SliceSet:
    """One case's slices along ``plane`` at ``size × size``.

    For ``structure="lesion"`` the slices are the lesion networks' view of the reference liver
    grown by ``liver_margin`` voxels (:func:`liverseg.lesion_view.lesion_view`: masked, and for
    ``lesion_view="liver_box"`` cropped to its box; :mod:`liverseg.inference` cuts the
    predicted liver's the same way); a case without liver then has no slices.
    """
    if case.label is None:
        raise InvalidDataError(f"case {case.case_id} has no label to learn from")
    if structure not in STRUCTURES:
        raise InvalidDataError(f"structure must be one of {STRUCTURES}, got {structure!r}")
    hu = np.asarray(case.image.array, np.float32)
    label = np.asarray(case.label)
    if structure == "lesion" and not (label >= LIVER).any():
        return _empty(size)
    image = preprocess(hu, preprocess_config, source=case.image.path)
    if structure == "lesion":
        view = lesion_view_of(image, hu, label >= LIVER, liver_margin, lesion_view)
        image, hu, label = view.image, view.hu, view.crop(label)
    images = to_model_size(to_slices(image, plane), size, order=1)
    hus = to_model_size(to_slices(hu, plane), size, order=1)
    labels = to_model_size(to_slices(label, plane), size, order=0).astype(np.uint8)
    return SliceSet(images, hus, labels, np.full(len(images), case.case_id, dtype=object))


def slice_count(case, plane: str, structure: str = "liver", liver_margin: int = 2,
                lesion_view: str = "liver_box") -> int:
    """How many slices :func:`case_slices` gives, without cutting them."""
    shape = np.shape(case.image.array)
    if structure == "lesion":
        liver = np.asarray(case.label) >= LIVER
        if not liver.any():
            return 0
        if lesion_view == "liver_box":
            shape = tuple(s.stop - s.start for s in region_box(liver_region(liver, liver_margin)))
    return int(to_slices(np.empty(shape, bool), plane).shape[0])


def _empty(size: int) -> SliceSet:
    return SliceSet(np.zeros((0, size, size), np.float32), np.zeros((0, size, size), np.float32),
                    np.zeros((0, size, size), np.uint8), np.zeros(0, dtype=object))


def build_slices(cases, plane: str, size: int, preprocess_config: PreprocessConfig | None = None,
                 structure: str = "liver", liver_margin: int = 2,
                 folder: str | os.PathLike | None = None,
                 lesion_view: str = "liver_box") -> SliceSet:
    """:func:`case_slices` of several cases, concatenated in their order.

    ``folder`` ``None``: in-memory arrays. Otherwise the stacks are written case by case into
    ``.npy`` files in ``folder`` and returned as read-only ``np.memmap`` arrays (same values,
    dtypes and order; see the module doc); building holds one case's slices at a time, and a
    complete folder made from the same cases and settings is reused as it is.
    """
    cases = list(cases)
    if not cases:
        raise InvalidDataError("no cases to cut into slices")
    if folder is not None:
        return _build_in_folder(Path(folder), cases, plane, size, preprocess_config, structure,
                                liver_margin, lesion_view)
    parts = [case_slices(c, plane, size, preprocess_config, structure, liver_margin, lesion_view)
             for c in cases]
    return SliceSet(
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.hu for p in parts]),
        np.concatenate([p.labels for p in parts]),
        np.concatenate([p.case_ids for p in parts]),
    )


def _build_in_folder(folder: Path, cases, plane, size, preprocess_config, structure,
                     liver_margin, lesion_view) -> SliceSet:
    counts = [slice_count(c, plane, structure, liver_margin, lesion_view) for c in cases]
    key = {"format": FORMAT, "case_ids": [str(c.case_id) for c in cases], "counts": counts,
           "plane": plane, "size": int(size), "structure": structure,
           "liver_margin": int(liver_margin), "preprocess": _settings_of(preprocess_config)}
    if structure == "lesion":
        key["lesion_view"] = lesion_view
    key = json.loads(json.dumps(key))  # tuples → lists, as read back
    found = _open_folder(folder, key)
    if found is not None:
        return found
    (folder / INDEX).unlink(missing_ok=True)  # the folder is incomplete until it is back
    total, start, stacks = sum(counts), 0, {}
    if total == 0:
        raise InvalidDataError(f"the cases {key['case_ids']} give no {structure} slices")
    with contextlib.ExitStack() as temporaries:
        paths = {name: temporaries.enter_context(atomic_path(folder / f"{name}.npy"))
                 for name in ARRAYS}
        for case, count in zip(cases, counts):
            part = case_slices(case, plane, size, preprocess_config, structure, liver_margin,
                               lesion_view)
            if len(part) != count:
                raise InvalidDataError(f"case {case.case_id}: {len(part)} slices, expected {count}")
            for name in ARRAYS:
                array = getattr(part, name)
                if name not in stacks:
                    stacks[name] = np.lib.format.open_memmap(
                        paths[name], mode="w+", dtype=array.dtype,
                        shape=(total,) + array.shape[1:])
                stacks[name][start:start + count] = array
            start += count
            del part
        layout = {name: {"shape": list(array.shape), "dtype": array.dtype.str}
                  for name, array in stacks.items()}
        for array in stacks.values():
            array.flush()
        stacks.clear()  # close the maps before the renames
    atomic_write_text(folder / INDEX, json.dumps({**key, "arrays": layout}, indent=1))
    found = _open_folder(folder, key)
    if found is None:
        raise InvalidDataError("the slice folder just written does not read back", folder)
    return found


def _open_folder(folder: Path, key: dict) -> SliceSet | None:
    """The complete slice folder made with ``key``, or ``None`` (absent, other, incomplete)."""
    try:
        index = json.loads((folder / INDEX).read_text())
    except (OSError, ValueError):
        return None
    if {k: index.get(k) for k in key} != key:
        return None
    try:
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    except (OSError, ValueError):
        return None
    for name, array in arrays.items():
        expected = index.get("arrays", {}).get(name, {})
        if list(array.shape) != expected.get("shape") or array.dtype.str != expected.get("dtype"):
            return None
    case_ids = np.repeat(np.array(key["case_ids"], dtype=object), key["counts"])
    if len(case_ids) != len(arrays["images"]):
        return None
    return SliceSet(arrays["images"], arrays["hu"], arrays["labels"], case_ids)


def _settings_of(config) -> dict | None:
    if config is None:
        return None
    if hasattr(config, "slice_key"):
        return config.slice_key()
    if hasattr(config, "to_dict"):
        return config.to_dict()
    return dataclasses.asdict(config)


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


def balanced_order(present: np.ndarray, batch_size: int, share: float, seed: int,
                   epoch: int) -> np.ndarray:
    """An epoch's row order in which every batch takes ``share`` of its rows from the slices
    where ``present`` (the structure is in them) and the rest from the others.

    As many rows as ``present`` has; each group is shuffled with ``(seed, epoch)`` and cycled
    when the batches ask for more of it than it holds (so a rare positive slice is seen
    several times an epoch, and some negatives wait for a later one). With no positive or no
    negative slice, every row comes from the group there is.
    """
    present = np.asarray(present, bool)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share}")
    n, batch_size = len(present), int(batch_size)
    rng = np.random.default_rng((seed, epoch, 3))
    groups = [rng.permutation(np.flatnonzero(present)), rng.permutation(np.flatnonzero(~present))]
    taken = [0, 0]
    order = []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        positives = int(round(share * size))
        for group, count in ((0, positives), (1, size - positives)):
            if not len(groups[group]):
                group = 1 - group
            rows = groups[group]
            picks = rows[(taken[group] + np.arange(count)) % len(rows)]
            taken[group] += count
            order.append(picks)
    return np.concatenate(order).astype(np.int64) if order else np.zeros(0, np.int64)
