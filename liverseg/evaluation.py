"""LiTS-style scores of predicted label files against reference files, one pair or two folders.

What ``liverseg evaluate`` runs. A label file holds 0 (background), 1 (liver) and 2 (lesion)
and may be NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), ANALYZE (``.hdr``) or a
DICOM series folder; it is read as a label in its own geometry
(:func:`liverseg.io.read_label` with ``like=None``). The scores of one pair are those of
:func:`liverseg.metrics.evaluate_case`; a folder of cases also gets the dataset summary of
:func:`liverseg.metrics.summarize_cases` (mean over cases, global Dice, pooled lesion
detection). The metric definitions are in the results chapter of the book.

- :func:`evaluate_files` — one prediction file against one reference file.
- :func:`evaluate_folders` — every file of a prediction folder against the reference file of
  the same name (:func:`paired_files` gives the matching rules).
- :func:`evaluate_paths` — either of the two, chosen by what the paths are.
- :func:`scores_csv` — the per-case scores as CSV, one line per case.

Every error names the file(s) and the problem (:mod:`liverseg.errors`); nothing is scored
unless the two files of a pair cover the same voxels.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np

from liverseg.errors import DatasetLayoutError, MissingFileError, ShapeError
from liverseg.io import Volume, read_label
from liverseg.metrics import evaluate_case, summarize_cases

#: Two label files have the same geometry when spacing and origin agree to this many mm
#: (and the direction cosines to this number).
GEOMETRY_TOLERANCE_MM = 1e-3
#: The label files :func:`paired_files` takes from a folder (ANALYZE by its ``.hdr``).
LABEL_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".hdr", ".hdr.gz")


def evaluate_paths(prediction: str | os.PathLike, reference: str | os.PathLike,
                   progress: bool = True) -> dict:
    """Score two label files, or two folders of them.

    When either path is a folder of label files (:func:`is_case_folder`; a DICOM series
    folder is one label file), this is :func:`evaluate_folders`, else :func:`evaluate_files`.

    Raises:
        DatasetLayoutError: a folder of label files against a file (or a DICOM folder).
        Everything :func:`evaluate_files` and :func:`evaluate_folders` raise.
    """
    prediction, reference = Path(prediction), Path(reference)
    if is_case_folder(prediction) or is_case_folder(reference):
        return evaluate_folders(prediction, reference, progress=progress)
    return evaluate_files(prediction, reference)


def evaluate_files(prediction: str | os.PathLike, reference: str | os.PathLike) -> dict:
    """LiTS scores of one predicted label file against its reference.

    Returns ``{"prediction": path, "reference": path, **scores}`` where ``scores`` is
    :func:`liverseg.metrics.evaluate_case`'s dict (``shape`` and ``spacing`` in ``(z, y, x)``
    order of the canonical array, then the ``liver`` and ``lesion`` blocks). Distances are
    in mm and volumes in ml from the reference's own voxel spacing.

    Raises:
        ShapeError: the two files differ in shape or geometry (:func:`read_label_pair`).
        MissingFileError, CorruptFileError, UnsupportedFormatError, DicomSeriesError,
        InvalidDataError (NaN voxels, values other than 0/1/2): each naming the file.
    """
    prediction, reference = Path(prediction), Path(reference)
    predicted, expected = read_label_pair(prediction, reference)
    scores = evaluate_case(predicted.array, expected.array, expected.spacing,
                           pred_path=prediction, ref_path=reference)
    return {"prediction": str(prediction), "reference": str(reference), **scores}


def evaluate_folders(prediction_folder: str | os.PathLike, reference_folder: str | os.PathLike,
                     progress: bool = True) -> dict:
    """LiTS scores of every case of a prediction folder against a reference folder.

    Files are matched by name (:func:`paired_files`); every prediction needs its reference
    and every reference its prediction. Returns::

        {"prediction": folder, "reference": folder,
         "cases": [{"case": id, "prediction": path, "reference": path, **scores}, ...],
         "summary": summarize_cases(cases)}

    with the cases in natural order of their names (``case2`` before ``case10``).
    ``progress`` shows a progress bar (two cases or more, on a terminal).

    Raises:
        DatasetLayoutError: unmatched files (all of them are named), two files of one case,
            or a folder that holds no label file.
        MissingFileError: a folder that does not exist.
        Everything :func:`evaluate_files` raises, for the first failing case: no partial
        result is returned.
    """
    from tqdm.auto import tqdm

    prediction_folder, reference_folder = Path(prediction_folder), Path(reference_folder)
    pairs = paired_files(prediction_folder, reference_folder)
    rows = []
    for case, prediction, reference in tqdm(pairs, desc="evaluate", unit="case",
                                            disable=not progress or len(pairs) < 2 or None):
        rows.append({"case": case, **evaluate_files(prediction, reference)})
    return {"prediction": str(prediction_folder), "reference": str(reference_folder),
            "cases": rows, "summary": summarize_cases(rows)}


def read_label_pair(prediction: str | os.PathLike, reference: str | os.PathLike) -> tuple[Volume, Volume]:
    """Both label files as canonical :class:`~liverseg.io.Volume`s, each in its own geometry.

    The two may be stored in different formats or axis orders; they must cover the same
    voxels: the same canonical shape, and voxel spacing, origin and direction cosines equal
    to :data:`GEOMETRY_TOLERANCE_MM`. Nothing is resampled.

    Raises:
        ShapeError: naming both files and what differs (shape, voxel spacing, origin or
            direction), with both values.
        Everything :func:`liverseg.io.read_label` raises.
    """
    prediction, reference = Path(prediction), Path(reference)
    predicted, expected = read_label(prediction), read_label(reference)
    names = f"prediction {prediction} and reference {reference}"
    if predicted.shape != expected.shape:
        raise ShapeError(f"{names} differ in shape: {predicted.shape} and {expected.shape} (z, y, x)")
    geometry = {
        "voxel spacing (mm)": (predicted.spacing, expected.spacing),
        "origin (mm)": (predicted.affine[:3, 3], expected.affine[:3, 3]),
        "direction": (predicted.affine[:3, :3] / np.asarray(predicted.spacing),
                      expected.affine[:3, :3] / np.asarray(expected.spacing)),
    }
    for what, (a, b) in geometry.items():
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if not np.allclose(a, b, rtol=0.0, atol=GEOMETRY_TOLERANCE_MM):
            raise ShapeError(
                f"{names} have the same shape {expected.shape} but differ in {what}: "
                f"{a.round(4).tolist()} and {b.round(4).tolist()}; resample the prediction onto "
                "the reference"
            )
    return predicted, expected


def is_case_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder of label files (not a DICOM series folder)."""
    path = Path(path)
    return path.is_dir() and any(True for _ in _label_files(path))


def paired_files(prediction_folder: str | os.PathLike,
                 reference_folder: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """``(case, prediction file, reference file)`` for the files of two folders, matched by name.

    Matching rules: the label files of a folder are its visible files (not starting with
    ``.``) ending in one of :data:`LABEL_SUFFIXES`, case-insensitively; sub-folders are
    ignored. Two files match when their names are equal, extension included (``case1.nii``
    does not match ``case1.nii.gz``), except that LiTS' test-set prediction name
    ``test-segmentation-N.nii`` matches ``segmentation-N.nii``. The case id is the matched
    name without its extension (``segmentation-2`` for ``segmentation-2.nii.gz``); pairs
    come in natural order of their names (``case2`` before ``case10``).

    Raises:
        MissingFileError: a folder that does not exist.
        DatasetLayoutError: a path that is not a folder of label files; two files of one
            folder that are the same case (``test-segmentation-1.nii`` beside
            ``segmentation-1.nii``); files without a partner, all named in one message.
    """
    prediction_folder, reference_folder = Path(prediction_folder), Path(reference_folder)
    predictions = _case_files(prediction_folder, reference_folder)
    references = _case_files(reference_folder, prediction_folder)
    unmatched = [f"{p.name} (prediction, in {prediction_folder})" for k, p in predictions.items()
                 if k not in references]
    unmatched += [f"{r.name} (reference, in {reference_folder})" for k, r in references.items()
                  if k not in predictions]
    if unmatched:
        raise DatasetLayoutError(
            f"{len(unmatched)} file(s) without a file of the same name in the other folder: "
            + ", ".join(unmatched)
        )
    return [(_case_id(key), predictions[key], references[key])
            for key in sorted(references, key=_natural_key)]


def scores_csv(rows: list[dict]) -> str:
    """Per-case scores as CSV text, one line per row.

    Columns: ``case`` (folder mode), ``prediction``, ``reference``, then every scalar score
    flattened with ``_`` (``liver_dice``, ..., ``lesion_detection_recall``), in the order
    they first appear; a score that is undefined (``None``) is an empty field. List values
    (``shape``, ``spacing``) are left out.
    """
    flat = [_flatten(row) for row in rows]
    columns = list(dict.fromkeys(key for row in flat for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buffer.getvalue()


def _flatten(scores: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in scores.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}_"))
        elif not isinstance(value, (list, tuple)):  # shape and spacing are not scores
            flat[f"{prefix}{key}"] = value
    return flat


def _label_files(folder: Path):
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.name.lower().endswith(LABEL_SUFFIXES):
            yield path


def _case_key(name: str) -> str:
    """The name two files are matched by: the file name, with LiTS' ``test-segmentation-N.nii``
    (a test-set prediction) taken as ``segmentation-N.nii``."""
    from liverseg.datasets.lits import SEGMENTATION_PATTERN

    if name.lower().startswith("test-") and SEGMENTATION_PATTERN.match(name[len("test-"):]):
        return name[len("test-"):]
    return name


def _case_files(folder: Path, other: Path) -> dict[str, Path]:
    if not folder.exists():
        raise MissingFileError("no such file or folder", folder)
    if not is_case_folder(folder):
        raise DatasetLayoutError(
            f"not a folder of label files, but {other} is; give two label files or two folders", folder
        )
    found: dict[str, Path] = {}
    for path in _label_files(folder):
        key = _case_key(path.name)
        if key in found:
            raise DatasetLayoutError(f"{found[key].name} and {path.name} are the same case", folder)
        found[key] = path
    return found


def _case_id(name: str) -> str:
    lowered = name.lower()
    for suffix in sorted(LABEL_SUFFIXES, key=len, reverse=True):
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _natural_key(name: str) -> list:
    """Sort key putting ``case2`` before ``case10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]
