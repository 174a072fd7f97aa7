"""Exceptions raised on bad user input.

Every error names the offending file (when there is one) and the problem, so a
message like ``volume-3.nii: truncated NIfTI (expected 1048576 bytes)`` is enough
to act on without a traceback.
"""

from __future__ import annotations

import os


class LiversegError(Exception):
    """Base class: ``LiversegError(problem, path=None)``; ``str()`` is ``"path: problem"``."""

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.problem = problem
        self.path = os.fspath(path) if path is not None else None
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class MissingFileError(LiversegError, FileNotFoundError):
    """A file or folder that should exist does not."""


class CorruptFileError(LiversegError):
    """A file exists but cannot be parsed (truncated, wrong format, bad header)."""


class UnsupportedFormatError(LiversegError):
    """The file format is not one liverseg reads."""


class DicomSeriesError(LiversegError):
    """A DICOM folder is not one complete series (several series, missing or duplicate slices)."""


class ModalityError(LiversegError):
    """The image is not CT (e.g. an MR or a secondary-capture DICOM)."""


class ShapeError(LiversegError, ValueError):
    """Wrong dimensionality or shape: a 2D file where a volume is expected, label/image mismatch."""


class InvalidDataError(LiversegError, ValueError):
    """Values are unusable: NaN or infinite voxels, an empty mask where one is required, bad labels."""


class SettingError(LiversegError, ValueError):
    """A setting outside what it accepts; the message names the setting's dotted path
    (``train.batch_size``), what it accepts and the value given."""


class DatasetLayoutError(LiversegError):
    """A dataset root does not have the expected layout (no cases, unpaired files)."""


class DownloadError(LiversegError):
    """A download failed (HTTP error, connection lost, size mismatch)."""


class ChecksumError(DownloadError):
    """A downloaded file does not match its published checksum."""


class UnsupportedBackendError(LiversegError, RuntimeError):
    """A Keras backend this part of liverseg does not support (Grad-CAM: TensorFlow and JAX)."""


class UnsafeArchiveError(LiversegError):
    """An archive member would escape the target folder, or is a link or device."""


class MissingExtraError(LiversegError, ImportError):
    """An optional part of liverseg needs packages of an extra that is not installed (the
    ``book`` extra: papermill, Jupyter Book, ipywidgets)."""
