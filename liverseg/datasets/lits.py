"""LiTS 2017 (and its Medical Segmentation Decathlon copy, Task03_Liver) as :class:`Case` objects.

LiTS ships ``volume-N.nii`` / ``segmentation-N.nii`` pairs, in two training batches or any
folder layout a user unpacks them into; the Decathlon ships ``imagesTr/liver_N.nii.gz`` and
``labelsTr/liver_N.nii.gz``. Labels are already 0 background, 1 liver, 2 lesion.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from liverseg.datasets.base import Case
from liverseg.errors import DatasetLayoutError, InvalidDataError, MissingFileError, ShapeError
from liverseg.io import read_label, read_volume
from liverseg.labels import BACKGROUND, LESION, LIVER

#: File names (group 1: the case number N). The challenge's training pairs
#: ``volume-N.nii``/``segmentation-N.nii``, its unlabelled ``test-volume-N.nii``, and the
#: Decathlon's ``liver_N.nii.gz`` (in ``imagesTr/``, ``labelsTr/`` and ``imagesTs/``).
VOLUME_PATTERN = re.compile(r"^volume-(\d+)\.nii(\.gz)?$", re.IGNORECASE)
SEGMENTATION_PATTERN = re.compile(r"^segmentation-(\d+)\.nii(\.gz)?$", re.IGNORECASE)
TEST_VOLUME_PATTERN = re.compile(r"^test-volume-(\d+)\.nii(\.gz)?$", re.IGNORECASE)
MSD_CASE_PATTERN = re.compile(r"^liver_(\d+)\.nii(\.gz)?$", re.IGNORECASE)
#: The Decathlon's folders of training images, training labels and test images.
MSD_FOLDERS = ("imagesTr", "labelsTr", "imagesTs")


def load_case(volume_path: str | os.PathLike, segmentation_path: str | os.PathLike | None = None,
              case_id: str | None = None) -> Case:
    """One LiTS (or Decathlon) pair as a Case; the label is read voxel-for-voxel onto the volume.

    The segmentation gets the volume's reorientation (not its own header's), which is what
    the challenge means: label voxel ``[i, j, k]`` belongs to volume voxel ``[i, j, k]``.
    Without ``segmentation_path`` the case has no label (test volumes).
    """
    volume_path = Path(volume_path)
    image = read_volume(volume_path)
    label = None
    if segmentation_path is not None:
        segmentation_path = Path(segmentation_path)
        try:
            raw = read_label(segmentation_path, like=image)
        except ShapeError as error:
            problem = f"segmentation does not match {volume_path}: {error.problem}"
            raise ShapeError(problem, segmentation_path) from error
        label = _as_label(raw, segmentation_path)
    return Case(case_id or _case_id(volume_path), image, label)


def find_cases(root: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """All labelled cases under ``root``: ``(case_id, volume_path, segmentation_path)``, sorted.

    Finds ``volume-N``/``segmentation-N`` anywhere below ``root`` (``case_id`` ``"lits-N"``) and
    the Decathlon's ``imagesTr/liver_N``/``labelsTr/liver_N`` (``"msd-N"``); ``imagesTs`` (no
    labels) and macOS ``._*`` files are ignored.

    Raises:
        MissingFileError: ``root`` does not exist.
        DatasetLayoutError: no cases, an unpaired file, or the same case twice.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError("dataset folder does not exist", root)
    images: dict[str, Path] = {}
    labels: dict[str, Path] = {}
    for path in sorted(root.rglob("*.nii*")):
        if path.name.startswith(".") or not path.is_file():
            continue
        found = _classify(path)
        if found is None:
            continue
        case_id, kind = found
        table = images if kind == "image" else labels
        if case_id in table:
            raise DatasetLayoutError(f"case {case_id} found twice: {table[case_id]} and {path}", root)
        table[case_id] = path
    unpaired = sorted(set(images) ^ set(labels), key=_sort_key)
    if unpaired:
        described = ", ".join(str(images.get(c) or labels.get(c)) for c in unpaired[:5])
        raise DatasetLayoutError(f"{len(unpaired)} file(s) without their image or segmentation: {described}", root)
    if not images:
        raise DatasetLayoutError(
            "no LiTS cases (volume-N.nii / segmentation-N.nii) or Decathlon Task03_Liver cases "
            "(imagesTr/liver_N.nii.gz with labelsTr/liver_N.nii.gz) found",
            root,
        )
    return [(case_id, images[case_id], labels[case_id]) for case_id in sorted(images, key=_sort_key)]


def iter_cases(root: str | os.PathLike, progress: bool = True) -> Iterator[Case]:
    """Load every case of :func:`find_cases` in turn, with a progress bar."""
    cases = find_cases(root)
    for case_id, volume_path, segmentation_path in tqdm(cases, desc="LiTS cases", unit="case", disable=not progress):
        yield load_case(volume_path, segmentation_path, case_id=case_id)


def _classify(path: Path) -> tuple[str, str] | None:
    if match := VOLUME_PATTERN.match(path.name):
        return f"lits-{int(match.group(1))}", "image"
    if match := SEGMENTATION_PATTERN.match(path.name):
        return f"lits-{int(match.group(1))}", "label"
    if match := MSD_CASE_PATTERN.match(path.name):
        folder = path.parent.name
        if folder == MSD_FOLDERS[0]:
            return f"msd-{int(match.group(1))}", "image"
        if folder == MSD_FOLDERS[1]:
            return f"msd-{int(match.group(1))}", "label"
    return None


def _case_id(volume_path: Path) -> str:
    found = _classify(volume_path)
    if found is not None:
        return found[0]
    name = volume_path.name
    for suffix in (".gz", ".nii"):
        name = name.removesuffix(suffix)
    return name


def _sort_key(case_id: str) -> tuple[str, int]:
    prefix, _, number = case_id.rpartition("-")
    return prefix, int(number) if number.isdigit() else -1


def _as_label(raw: np.ndarray, path: Path) -> np.ndarray:
    """LiTS labels must already be 0/1/2 integers; say which values are wrong otherwise."""
    values = np.unique(raw)
    if not np.isin(values, (BACKGROUND, LIVER, LESION)).all():
        raise InvalidDataError(f"segmentation values {values.tolist()[:10]} are not within {{0, 1, 2}}", path)
    return raw.astype(np.uint8)
