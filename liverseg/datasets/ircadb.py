"""3D-IRCADb-01 patients as :class:`Case` objects (labels in the LiTS convention).

A patient folder ``3Dircadb1.N`` holds ``PATIENT_DICOM`` (the CT series) and ``MASKS_DICOM``
(one DICOM series per structure: ``liver``, ``livertumor01``, ``portalvein``, ...), either
as folders or as the ``.zip`` files the dataset ships, each zip holding its own top folder.
The whole download may also be a folder of ``3Dircadb1.N.zip`` files (zips inside a zip).
Zips are extracted to a temporary folder, never next to the data.

Label: 1 where the ``liver`` mask is set, 2 where any lesion mask is set (lesions win);
a mask voxel is set when nonzero (the masks hold 0/255, sometimes 0/1).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from liverseg.datasets.base import Case
from liverseg.datasets.download import extract
from liverseg.errors import (
    DatasetLayoutError,
    LiversegError,
    MissingFileError,
)
from liverseg.io import read_label, read_volume
from liverseg.labels import LESION, LIVER

#: Which ``MASKS_DICOM`` folders are lesions. The name is lower-cased and stripped of digits,
#: spaces, ``_`` and ``-`` (``livertumor01`` → ``livertumor``), then must be a lesion word,
#: optionally after ``liver``: tumour/tumor(s) (``livertumor01``, ``livertumors``, ``tumor``),
#: cyst/kyst(e)(s) (``livercyst``, ``liverkyst``: French *kyste*), or metasta…
#: (``metastasis``, ``metastasectomie``, the site of resected metastases). Other organs and
#: vessels (``portalvein``, ``venoussystem``, ``artery``, ``gallbladder``, ``kidneycyst``)
#: and benign ``hyperplasie`` are not lesions: LiTS' lesion class is tumours and cysts.
LESION_MASK_PATTERN = re.compile(r"(liver)?(tumou?rs?|cysts?|kystes?|kysts?|metasta[a-z]*)")
#: The liver mask folder (same normalisation, so ``Liver`` or ``liver1`` also count).
LIVER_MASK_NAME = "liver"

#: A patient folder ``3Dircadb1.N`` or its zip ``3Dircadb1.N.zip`` (group 1: the patient number).
PATIENT_PATTERN = re.compile(r"^3Dircadb1\.(\d+)(\.zip)?$", re.IGNORECASE)
#: What a downloaded 3Dircadb1.N.zip must give us (LABELLED_DICOM and MESHES_VTK are skipped).
_NEEDED = frozenset({"PATIENT_DICOM", "PATIENT_DICOM.zip", "MASKS_DICOM", "MASKS_DICOM.zip"})


def is_lesion_mask(name: str) -> bool:
    """Whether a ``MASKS_DICOM`` sub-folder marks a liver lesion (see :data:`LESION_MASK_PATTERN`)."""
    return LESION_MASK_PATTERN.fullmatch(_normalise(name)) is not None


def is_liver_mask(name: str) -> bool:
    """Whether a ``MASKS_DICOM`` sub-folder is the liver itself."""
    return _normalise(name) == LIVER_MASK_NAME


def load_case(folder: str | os.PathLike) -> Case:
    """One patient (a ``3Dircadb1.N`` folder, or its ``3Dircadb1.N.zip``) as a Case.

    Raises:
        MissingFileError: ``folder`` does not exist.
        DatasetLayoutError: no PATIENT_DICOM, no MASKS_DICOM, or no liver mask.
        and the errors of :func:`liverseg.io.read_volume`, naming the file inside a zip
        as ``archive.zip:member``.
    """
    folder = Path(folder)
    if not folder.exists():
        raise MissingFileError("no such patient folder", folder)
    with contextlib.ExitStack() as stack:
        if folder.is_file():
            patient, extracted = _unpack_patient_zip(folder, stack)
            inside = patient.relative_to(extracted).as_posix()
            shown = Path(folder if inside == "." else f"{folder}:{inside}")
        else:
            patient = shown = folder
        image_folder = _series_folder(patient, "PATIENT_DICOM", stack, shown)
        masks_folder = _series_folder(patient, "MASKS_DICOM", stack, shown)
        with _errors_named_in(image_folder):
            image = read_volume(image_folder.path)
        image.path = image_folder.shown
        label = _label(masks_folder, image, shown)
    return Case(_case_id(folder), image, label)


def find_patients(root: str | os.PathLike) -> dict[int, Path]:
    """Patient number → ``3Dircadb1.N`` folder or ``3Dircadb1.N.zip`` in ``root`` or one level below.

    Where both a folder and its zip exist, the folder is used; nothing found is an empty dict.

    Raises:
        MissingFileError: ``root`` does not exist.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError("dataset folder does not exist", root)
    found: dict[int, Path] = {}
    for path in sorted([*root.iterdir(), *(p for d in root.iterdir() if d.is_dir() for p in d.iterdir())]):
        match = PATIENT_PATTERN.match(path.name)
        if match and (path.is_dir() or zipfile.is_zipfile(path)):
            number = int(match.group(1))
            if number not in found or found[number].is_file():
                found[number] = path
    return dict(sorted(found.items()))


def find_cases(root: str | os.PathLike) -> list[tuple[str, Path]]:
    """``(case_id, path)`` of every patient of :func:`find_patients`, sorted by patient number.

    Raises:
        MissingFileError: ``root`` does not exist.
        DatasetLayoutError: no patient found.
    """
    found = find_patients(root)
    if not found:
        raise DatasetLayoutError("no 3Dircadb1.N patient folders or 3Dircadb1.N.zip files found", root)
    return [(f"ircadb-{n}", path) for n, path in found.items()]


def iter_cases(root: str | os.PathLike, progress: bool = True) -> Iterator[Case]:
    """Load every patient of :func:`find_cases` in turn, with a progress bar."""
    for _, path in tqdm(find_cases(root), desc="3D-IRCADb patients", unit="case", disable=not progress):
        yield load_case(path)


# --------------------------------------------------------------------------- internals


class _Located:
    """A folder to read (``path``) and how to name it to the user (``shown``: maybe inside a zip)."""

    def __init__(self, path: Path, shown: Path, extracted_to: Path | None = None, prefix: str = ""):
        # a file ``extracted_to / member`` is shown to the user as ``prefix + member``
        self.path, self.shown, self.extracted_to, self.prefix = path, shown, extracted_to, prefix


def _normalise(name: str) -> str:
    return re.sub(r"[\d\s_\-]+", "", name.lower())


def _case_id(path: Path) -> str:
    match = PATIENT_PATTERN.match(path.name)
    return f"ircadb-{int(match.group(1))}" if match else path.name.removesuffix(".zip")


def _label(masks: _Located, image, patient: Path) -> np.ndarray:
    names = sorted(p.name for p in masks.path.iterdir() if p.is_dir() and not p.name.startswith("."))
    liver_names = [n for n in names if is_liver_mask(n)]
    if not liver_names:
        raise DatasetLayoutError(f"no liver mask in MASKS_DICOM (found: {', '.join(names) or 'nothing'})", patient)
    label = np.zeros(image.shape, np.uint8)
    for name in liver_names:
        label[_mask(masks, name, image)] = LIVER
    for name in filter(is_lesion_mask, names):
        label[_mask(masks, name, image)] = LESION
    return label


def _mask(masks: _Located, name: str, image) -> np.ndarray:
    with _errors_named_in(masks):
        return read_label(masks.path / name, like=image) != 0


def _series_folder(patient: Path, name: str, stack: contextlib.ExitStack, shown: Path) -> _Located:
    """``patient/name`` as a folder, or extracted from ``patient/name.zip`` into a temp folder."""
    if (patient / name).is_dir():
        if patient == shown:
            return _Located(patient / name, shown / name)
        return _Located(patient / name, shown / name, patient, f"{shown}/")
    archive = patient / f"{name}.zip"
    if not archive.is_file():
        raise DatasetLayoutError(f"neither {name}/ nor {name}.zip found", shown)
    target = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="liverseg-ircadb-")))
    try:
        extract(archive, target, progress=False)
    except LiversegError as error:
        raise type(error)(error.problem, shown / archive.name) from error
    inner = target / name if (target / name).is_dir() else target  # zips hold their own top folder
    return _Located(inner, shown / archive.name, target, f"{shown / archive.name}:")


def _unpack_patient_zip(archive: Path, stack: contextlib.ExitStack) -> tuple[Path, Path]:
    """A downloaded ``3Dircadb1.N.zip``: extract only the image and mask zips/folders."""
    target = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="liverseg-ircadb-")))
    extract(archive, target, keep=lambda parts: not _NEEDED.isdisjoint(parts), progress=False)
    for candidate in (target, *sorted(p for p in target.rglob("*") if p.is_dir())):
        if any((candidate / n).exists() for n in ("PATIENT_DICOM", "PATIENT_DICOM.zip")):
            return candidate, target
    raise DatasetLayoutError("archive holds no PATIENT_DICOM", archive)


@contextlib.contextmanager
def _errors_named_in(located: _Located):
    """Errors about files extracted from a zip name the zip and the member, not the temp copy."""
    try:
        yield
    except LiversegError as error:
        if located.extracted_to is None or error.path is None:
            raise
        try:
            member = Path(error.path).relative_to(located.extracted_to)
        except ValueError:
            raise error from None
        raise type(error)(error.problem, f"{located.prefix}{member.as_posix()}") from error
