#!/usr/bin/env python
"""Fetch 3D-IRCADb-01 from IRCAD and unpack it, zips inside the zip included.

    python data_download/fetch_ircadb.py                       # -> data/3Dircadb1/3Dircadb1.{1..20}/
    python data_download/fetch_ircadb.py --dest /big/disk
    python data_download/fetch_ircadb.py --verify data/3Dircadb1

IRCAD has moved the download before: if the default URL fails, find the current one on
https://www.ircad.fr/research/data-sets/liver-segmentation-3d-ircadb-01/ and pass --url.
An interrupted download resumes where it stopped when the command is run again.
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing liverseg

from layouts import check_ircadb  # noqa: E402
from fetch_common import existing_folder_status, fetch_archive, run  # noqa: E402

from liverseg.datasets.download import extract  # noqa: E402

ARCHIVE = "3Dircadb1.zip"
ROOT = "3Dircadb1"
KNOWN = json.loads((HERE / "checksums.json").read_text())[ARCHIVE]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, default=Path("data"), help="folder to download and extract into (default: ./data)")
    parser.add_argument("--url", default=KNOWN["url"], help="download from here (default: %(default)s)")
    checksum = parser.add_mutually_exclusive_group()
    checksum.add_argument("--md5", help="expected md5 of the zip (IRCAD publishes none)")
    checksum.add_argument("--sha256", help="expected sha256 of the zip (IRCAD publishes none)")
    parser.add_argument("--remove-archive", action="store_true", help="delete the zip once it is extracted and checked")
    parser.add_argument("--verify", type=Path, metavar="DIR", help="only check the 3D-IRCADb-01 folder DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def has_top_folder(archive: Path, name: str) -> bool:
    """Whether every member of the zip sits in ``name/`` (IRCAD's current zip) or not (its older one)."""
    with zipfile.ZipFile(archive) as zf:
        return all(member.replace("\\", "/").startswith(f"{name}/") for member in zf.namelist())


def fetch(args: argparse.Namespace) -> int:
    progress = not args.no_progress
    root = args.dest / ROOT
    status = existing_folder_status(root, check_ircadb)
    if status is not None:
        return status

    archive = args.dest / ARCHIVE
    fetch_archive(args.url, archive, md5=args.md5, sha256=args.sha256, progress=progress)

    print(f"Extracting into {root} (and the PATIENT_DICOM.zip, MASKS_DICOM.zip... inside it)")
    try:
        target = args.dest if has_top_folder(archive, ROOT) else root
    except zipfile.BadZipFile:
        target = root  # extract() names the damage
    extract(archive, target, nested=True, progress=progress)
    report = check_ircadb(root)
    print(report)
    if report.ok and args.remove_archive:
        archive.unlink()
    return 0 if report.ok else 1


def main(argv=None) -> int:
    return run(parse_args(argv), fetch, lambda a: check_ircadb(a.verify))


if __name__ == "__main__":
    sys.exit(main())
