"""Files and folders that appear whole or not at all: write beside the target, then rename.

Every writer of liverseg (label NIfTI, split and model files, training state, scores, cached
arrays, slice folders) goes through this module, so that an error or a killed process never
leaves a half-written file where a reader would take it for a finished one (the design's
"nothing half-written is left behind"). The temporary file lies in the target's own folder,
hidden (its name starts with ``.``), so the final :func:`os.replace` is a rename on one file
system, atomic on POSIX and Windows.

- :func:`atomic_write_text` / :func:`atomic_write_bytes`: the whole content at once.
- :func:`atomic_path`: a temporary path for any writer that takes a file name
  (``nib.save``, ``np.save``, ``tifffile.imwrite``, ``keras.Model.save``).
- :func:`atomic_folder`: a temporary folder filled file by file, swapped in as a whole.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Iterator

#: Compression suffixes that belong to the extension before them (``.nii.gz``, ``.tar.bz2``).
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path`` as a :class:`~pathlib.Path`.

    The text is written as given (no newline translation). The parent folder is created if
    needed. On any error ``path`` keeps its old content (or stays absent) and no temporary
    file remains.
    """
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write_text`)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        with open(temporary, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds.

    The body writes the file at the yielded path (it does not exist yet, so the writer
    creates it with the usual permissions). When the block ends normally the file replaces
    ``path`` in one rename; when it raises (any exception, ``KeyboardInterrupt`` included)
    the temporary file is removed and ``path`` is left as it was — absent, or with its old
    content. The parent folder is created if needed.

    Args:
        path: the file to produce.
        suffix: how the temporary name ends. By default ``.tmp`` followed by ``path``'s own
            extension (``.tmp.nii.gz`` for ``seg.nii.gz``, ``.tmp.npy`` for ``x.npy``), so
            writers that choose the format from the name (``nib.save``) or append an
            extension when it is missing (``np.save``) write the right thing.

    Raises:
        FileNotFoundError: the block ended normally without writing the temporary file.
        Whatever the body raises, after the clean-up.
    """
    path = Path(path)
    if suffix is None:
        suffix = ".tmp" + _extension(path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path, suffix)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; swap it in for ``path`` on success.

    When the block ends normally an existing folder at ``path`` is moved aside, the new one
    renamed to ``path`` and the old one deleted, so a reader sees either the old folder or
    the complete new one (between the two renames, briefly, none). When the block raises,
    the temporary folder and everything in it are removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path, ".tmp")
    os.mkdir(temporary)
    try:
        yield temporary
        old = None
        if path.exists():
            old = _temporary_name(path, ".old")
            os.rename(path, old)
        try:
            os.rename(temporary, path)
        except BaseException:
            if old is not None:
                os.rename(old, path)
            raise
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _temporary_name(path: Path, suffix: str) -> Path:
    """A hidden, unused name in ``path``'s folder: ``.<name>.<random><suffix>``."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}")


def _extension(name: str) -> str:
    """``.nii.gz`` for ``seg.nii.gz``, ``.json`` for ``a.b.json``, ``""`` for ``README``."""
    suffixes = Path(name).suffixes
    if len(suffixes) >= 2 and suffixes[-1].lower() in _COMPRESSION_SUFFIXES:
        return "".join(suffixes[-2:])
    return suffixes[-1] if suffixes else ""


def _remove(temporary: Path) -> None:
    """Remove what a failed writer may have left at ``temporary`` (a file or a folder)."""
    if temporary.is_dir() and not temporary.is_symlink():
        shutil.rmtree(temporary, ignore_errors=True)
    else:
        temporary.unlink(missing_ok=True)
