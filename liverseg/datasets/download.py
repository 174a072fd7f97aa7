"""Fetch and unpack the public datasets: resumable downloads and safe extraction.

The CT archives are large (LiTS/MSD Task03 is several GB), served by ordinary web
servers that sometimes drop a connection, and unpacked from archives we did not make.
So a download streams to ``<dest>.part`` and resumes it with an HTTP ``Range`` request,
is checked against its published size and checksum before it is renamed into place,
and an archive is unpacked into a hidden folder beside the target, refusing any
member that would land outside it (``..``, absolute paths, links, devices), and is
moved into place only once every member has been written.

Only the standard library (``urllib``, ``zipfile``, ``tarfile``) and ``tqdm`` are used.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import lzma
import os
import re
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from liverseg import __version__
from liverseg.errors import (
    ChecksumError,
    CorruptFileError,
    DownloadError,
    LiversegError,
    MissingFileError,
    UnsafeArchiveError,
    UnsupportedFormatError,
)

__all__ = ["download", "extract", "file_digest"]

CHUNK_SIZE = 1 << 20
RETRY_DELAY_S = 2.0  # doubled after each failed attempt
USER_AGENT = f"liverseg/{__version__} (+urllib)"
# Folder depth of zips inside zips that ``extract(nested=True)`` follows (IRCADb needs 1).
MAX_NESTING = 3
# Files that macOS archivers add and that no dataset reader wants to see.
_JUNK = re.compile(r"(^|/)(__MACOSX(/|$)|\._[^/]*$|\.DS_Store$)")


# --------------------------------------------------------------------------- checksums


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", *, progress: bool = False) -> str:
    """Hex digest of a file, read in chunks (the archives do not fit in memory)."""
    path = Path(path)
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f, _bytes_bar(path.stat().st_size, 0, f"{algorithm} {path.name}", progress) as bar:
        while chunk := f.read(CHUNK_SIZE):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _expected_digests(sha256: str | None, md5: str | None) -> dict[str, str]:
    expected = {name: value.strip().lower() for name, value in (("sha256", sha256), ("md5", md5)) if value}
    for name, value in expected.items():
        length = hashlib.new(name).digest_size * 2
        if not re.fullmatch(f"[0-9a-f]{{{length}}}", value):
            raise ValueError(f"{name} must be {length} hexadecimal digits, got {value!r}")
    return expected


def _matches(path: Path, expected: dict[str, str], progress: bool) -> bool:
    return all(file_digest(path, name, progress=progress) == value for name, value in expected.items())


# --------------------------------------------------------------------------- download


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to the file ``dest`` and return ``dest``.

    The bytes go to ``dest.part``; a ``.part`` left by an interrupted run (or by a dropped
    connection during this one, up to ``retries`` times) is continued with a ``Range``
    request, and restarted from zero when the server answers with the whole file instead.
    The result is checked against the server's ``Content-Length`` and against ``sha256``
    and/or ``md5`` when given, then renamed to ``dest`` in one step. A ``dest`` that already
    exists is kept as it is when it matches the checksums (or when none is given).

    Raises:
        DownloadError: HTTP error, connection failure after the retries, or size mismatch.
        ChecksumError: the downloaded bytes do not match; the ``.part`` file is removed.
    """
    dest = Path(dest)
    if dest.is_dir():
        raise DownloadError("is a folder; give the path of the file to download to", dest)
    expected = _expected_digests(sha256, md5)
    if dest.is_file() and (not expected or _matches(dest, expected, progress)):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")

    for attempt in range(retries + 1):
        try:
            digests = _fetch_to_part(url, part, expected, chunk_size, progress, timeout)
            break
        except _Interrupted as interruption:
            if attempt == retries:
                raise DownloadError(
                    f"{interruption} after {retries + 1} attempt(s); run again to resume "
                    f"from the {part.stat().st_size if part.exists() else 0} bytes kept in {part.name}",
                    url,
                ) from interruption.__cause__
            time.sleep(RETRY_DELAY_S * 2**attempt)

    for name, value in expected.items():
        if digests[name] != value:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"{name} mismatch for {dest.name}: expected {value}, got {digests[name]} "
                f"(downloaded from {url}; the corrupt download was removed)",
                dest,
            )
    os.replace(part, dest)
    return dest


class _Interrupted(Exception):
    """A transfer that stopped early; whatever reached the ``.part`` file is kept for a resume."""


def _fetch_to_part(url, part: Path, expected, chunk_size, progress, timeout) -> dict[str, str]:
    """One HTTP request that writes or continues ``part``; returns the digests of the whole file."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the .part may already hold the whole file
            total = _total_from_content_range(error.headers.get("Content-Range"))
            if total == offset:
                return _digests_of(part, expected, progress)
            part.unlink()
            raise _Interrupted(f"server refused to resume from byte {offset}; restarting") from error
        if error.code >= 500 or error.code == 429:
            raise _Interrupted(f"HTTP {error.code} {error.reason}") from error
        raise DownloadError(f"HTTP {error.code} {error.reason}", url) from error
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise _Interrupted(f"connection failed ({reason})") from error

    with response:
        if response.status == 206:
            total = _total_from_content_range(response.headers.get("Content-Range"))
            start = _start_from_content_range(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise _Interrupted(f"server resumed at byte {start}, not {offset}; restarting")
        else:  # 200: the server ignored the Range header (or there was none): start over
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None

        hashes = {name: hashlib.new(name) for name in expected}
        if offset:
            _update_from_file(hashes, part)
        received = offset
        with open(part, "ab" if offset else "wb") as f, _bytes_bar(total, offset, part.name[:-5], progress) as bar:
            while True:
                try:
                    chunk = response.read(chunk_size)
                except (OSError, http.client.HTTPException) as error:  # a write error (disk full) is not caught
                    raise _Interrupted(f"connection lost at byte {received} of {total or '?'} ({error})") from error
                if not chunk:
                    break
                f.write(chunk)
                for h in hashes.values():
                    h.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))

    if total is not None and received != total:
        if received > total:
            part.unlink()
            raise DownloadError(f"server sent {received} bytes, more than its Content-Length {total}", url)
        raise _Interrupted(f"connection lost at byte {received} of {total}")
    return {name: h.hexdigest() for name, h in hashes.items()}


def _digests_of(path: Path, expected, progress) -> dict[str, str]:
    return {name: file_digest(path, name, progress=progress) for name in expected}


def _update_from_file(hashes: dict, path: Path) -> None:
    if not hashes:
        return
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            for h in hashes.values():
                h.update(chunk)


def _total_from_content_range(value: str | None) -> int | None:
    """``bytes 100-199/200`` or ``bytes */200`` -> 200 (``None`` when the total is ``*``)."""
    match = re.fullmatch(r"\s*bytes\s+(?:\d+-\d+|\*)/(\d+|\*)\s*", value or "")
    return int(match.group(1)) if match and match.group(1) != "*" else None


def _start_from_content_range(value: str | None) -> int | None:
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*", value or "")
    return int(match.group(1)) if match else None


def _bytes_bar(total, initial, desc, progress):
    return tqdm(
        total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
        disable=not progress, leave=False,
    )


# --------------------------------------------------------------------------- extraction


def extract(
    archive: str | os.PathLike,
    target: str | os.PathLike,
    *,
    nested: bool = False,
    skip_junk: bool = True,
    keep: Callable[[tuple[str, ...]], bool] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Unpack a ``.zip`` or ``.tar[.gz|.bz2|.xz]``/``.tgz`` into the folder ``target``.

    Returns the paths of the extracted files, sorted. The format is read from the file's
    content, not its name (IRCAD's server names its zip ``download``).

    Every member is checked before it is written: an absolute path, a ``..`` component, a
    symbolic or hard link or a device refuses the whole archive. Members go to a hidden
    folder beside ``target`` and are moved into ``target`` only when all of them are out,
    so a refused or broken archive leaves nothing behind. Top-level entries that already
    exist in ``target`` are never overwritten.

    Args:
        nested: also unpack every ``.zip`` found inside (3D-IRCADb-01's
            ``3Dircadb1.N/PATIENT_DICOM.zip``...) into a folder named after it
            (``3Dircadb1.N/PATIENT_DICOM/``) and delete the inner zip; inner zips are
            checked the same way.
        skip_junk: leave out macOS metadata (``__MACOSX/``, ``._*``, ``.DS_Store``) that
            would otherwise look like extra, unreadable images.
        keep: extract only the members whose path components satisfy ``keep(parts)``
            (every member is still checked for safety).

    Raises:
        MissingFileError, UnsupportedFormatError, CorruptFileError: unreadable archive.
        UnsafeArchiveError: a member would escape ``target`` or is a link or device.
        LiversegError: a top-level entry of the archive already exists in ``target``.
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise MissingFileError("archive not found", archive)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.extracting"
    staging.mkdir()
    try:
        _unpack(archive, str(archive), staging, skip_junk, progress, keep)
        if nested:
            _unpack_nested(staging, str(archive), skip_junk, progress)
        files = sorted(p.relative_to(staging) for p in staging.rglob("*") if p.is_file())
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [target / f for f in files]


def _unpack(archive: Path, label: str, into: Path, skip_junk: bool, progress: bool, keep=None) -> None:
    """Write every member of ``archive`` under ``into``; ``label`` names it in errors."""
    if zipfile.is_zipfile(archive):
        _unpack_zip(archive, label, into, skip_junk, progress, keep)
    elif tarfile.is_tarfile(archive):
        _unpack_tar(archive, label, into, skip_junk, progress, keep)
    else:
        raise UnsupportedFormatError("not a zip or tar archive", label)


def _unpack_zip(archive, label, into, skip_junk, progress, keep=None):
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in tqdm(members, desc=f"extract {Path(label).name}", unit="file", disable=not progress, leave=False):
                file_type = stat.S_IFMT(info.external_attr >> 16)  # 0 when made on Windows
                if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
                    kind = "symbolic link" if file_type == stat.S_IFLNK else "special file"
                    raise UnsafeArchiveError(f"member {info.filename!r} is a {kind}", label)
                parts = _safe_parts(info.filename, label)
                if not parts or (skip_junk and _JUNK.search("/".join(parts))):
                    continue
                if keep is not None and not keep(tuple(parts)):
                    continue
                path = into.joinpath(*parts)
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as source, open(path, "wb") as sink:
                    shutil.copyfileobj(source, sink, CHUNK_SIZE)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError) as error:
        raise CorruptFileError(f"damaged zip archive ({error})", label) from error


def _unpack_tar(archive, label, into, skip_junk, progress, keep=None):
    try:
        with tarfile.open(archive, "r:*") as tf:
            for member in tqdm(tf, desc=f"extract {Path(label).name}", unit="file", disable=not progress, leave=False):
                if not (member.isfile() or member.isdir()):
                    kind = (
                        "symbolic link" if member.issym() else "hard link" if member.islnk() else "device or special file"
                    )
                    raise UnsafeArchiveError(f"member {member.name!r} is a {kind}", label)
                parts = _safe_parts(member.name, label)
                if not parts or (skip_junk and _JUNK.search("/".join(parts))):
                    continue
                if keep is not None and not keep(tuple(parts)):
                    continue
                path = into.joinpath(*parts)
                if member.isdir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with tf.extractfile(member) as source, open(path, "wb") as sink:
                    shutil.copyfileobj(source, sink, CHUNK_SIZE)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as error:
        raise CorruptFileError(f"damaged tar archive ({error})", label) from error


def _safe_parts(name: str, label: str) -> list[str]:
    """Path components of a member name, refusing any that could leave the target folder."""
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or re.match(r"^[A-Za-z]:", normalized):
        raise UnsafeArchiveError(f"member {name!r} has an absolute path", label)
    parts = [p for p in normalized.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"member {name!r} has a '..' component", label)
    if any("\0" in p for p in parts):
        raise UnsafeArchiveError(f"member {name!r} has a NUL byte in its name", label)
    return parts


def _unpack_nested(root: Path, label: str, skip_junk: bool, progress: bool, depth: int = 1) -> None:
    """Replace each ``X.zip`` under ``root`` by a folder ``X/`` holding its content."""
    inner = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() == ".zip")
    if inner and depth > MAX_NESTING:
        raise UnsafeArchiveError(f"zip archives nested more than {MAX_NESTING} deep", label)
    for zip_path in tqdm(inner, desc="nested archives", unit="zip", disable=not progress, leave=False):
        inner_label = f"{label}!{zip_path.relative_to(root).as_posix()}"
        if not zipfile.is_zipfile(zip_path):
            raise CorruptFileError("damaged zip archive inside the archive", inner_label)
        folder = zip_path.with_suffix("")
        if folder.exists():
            raise LiversegError(f"cannot unpack {zip_path.name}: {folder.name} already exists beside it", inner_label)
        staging = zip_path.parent / f".{folder.name}.{uuid.uuid4().hex[:8]}.extracting"
        staging.mkdir()
        _unpack_zip(zip_path, inner_label, staging, skip_junk, progress=False)
        entries = list(staging.iterdir())
        if len(entries) == 1 and entries[0].is_dir() and entries[0].name == folder.name:
            entries[0].rename(folder)  # the zip holds its own top folder (IRCADb's do)
            staging.rmdir()
        else:
            staging.rename(folder)
        zip_path.unlink()
        _unpack_nested(folder, inner_label, skip_junk, progress=False, depth=depth + 1)


def _move_into_place(staging: Path, target: Path) -> None:
    if not target.exists():
        staging.rename(target)
        return
    if not target.is_dir():
        raise LiversegError("extraction target exists and is not a folder", target)
    entries = sorted(staging.iterdir())
    clashes = [e.name for e in entries if (target / e.name).exists() or (target / e.name).is_symlink()]
    if clashes:
        raise LiversegError(
            f"already contains {', '.join(clashes[:5])}{' ...' if len(clashes) > 5 else ''}; "
            "remove it or extract elsewhere",
            target,
        )
    for entry in entries:
        entry.rename(target / entry.name)
