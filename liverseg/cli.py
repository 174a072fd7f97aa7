"""Command line: ``liverseg <command>``.

Commands that exist today: ``info`` (what liverseg reads from a file or folder),
``synthesize`` (write a LiTS-style dataset of synthetic phantoms) and ``evaluate``
(LiTS-style scores of a predicted label file against a reference, as JSON).
``train``, ``segment`` and ``reproduce`` arrive with the training and inference issues.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from liverseg.errors import LiversegError


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
    from liverseg.io import read_volume
    from liverseg.metrics import evaluate_case

    prediction = read_volume(args.prediction)
    reference = read_volume(args.reference)
    scores = evaluate_case(prediction.array, reference.array, reference.spacing)
    return {"prediction": str(args.prediction), "reference": str(args.reference), **scores}


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

    evaluate = commands.add_parser("evaluate", help="LiTS-style scores of a label file, as JSON")
    evaluate.add_argument("prediction", type=Path, help="predicted label volume (0/1/2)")
    evaluate.add_argument("reference", type=Path, help="reference label volume (0/1/2)")
    evaluate.add_argument("-o", "--output", type=Path, help="also write the JSON here")
    evaluate.set_defaults(run=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.run(args)
    except LiversegError as error:
        print(f"liverseg {args.command}: {error}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2, allow_nan=True)
    if getattr(args, "output", None):
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
