"""Time training steps of the tuning network; print one JSON line.

    python benchmarks/train_step.py --profile paper --batch 4 --steps 5
    KERAS_BACKEND=jax python benchmarks/train_step.py --profile smoke

Builds the tuning net of a profile (optionally at another ``--image-size``), compiles it with
Adam and the multi-level loss (``liverseg.losses.multi_level_losses``, scheme ``paper``), runs ``--warmup`` steps (tracing/compilation) and
then times ``--steps`` calls of ``train_on_batch`` on random data.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import sys
import time

import numpy as np
from _machine import device_name


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", help="smoke, demo or paper")
    parser.add_argument("--image-size", type=int, default=None,
                        help="override the profile's slice size")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size (default: the profile's)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import keras

    from liverseg.config import profile
    from liverseg.losses import multi_level_losses
    from liverseg.models import build_tuning_net

    prof = profile(args.profile)
    tuning = prof.tuning
    if args.image_size:
        tuning = dataclasses.replace(tuning, image_size=args.image_size)
    batch = args.batch or prof.train.batch_size

    keras.utils.set_random_seed(args.seed)
    model = build_tuning_net(tuning)
    model.compile(
        keras.optimizers.Adam(prof.train.learning_rate),
        loss=multi_level_losses(len(model.outputs), scheme="paper"),
    )
    rng = np.random.default_rng(args.seed)
    shape = (batch, tuning.image_size, tuning.image_size, 1)
    x = {"image": rng.standard_normal(shape, dtype="float32"),
         "prior": (rng.random(shape) > 0.5).astype("float32")}
    y = {name: (rng.random((batch, *o.shape[1:])) > 0.5).astype("float32")
         for name, o in zip(model.output_names, model.outputs)}

    start = time.perf_counter()
    for _ in range(args.warmup):
        model.train_on_batch(x, y)
    warmup_seconds = time.perf_counter() - start

    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)

    median = statistics.median(times)
    result = {
        "backend": keras.backend.backend(),
        "device": device_name(keras),
        "profile": prof.name,
        "image_size": tuning.image_size,
        "batch": batch,
        "params": model.count_params(),
        "steps": args.steps,
        "warmup_seconds": round(warmup_seconds, 3),
        "step_seconds_median": round(median, 4),
        "step_seconds_min": round(min(times), 4),
        "slices_per_second": round(batch / median, 3),
        "final_loss": float(np.ravel(loss)[0]),
        "max_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "keras": keras.__version__,
        "python": sys.version.split()[0],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
