"""Time the data pipeline on synthetic phantoms; print one JSON object.

    python benchmarks/data_pipeline.py                          # 3 cases of 100 x 512 x 512
    python benchmarks/data_pipeline.py --size 128 --slices 64 --json-only

For each case: generate a phantom (``synthetic.make_case``), write it as a LiTS-style
NIfTI pair (int16 image, uint8 label, as ``synthetic.make_dataset`` does; ``.nii`` and
``.nii.gz``), read it back (``io.read_volume``, ``lits.load_case``), preprocess it, store
its slices as TIFF along the three planes (HU, as the data chapter does), stream them
back with ``SliceBatches``, and write and read it as a DICOM series (via the test
fixture ``tests/dicom_fixtures.py``, skipped when that is not importable).

Each stage reports the median wall time over cases. Peak memory is the ``tracemalloc``
peak (numpy and Python allocations made by the stage; not C libraries' own buffers),
taken in a second, untimed run of each stage on the first case, since tracing slows
Python-heavy code (DICOM parsing) several-fold. Reads right after writes hit the OS
page cache, so read times are warm-cache times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # liverseg from this checkout, and tests.dicom_fixtures

from liverseg.datasets import lits  # noqa: E402
from liverseg.datasets.planes import PLANES  # noqa: E402
from liverseg.datasets.slice_store import SliceBatches, SliceStore  # noqa: E402
from liverseg.datasets.synthetic import case_seed, make_case  # noqa: E402
from liverseg.io import read_volume, write_volume  # noqa: E402
from liverseg.preprocess import preprocess  # noqa: E402
from _machine import machine_info  # noqa: E402

try:
    from tests.dicom_fixtures import write_dicom_series
except ImportError as error:  # e.g. an installed package without the tests folder
    write_dicom_series, DICOM_SKIPPED = None, f"tests.dicom_fixtures not importable: {error}"
else:
    DICOM_SKIPPED = None

NIFTI_SUFFIXES = (".nii", ".nii.gz")
BATCH_SIZE = 4


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3, help="phantoms to time (median over them)")
    parser.add_argument("--size", type=int, default=512, help="in-plane size (pixels)")
    parser.add_argument("--slices", type=int, default=100, help="axial slices per phantom")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where files are written and kept (default: a temporary folder, removed)")
    parser.add_argument("--json-only", action="store_true", help="no progress or summary on stderr")
    return parser.parse_args(argv)


class StageTimer:
    """Collects per-stage wall times, and tracemalloc peaks while ``tracing`` is on."""

    def __init__(self, verbose: bool):
        self.seconds: dict[str, list[float]] = {}
        self.peak_mb: dict[str, float] = {}
        self.extra: dict[str, dict] = {}
        self.verbose = verbose
        self.tracing = False

    def __call__(self, stage: str, fn):
        """Run ``fn`` timed (and once more traced, if ``tracing``); return its first result."""
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        self.seconds.setdefault(stage, []).append(seconds)
        if self.tracing:
            tracemalloc.start()
            fn()
            self.peak_mb[stage] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        if self.verbose:
            print(f"  {stage:<32} {seconds:8.3f} s", file=sys.stderr)
        return result

    def summary(self) -> dict:
        return {
            stage: {
                "seconds_median": round(statistics.median(times), 4),
                "seconds": [round(t, 4) for t in times],
                "peak_mb": None if stage not in self.peak_mb else round(self.peak_mb[stage], 1),
                **self.extra.get(stage, {}),
            }
            for stage, times in self.seconds.items()
        }


def stream(store: SliceStore, case_id: str, plane: str) -> int:
    """Read every batch of one case along ``plane``; return the number of slices read."""
    return sum(len(x) for x, _ in SliceBatches(store, [case_id], plane, batch_size=BATCH_SIZE))


def folder_mb(path: Path) -> float:
    return files_mb(*(p for p in path.rglob("*") if p.is_file()))


def files_mb(*paths: Path) -> float:
    return sum(p.stat().st_size for p in paths) / 2**20


def run_case(index: int, args, workdir: Path, timer: StageTimer, checks: dict, sizes: dict) -> None:
    timer.tracing = index == 0
    shape = (args.slices, args.size, args.size)
    case = timer("make_case", lambda: make_case(case_seed(args.seed, index), shape=shape))
    image = case.image.array.astype(np.int16)  # whole HU, stored as LiTS does
    label = case.label.astype(np.uint8)
    folder = workdir / f"case-{index}"

    for suffix in NIFTI_SUFFIXES:
        volume_path, label_path = folder / f"volume-{index}{suffix}", folder / f"segmentation-{index}{suffix}"

        def write_pair():
            write_volume(image, volume_path, like=case.image)
            write_volume(label, label_path, like=case.image)

        timer(f"write_volume{suffix} (pair)", write_pair)
        volume = timer(f"read_volume{suffix}", lambda: read_volume(volume_path))
        loaded = timer(f"lits.load_case{suffix}", lambda: lits.load_case(volume_path, label_path))
        checks.setdefault(f"nifti{suffix}_roundtrip_exact", []).append(
            np.array_equal(volume.array, case.image.array) and np.array_equal(loaded.label, label))
        sizes.setdefault(f"nifti{suffix}_pair", []).append(files_mb(volume_path, label_path))

    timer("preprocess", lambda: preprocess(case.image.array))

    store = SliceStore(folder / "slices")
    timer("slice_store.add_case (3 planes)", lambda: store.add_case(case, PLANES))
    sizes.setdefault("slice_store_3_planes", []).append(folder_mb(store.root))
    for plane in PLANES:
        stage = f"slice_store.stream.{plane}"
        n = timer(stage, lambda: stream(store, case.case_id, plane))
        timer.extra[stage] = {"slices": n, "batch_size": BATCH_SIZE,
                              "slices_per_second": round(n / statistics.median(timer.seconds[stage]), 1)}

    if write_dicom_series is None:
        return
    dicom = folder / "dicom"
    shutil.rmtree(dicom, ignore_errors=True)  # a reused --workdir may hold another run's series
    sz, sy, sx = case.image.spacing
    # canonical (S, P, L) = DICOM axial (slice along +S, rows along +P, columns along +L)
    timer("write_dicom_series (fixture)",
          lambda: write_dicom_series(dicom, image, pixel_spacing=(sy, sx), slice_step=sz))
    volume = timer("read_volume.dicom", lambda: read_volume(dicom))
    checks.setdefault("dicom_roundtrip_exact", []).append(np.array_equal(volume.array, case.image.array))
    sizes.setdefault("dicom_series", []).append(folder_mb(dicom))


def library_versions() -> dict:
    import nibabel
    import pydicom
    import tifffile

    return {"nibabel": nibabel.__version__, "pydicom": pydicom.__version__,
            "tifffile": tifffile.__version__}


def main(argv=None) -> dict:
    args = parse_args(argv)
    timer = StageTimer(verbose=not args.json_only)
    checks, sizes = {}, {}
    with tempfile.TemporaryDirectory(prefix="liverseg-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        for index in range(args.cases):
            if not args.json_only:
                print(f"case {index + 1}/{args.cases} ({args.slices} x {args.size} x {args.size})", file=sys.stderr)
            run_case(index, args, workdir, timer, checks, sizes)
    report = {
        "benchmark": "data_pipeline",
        "config": {"cases": args.cases, "shape_zyx": [args.slices, args.size, args.size], "seed": args.seed,
                   "planes": list(PLANES)},
        "machine": {**machine_info(), **library_versions()},
        "stages": timer.summary(),
        "disk_mb_median": {name: round(statistics.median(v), 2) for name, v in sizes.items()},
        "checks": {name: bool(all(v)) for name, v in checks.items()},
        "skipped": {} if DICOM_SKIPPED is None else {"dicom": DICOM_SKIPPED},
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "notes": "seconds: wall time per case, median over cases; peak_mb: tracemalloc peak of the stage "
                 "on the first case (separate untimed run); reads are warm-cache (files just written).",
    }
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
