"""What both fetch scripts do the same way: download with a checksum report, and the CLI frame."""

from __future__ import annotations

import sys
from pathlib import Path

from liverseg.datasets.download import download, file_digest
from liverseg.errors import LiversegError


def existing_folder_status(folder: Path, check) -> int | None:
    """Exit code when ``folder`` is already there (0 complete, 1 incomplete), else ``None``."""
    if not folder.is_dir():
        return None
    report = check(folder)
    print(report)
    if report.ok:
        print(f"{folder} is already complete; nothing to download.")
        return 0
    print(f"{folder} exists but is incomplete; remove it to fetch again.", file=sys.stderr)
    return 1


def fetch_archive(url: str, archive: Path, *, md5=None, sha256=None, progress=True) -> None:
    """Download ``url`` to ``archive`` (resuming a ``.part``) and say how it was checked."""
    print(f"Downloading {url}\n       into {archive} (resumes if interrupted)")
    download(url, archive, md5=md5, sha256=sha256, progress=progress)
    if md5 or sha256:
        print(f"{'md5' if md5 else 'sha256'} checksum verified.")
    else:
        print(f"No checksum to check against; sha256 of {archive.name}: "
              f"{file_digest(archive, progress=progress)}")


def run(args, fetch, verify) -> int:
    """Exit code 0 ready, 1 incomplete (report printed), 2 error (message on stderr)."""
    try:
        if args.verify is not None:
            report = verify(args)
            print(report)
            return 0 if report.ok else 1
        return fetch(args)
    except LiversegError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
