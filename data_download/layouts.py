"""Checks that a downloaded dataset folder is complete before hours of training start.

Used by ``fetch_lits.py --verify`` and ``fetch_ircadb.py --verify`` (and after each
fetch). A check returns a :class:`Report`: what was found, and one line per problem
naming the file; an empty ``problems`` list means the folder is ready. File names and
patient folders are recognised by the same patterns and functions that read the data
(:mod:`liverseg.datasets.lits`, :mod:`liverseg.datasets.ircadb`).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np

from liverseg.datasets import ircadb, lits
from liverseg.errors import LiversegError

LITS_TRAINING_IDS = range(131)  # volume-0 ... volume-130 (Training Batch 1: 0-27, Batch 2: 28-130)
LITS_TEST_COUNT = 70  # test-volume-0 ... test-volume-69 (no labels)
IRCADB_PATIENT_IDS = range(1, 21)  # 3Dircadb1.1 ... 3Dircadb1.20


@dataclasses.dataclass
class Report:
    """Outcome of a layout check; ``ok`` when there is no problem."""

    dataset: str
    root: Path
    found: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        lines = [f"{self.dataset} at {self.root}:"]
        lines += [f"  found    {line}" for line in self.found]
        lines += [f"  PROBLEM  {line}" for line in self.problems[:40]]
        if len(self.problems) > 40:
            lines.append(f"  ... and {len(self.problems) - 40} more problems")
        lines.append("  OK: ready to use" if self.ok else f"  NOT READY: {len(self.problems)} problem(s)")
        return "\n".join(lines)


# --------------------------------------------------------------------------- LiTS


def check_lits(root: str | Path, *, deep: bool = False) -> Report:
    """LiTS 2017 training set: 131 volume/segmentation pairs, as the challenge or MSD ships them.

    Accepts the challenge release (``volume-N.nii`` and ``segmentation-N.nii`` anywhere
    below ``root``, e.g. in ``Training Batch 1/`` and ``Training Batch 2/``) and the
    Medical Segmentation Decathlon's Task03_Liver (``imagesTr/liver_N.nii.gz`` with
    ``labelsTr/liver_N.nii.gz``). Every file's NIfTI header is read; ``deep`` also reads
    every voxel, which catches a truncated ``.nii.gz`` at the cost of minutes.
    """
    root = Path(root)
    report = Report("LiTS 2017", root)
    if not root.is_dir():
        report.problems.append(f"{root}: folder not found")
        return report
    files = [p for p in root.rglob("*.nii*") if p.is_file() and not p.name.startswith("._")]
    images_tr, labels_tr, images_ts = lits.MSD_FOLDERS
    if any(lits.MSD_CASE_PATTERN.match(p.name) and p.parent.name in (images_tr, labels_tr) for p in files):
        images = _by_id(files, lits.MSD_CASE_PATTERN, images_tr, report)
        labels = _by_id(files, lits.MSD_CASE_PATTERN, labels_tr, report)
        tests = _by_id(files, lits.MSD_CASE_PATTERN, images_ts, report)
        report.found.append("Medical Segmentation Decathlon layout (imagesTr/, labelsTr/)")
        image_name, label_name = "imagesTr/liver_{}.nii.gz", "labelsTr/liver_{}.nii.gz"
        _check_msd_datalist(root, files, report)
    else:
        images = _by_id(files, lits.VOLUME_PATTERN, None, report)
        labels = _by_id(files, lits.SEGMENTATION_PATTERN, None, report)
        tests = _by_id(files, lits.TEST_VOLUME_PATTERN, None, report)
        report.found.append("LiTS challenge layout (volume-N.nii, segmentation-N.nii)")
        image_name, label_name = "volume-{}.nii", "segmentation-{}.nii"

    pairs = sorted(set(images) & set(labels))
    report.found.append(f"{len(pairs)} training pairs (expected {len(LITS_TRAINING_IDS)})")
    if tests:
        report.found.append(f"{len(tests)} unlabelled test volumes (expected {LITS_TEST_COUNT}; not needed)")
    for case in LITS_TRAINING_IDS:
        if case not in images:
            report.problems.append(f"{image_name.format(case)}: missing")
        if case not in labels:
            report.problems.append(f"{label_name.format(case)}: missing")
    for case in sorted(set(images) | set(labels)):
        if case not in LITS_TRAINING_IDS:
            report.problems.append(f"case {case}: outside the expected ids 0-130")

    for case in pairs:
        image = _check_nifti(images[case], deep, report)
        label = _check_nifti(labels[case], deep, report)
        if image is not None and label is not None and image != label:
            report.problems.append(f"{labels[case]}: shape {label} differs from {images[case].name} {image}")
    _check_find_cases(root, len(pairs), report)
    return report


def _by_id(files, pattern, folder, report) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for path in sorted(files):
        match = pattern.match(path.name)
        if not match or (folder is not None and path.parent.name != folder):
            continue
        case = int(match.group(1))
        if case in found:
            report.problems.append(f"{path}: duplicate of {found[case]}")
            continue
        found[case] = path
    return found


def _check_msd_datalist(root: Path, files, report) -> None:
    """MSD's ``dataset.json`` lists every training pair; each listed file must be there."""
    listing = next((p for p in root.rglob("dataset.json") if not p.name.startswith("._")), None)
    if listing is None:
        report.problems.append(f"{root}: dataset.json missing (the Task03_Liver archive has one)")
        return
    try:
        entries = json.loads(listing.read_text())["training"]
    except (ValueError, KeyError, TypeError) as error:
        report.problems.append(f"{listing}: unreadable ({error})")
        return
    for entry in entries:
        for key in ("image", "label"):
            path = listing.parent / entry[key]
            if not path.is_file():
                report.problems.append(f"{path}: listed in {listing.name} but missing")


def _check_nifti(path: Path, deep: bool, report) -> tuple[int, ...] | None:
    """Shape of a readable 3D NIfTI, or ``None`` after recording why it is not."""
    try:
        image = nib.load(path)
        shape = tuple(int(n) for n in image.shape)
        if len(shape) != 3:
            report.problems.append(f"{path}: {len(shape)}D image, expected 3D")
            return None
        if path.suffix == ".nii":
            needed = int(image.dataobj.offset) + int(np.prod(shape)) * image.get_data_dtype().itemsize
            if path.stat().st_size < needed:
                report.problems.append(f"{path}: truncated ({path.stat().st_size} of {needed} bytes)")
                return None
        if deep:
            np.asarray(image.dataobj)
        return shape
    except (OSError, EOFError, ValueError, gzip.BadGzipFile, nib.filebasedimages.ImageFileError) as error:
        report.problems.append(f"{path}: unreadable NIfTI ({error})")
        return None


def _check_find_cases(root: Path, expected: int, report: Report) -> None:
    """Ask :func:`liverseg.datasets.lits.find_cases`, which will read the data, whether it
    sees as many cases as the file-name checks above."""
    name = "liverseg.datasets.lits.find_cases"
    try:
        cases = lits.find_cases(root)
    except LiversegError as error:
        report.problems.append(f"{name}: {error}")
        return
    report.found.append(f"{len(cases)} cases seen by {name}")
    if len(cases) != expected:
        report.problems.append(f"{name} found {len(cases)} cases, the file check {expected}")


# --------------------------------------------------------------------------- 3D-IRCADb-01


def check_ircadb(root: str | Path) -> Report:
    """3D-IRCADb-01: 20 patients, each with its CT series and a liver mask series.

    Each ``3Dircadb1.N`` must hold ``PATIENT_DICOM`` and ``MASKS_DICOM/liver`` with the same
    number of slices, as folders or as the ``PATIENT_DICOM.zip``/``MASKS_DICOM.zip`` IRCAD
    ships (liverseg reads both). A whole patient left as ``3Dircadb1.N.zip`` counts as
    present; its content is checked when it is read.
    """
    root = Path(root)
    report = Report("3D-IRCADb-01", root)
    if not root.is_dir():
        report.problems.append(f"{root}: folder not found")
        return report
    patients = ircadb.find_patients(root)
    zipped = sum(path.is_file() for path in patients.values())
    report.found.append(
        f"{len(patients)} patients (expected {len(IRCADB_PATIENT_IDS)})"
        + (f", {zipped} of them still zipped (not checked in depth)" if zipped else "")
    )
    for number in IRCADB_PATIENT_IDS:
        folder = patients.get(number)
        if folder is None:
            report.problems.append(f"3Dircadb1.{number}: patient folder missing")
        elif folder.is_dir():
            _check_ircadb_patient(folder, report)
    for number, folder in patients.items():
        if number not in IRCADB_PATIENT_IDS:
            report.problems.append(f"{folder}: unexpected patient number {number}")
    return report


def _check_ircadb_patient(folder: Path, report: Report) -> None:
    slices = {}
    for series in ("PATIENT_DICOM", "MASKS_DICOM/liver"):
        top = series.split("/")[0]
        if (folder / series).is_dir():
            slices[series] = sum(1 for p in (folder / series).iterdir() if p.is_file() and not p.name.startswith("."))
        elif (folder / f"{top}.zip").is_file():
            slices[series] = _zipped_slices(folder / f"{top}.zip", series, report)
        else:
            report.problems.append(f"{folder / series}: missing")
            continue
        if slices[series] == 0:
            report.problems.append(f"{folder / series}: no DICOM files")
    counts = [slices.get(series) for series in ("PATIENT_DICOM", "MASKS_DICOM/liver")]
    if None not in counts and counts[0] != counts[1]:
        report.problems.append(f"{folder}: {counts[0]} CT slices but {counts[1]} liver mask slices")


def _zipped_slices(archive: Path, series: str, report: Report) -> int | None:
    """Files in ``series/`` of a zip that holds its own top folder (``MASKS_DICOM/liver/...``)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [n.replace("\\", "/") for n in zf.namelist() if not n.endswith(("/", "\\"))]
    except zipfile.BadZipFile as error:
        report.problems.append(f"{archive}: damaged zip ({error})")
        return None
    prefix = series + "/"
    return sum(1 for n in names if n.startswith(prefix) and "/" not in n[len(prefix):] and not n.rsplit("/", 1)[-1].startswith("."))
