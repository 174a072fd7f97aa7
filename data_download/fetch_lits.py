#!/usr/bin/env python
"""Fetch LiTS 2017 (as the Medical Segmentation Decathlon's Task03_Liver), or check a
LiTS folder downloaded by hand from the challenge site.

    python data_download/fetch_lits.py                      # -> data/Task03_Liver/
    python data_download/fetch_lits.py --dest /big/disk     # -> /big/disk/Task03_Liver/
    python data_download/fetch_lits.py --verify data/LiTS   # check a challenge download

An interrupted download resumes where it stopped when the command is run again.
See data_download/README.md for sizes, terms of use and the layouts liverseg reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing liverseg

from layouts import check_lits  # noqa: E402
from fetch_common import existing_folder_status, fetch_archive, run  # noqa: E402

from liverseg.datasets.download import extract  # noqa: E402

ARCHIVE = "Task03_Liver.tar"
KNOWN = json.loads((HERE / "checksums.json").read_text())[ARCHIVE]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, default=Path("data"), help="folder to download and extract into (default: ./data)")
    parser.add_argument("--url", help=f"download from here instead of {KNOWN['url']}")
    checksum = parser.add_mutually_exclusive_group()
    checksum.add_argument("--md5", help="expected md5 of the archive (default: the published one, for the default URL)")
    checksum.add_argument("--sha256", help="expected sha256 of the archive")
    parser.add_argument("--remove-archive", action="store_true", help="delete the .tar once it is extracted and checked")
    parser.add_argument("--verify", type=Path, metavar="DIR", help="only check the LiTS folder DIR (challenge or MSD layout)")
    parser.add_argument("--deep", action="store_true", help="with --verify: read every voxel, not only the headers")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def fetch(args: argparse.Namespace) -> int:
    progress = not args.no_progress
    task = args.dest / "Task03_Liver"
    status = existing_folder_status(task, check_lits)
    if status is not None:
        return status

    url = args.url or KNOWN["url"]
    md5 = args.md5 or (KNOWN["md5"] if args.url is None and args.sha256 is None else None)
    archive = args.dest / ARCHIVE
    fetch_archive(url, archive, md5=md5, sha256=args.sha256, progress=progress)

    print(f"Extracting into {args.dest}")
    extract(archive, args.dest, progress=progress)
    report = check_lits(task)
    print(report)
    if report.ok and args.remove_archive:
        archive.unlink()
    return 0 if report.ok else 1


def main(argv=None) -> int:
    return run(parse_args(argv), fetch, lambda a: check_lits(a.verify, deep=a.deep))


if __name__ == "__main__":
    sys.exit(main())
