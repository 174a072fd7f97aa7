"""Command line: ``liverseg <command>``.

Commands: ``info`` (what liverseg reads from a file or folder), ``synthesize`` (write a
LiTS-style dataset of synthetic phantoms), ``train`` (train the whole system into a model
folder), ``segment`` (a CT volume to a 0/1/2 label NIfTI with a model folder) and ``evaluate``
(LiTS-style scores of a predicted label file against a reference, or of two folders of them
matched by file name, as JSON and optionally CSV) and ``reproduce`` (run the book's chapters
with papermill into a run folder and render it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from liverseg.errors import LiversegError, SettingError


def _info(args) -> dict:
    from liverseg.io import read_volume

    volume = read_volume(args.path)
    array = volume.array
    return {
        "path": str(args.path),
        "shape_zyx": list(array.shape),
        "spacing_zyx_mm": [round(float(s), 6) for s in volume.spacing],
        "dtype": str(array.dtype),
        "min": float(array.min()),
        "max": float(array.max()),
    }


def _synthesize(args) -> dict:
    from liverseg.datasets import synthetic

    shape = tuple(args.shape) if args.shape else None
    paths = synthetic.make_dataset(args.root, args.cases, seed=args.seed, shape=shape)
    return {"root": str(args.root), "files": [str(p) for p in paths]}


def _evaluate(args) -> dict:
    """Score a prediction against a reference (files or folders, :mod:`liverseg.evaluation`);
    write ``-o`` JSON and ``--csv`` only once every case is scored, so an error leaves no file."""
    from liverseg.evaluation import evaluate_paths, scores_csv
    from liverseg.io.atomic import atomic_write_text

    result = evaluate_paths(args.prediction, args.reference)
    outputs = []
    if args.json_path:
        outputs.append((args.json_path, json.dumps(result, indent=2, allow_nan=True) + "\n"))
    if args.csv_path:
        outputs.append((args.csv_path, scores_csv(result.get("cases", [result]))))
    for path, text in outputs:
        atomic_write_text(path, text)
    return result


def _settings(args):
    """The profile named by ``--profile``, with ``--dataset``, ``--planes``, ``--devices`` and
    ``--set`` applied."""
    from liverseg.config import parse_assignments, profile

    settings = profile(args.profile)
    changes = {"dataset": args.dataset}
    if args.planes:
        changes["planes"] = tuple(args.planes)
    if getattr(args, "devices", None):
        changes["train.devices"] = args.devices
    try:
        changes.update(parse_assignments(args.set or ()))
    except SettingError as error:
        raise SystemExit(f"liverseg train: --set expects KEY=VALUE ({error})") from None
    try:
        return settings.replace(**changes)
    except (ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"liverseg train: bad setting ({error})") from None


def _train(args) -> dict:
    from liverseg.train import train_system

    settings = _settings(args)
    model_dir = train_system(settings, args.out, data_dir=args.data_dir,
                             progress=not args.quiet)
    report = json.loads((args.out / "training.json").read_text())
    return {"model": str(model_dir), "profile": settings.name, "dataset": settings.dataset,
            "planes": list(settings.planes), "train_seconds": report["train_seconds"],
            "validation": {name: {"localizer_dice": c["localizer"]["val"]["dice"],
                                  "tuner_dice": c["tuner"]["val"]["dice"]}
                           for name, c in report["cascades"].items()}}


def _segment(args) -> dict:
    from liverseg.errors import UnsupportedFormatError
    from liverseg.inference.volume import segment_file

    if not args.label_path.name.lower().endswith((".nii", ".nii.gz")):
        raise UnsupportedFormatError("the output must be a NIfTI file (.nii or .nii.gz)",
                                     args.label_path)
    return segment_file(args.input, args.label_path, args.model, planes=args.planes,
                        fusion=args.fusion, progress=not args.quiet, threshold=args.threshold)


def _reproduce(args) -> dict:
    from liverseg.reproduce import reproduce

    return reproduce(args.out, dataset=args.dataset, data_dir=args.data_dir, profile=args.profile,
                     backend=args.backend, only=args.chapters, skip=args.skip or (),
                     force=args.force, render=not args.no_render, progress=not args.quiet)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The data, profile and run folder that ``train`` and ``reproduce`` share."""
    from liverseg.config import DATASETS, PROFILE_NAMES

    parser.add_argument("--dataset", choices=DATASETS, default="synthetic")
    parser.add_argument("--data-dir", type=Path, help="dataset root (LiTS or 3D-IRCADb-01)")
    parser.add_argument("--profile", choices=PROFILE_NAMES, default="demo")
    parser.add_argument("--out", type=Path, required=True, help="run folder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liverseg", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    info = commands.add_parser("info", help="shape, spacing and HU range of a volume")
    info.add_argument("path", type=Path, help="NIfTI/NRRD/ANALYZE file or DICOM series folder")
    info.set_defaults(run=_info)

    synth = commands.add_parser("synthesize", help="write synthetic phantoms as LiTS-style NIfTI")
    synth.add_argument("root", type=Path, help="output folder")
    synth.add_argument("--cases", type=int, default=10, help="number of phantoms (default 10)")
    synth.add_argument("--seed", type=int, default=0, help="seed of the first phantom (default 0)")
    synth.add_argument("--shape", type=int, nargs=3, metavar=("Z", "Y", "X"), help="fixed shape")
    synth.set_defaults(run=_synthesize)

    from liverseg.config import FUSIONS, PLANES

    train = commands.add_parser(
        "train", help="train both cascades on every plane into a model folder",
        description="Train the liver and lesion cascades (localization net, Grad-CAM + CRF prior, "
        "tuning net, Algorithm 1) for each plane of the profile. Writes OUT/model (read by "
        "`liverseg segment`), OUT/split.json, OUT/training.json and checkpoints under OUT/work; "
        "rerun the same command to resume a killed run.")
    _add_run_arguments(train)
    train.add_argument("--planes", nargs="+", choices=PLANES, help="default: the profile's")
    train.add_argument("--devices", type=int, metavar="N",
                       help="data-parallel training on N accelerators (JAX backend; "
                       "train.batch_size must be a multiple of N)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="change one setting, e.g. --set train.epochs=5 (JSON values)")
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    train.set_defaults(run=_train)

    segment = commands.add_parser(
        "segment", help="segment a CT volume into a 0/1/2 label NIfTI",
        description="Segment the liver (1) and its lesions (2) in a CT volume (NIfTI, NRRD or a "
        "DICOM series folder) with a model folder from `liverseg train`. The label NIfTI is "
        "written in the input's geometry, so it overlays the input in 3D Slicer or ITK-SNAP.")
    segment.add_argument("input", type=Path, help="CT volume: NIfTI/NRRD file or DICOM folder")
    segment.add_argument("-o", "--output", dest="label_path", type=Path, required=True,
                         metavar="OUTPUT.nii.gz", help="label file to write")
    segment.add_argument("--model", type=Path, required=True, help="model folder")
    segment.add_argument("--planes", nargs="+", choices=PLANES, help="default: all of the model's")
    segment.add_argument("--fusion", choices=FUSIONS, help="default: the model's (soft voting)")
    segment.add_argument("--threshold", type=float, metavar="T",
                         help="the liver's cut: the soft vote keeps voxels whose mean probability "
                         "is above T (default: the model's, 0.5); lower finds more of a real "
                         "liver with phantom-trained networks")
    segment.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    segment.set_defaults(run=_segment)

    evaluate = commands.add_parser(
        "evaluate",
        help="LiTS-style scores of a label file, or of two folders of them, as JSON",
        description="Score a predicted label volume (0 background, 1 liver, 2 lesion) against a "
        "reference of the same shape and geometry, or every file of a prediction folder against "
        "the reference file of the same name (test-segmentation-N.nii matches segmentation-N.nii); "
        "folders also get a summary (mean over cases and global Dice).",
    )
    evaluate.add_argument("prediction", type=Path, help="predicted label file or folder of them")
    evaluate.add_argument("reference", type=Path, help="reference label file or folder of them")
    evaluate.add_argument("-o", "--output", dest="json_path", type=Path, metavar="OUT.json",
                          help="also write the JSON here")
    evaluate.add_argument("--csv", dest="csv_path", type=Path, metavar="OUT.csv",
                          help="write one row of scores per case here")
    evaluate.set_defaults(run=_evaluate)

    reproduce = commands.add_parser(
        "reproduce", help="run every chapter of the book with papermill and render it",
        description="Execute the book's chapters in order (papermill) with one dataset and "
        "profile into OUT/book, keeping trained networks in OUT/store and numbers in "
        "OUT/results, then render OUT/_build/html. Chapters already run with the same "
        "parameters are skipped; the first chapter that fails stops the run and names the cell.")
    _add_run_arguments(reproduce)
    reproduce.add_argument("--backend", choices=("tensorflow", "jax"),
                           help="Keras backend (default: KERAS_BACKEND or tensorflow)")
    reproduce.add_argument("--chapters", nargs="+", metavar="NAME", help="run only these")
    reproduce.add_argument("--skip", nargs="+", metavar="NAME", help="run all but these")
    reproduce.add_argument("--force", action="store_true", help="run chapters already done")
    reproduce.add_argument("--no-render", action="store_true", help="do not build the HTML")
    reproduce.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    reproduce.set_defaults(run=_reproduce)
    return parser


#: the commands that build Keras networks (and so start TensorFlow)
KERAS_COMMANDS = ("train", "segment")


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's start-up lines (CPU features, oneDNN) before a command's own output are
    # noise to a user; a user who wants them sets the variable (to 0)
    user_chose = "TF_CPP_MIN_LOG_LEVEL" in os.environ
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    if args.command in KERAS_COMMANDS and not user_chose:
        from liverseg.backend import start_tensorflow_quietly

        start_tensorflow_quietly()
    # TensorFlow warns each time a new network's predict or gradient function is traced, which
    # training and segmenting a dozen networks always does: noise between the progress bars.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        result = args.run(args)
    except (LiversegError, ValueError) as error:  # bad input or settings: one line, no traceback
        print(f"liverseg {args.command}: {error}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2, allow_nan=True)
    if getattr(args, "output", None):
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
