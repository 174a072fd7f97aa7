"""Throughput of the two networks and of the training input pipeline; one JSON line each.

    python benchmarks/throughput.py                                   # demo profile, 128x128, CPU
    KERAS_BACKEND=jax python benchmarks/throughput.py --profile paper --image-size 512 \\
        --batch 16 --precision float32 mixed_bfloat16                 # the GPU run

For each network (``localization``, ``tuning``), precision (a Keras dtype policy) and batch
size: inference slices/s (``predict_on_batch``: host → device → host, as ``segment`` runs it)
and training slices/s (``train_on_batch`` with the loss the library trains it with), each the
median of ``--repeats`` timed calls after ``--warmup`` untimed ones (compilation, reported
apart as ``warmup_seconds``); the forward FLOPs per slice counted from the layers
(:func:`liverseg.models.forward_flops`: 2 × the multiply-accumulates of every convolution
and dense layer; a training step is counted as 3 × forward) and, on JAX, XLA's own count
beside it; the achieved TFLOP/s and, for a GPU whose dense peak is known, its fraction; the
peak device memory (GPU) or the process's peak resident memory (CPU).

A last line measures the training input pipeline alone (:class:`liverseg.train.loop.Batches`
over memory-mapped slices with the tuning network's multi-level targets), the slices/s a GPU
would be fed by one worker of this machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time

import numpy as np
from _machine import device_name, machine_info

# Dense (no sparsity) peak TFLOP/s of common accelerators, from the vendors' data sheets.
# dense peaks; "float32" is TF32's, which XLA's default precision uses for fp32 convolutions
# on these chips (measured on an H200: the fp32 tuner ran at 112 TFLOP/s, above plain fp32's 67)
PEAK_TFLOPS = {
    ("H100", "mixed_bfloat16"): 989.0, ("H100", "float32"): 494.0,  # SXM
    ("H200", "mixed_bfloat16"): 989.0, ("H200", "float32"): 494.0,
    ("A100", "mixed_bfloat16"): 312.0, ("A100", "float32"): 156.0,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo", help="smoke, demo or paper (networks' widths)")
    parser.add_argument("--image-size", type=int, default=None, help="override the profile's")
    parser.add_argument("--models", nargs="+", default=["localization", "tuning"],
                        choices=["localization", "tuning"])
    parser.add_argument("--batch", nargs="+", type=int, default=None,
                        help="batch sizes (default: the profile's training batch)")
    parser.add_argument("--precision", nargs="+", default=["float32"],
                        help="Keras dtype policies: float32, mixed_bfloat16, mixed_float16")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first")
    parser.add_argument("--no-train", action="store_true", help="inference only")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the input pipeline")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    import keras

    from liverseg.config import profile

    settings = profile(args.profile)
    if args.image_size:
        size = args.image_size
        settings = settings.replace(image_size=size, **{"localization.image_size": size,
                                                        "tuning.image_size": size})
    lines = []
    for precision in args.precision:
        for name in args.models:
            for batch in args.batch or [settings.train.batch_size]:
                lines.append(_emit(measure_network(keras, settings, name, batch, precision, args)))
    if not args.no_pipeline:
        lines.append(_emit(measure_pipeline(settings, max(args.batch or [settings.train.batch_size]))))
    return lines


def measure_network(keras, settings, name: str, batch: int, precision: str, args) -> dict:
    """One network at one batch size and precision: inference and training throughput."""
    from liverseg import losses
    from liverseg.models import build_localization_net, build_tuning_net, forward_flops
    from liverseg.train.loop import make_optimizer

    size = settings.image_size
    rng = np.random.default_rng(args.seed)
    image = rng.standard_normal((batch, size, size, 1), dtype="float32")
    x = image if name == "localization" else {
        "image": image, "prior": (rng.random(image.shape) > 0.5).astype("float32")}
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        keras.utils.set_random_seed(args.seed)
        model = (build_localization_net if name == "localization" else build_tuning_net)(settings)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    flops = forward_flops(model, x).total
    line = {"stage": "network", "model": name, "image_size": size, "batch": batch,
            "precision": precision, "backend": keras.backend.backend(),
            "device": device_name(keras), "params": model.count_params(),
            "forward_gflop_per_slice": round(flops / 1e9, 3),
            "xla_forward_gflop_per_slice": _xla_gflop(keras, model, x, batch)}
    warm, times = _timed(lambda: model.predict_on_batch(x), args.warmup, args.repeats)
    line["inference"] = _rates(warm, times, batch, flops, line["device"], precision)
    if not args.no_train:
        if name == "localization":
            loss = losses.BceDiceLoss(*settings.train.localization_loss)
            y = (image > 0).astype("float32")
        else:
            loss = losses.multi_level_losses(len(model.outputs), scheme=settings.train.loss_scheme)
            y = {n: (rng.random((batch, *o.shape[1:])) > 0.5).astype("float32")
                 for n, o in zip(model.output_names, model.outputs)}
        model.compile(make_optimizer(settings.train), loss=loss)  # the optimizer fit uses
        warm, times = _timed(lambda: model.train_on_batch(x, y), args.warmup, args.repeats)
        line["training"] = _rates(warm, times, batch, 3 * flops, line["device"], precision)
    line.update(_memory(keras))
    return line


def measure_pipeline(settings, batch: int, epochs: int = 2) -> dict:
    """Slices/s of the training batches (memmapped slices + multi-level targets), no network."""
    from liverseg import losses
    from liverseg.models import build_tuning_net
    from liverseg.train.loop import Batches

    size, n = settings.image_size, 256
    levels = len(build_tuning_net(settings).outputs)  # one target per output, as in training
    with tempfile.TemporaryDirectory() as folder:
        image = np.lib.format.open_memmap(f"{folder}/x.npy", "w+", np.float32, (n, size, size, 1))
        label = np.lib.format.open_memmap(f"{folder}/y.npy", "w+", np.uint8, (n, size, size, 1))
        rng = np.random.default_rng(0)
        for start in range(0, n, 32):
            image[start:start + 32] = rng.standard_normal((min(32, n - start), size, size, 1))
            label[start:start + 32] = rng.random((min(32, n - start), size, size, 1)) > 0.7
        image.flush(), label.flush()
        x = {"image": np.load(f"{folder}/x.npy", mmap_mode="r"),
             "prior": np.load(f"{folder}/x.npy", mmap_mode="r")}
        y = np.load(f"{folder}/y.npy", mmap_mode="r")
        times = []
        for epoch in range(epochs):
            order = np.random.default_rng(epoch).permutation(n)
            batches = Batches(x, y, batch, order=order,
                              targets=lambda t: losses.multi_level_targets(t.astype(np.float32), levels))
            tic = time.perf_counter()
            for i in range(len(batches)):
                batches[i]
            times.append(time.perf_counter() - tic)
    return {"stage": "input_pipeline", "image_size": size, "batch": batch, "slices": n,
            "target_levels": levels, "workers": 1,
            "slices_per_second": round(n / statistics.median(times), 1),
            "machine": machine_info()}


def _timed(call, warmup: int, repeats: int) -> tuple[float, list[float]]:
    tic = time.perf_counter()
    for _ in range(warmup):
        _block(call())
    warm = time.perf_counter() - tic
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        _block(call())
        times.append(time.perf_counter() - tic)
    return warm, times


def _block(result):
    """Wait for asynchronous (JAX) results, so a call's time is its whole time."""
    for leaf in result if isinstance(result, (list, tuple)) else [result]:
        getattr(leaf, "block_until_ready", lambda: None)()


def _rates(warm: float, times: list[float], batch: int, flops: int, device: str,
           precision: str) -> dict:
    median = statistics.median(times)
    achieved = batch * flops / median / 1e12
    peak = next((value for (chip, policy), value in PEAK_TFLOPS.items()
                 if chip in device and policy == precision), None)
    return {"warmup_seconds": round(warm, 3), "seconds_median": round(median, 5),
            "seconds_min": round(min(times), 5), "repeats": len(times),
            "slices_per_second": round(batch / median, 2), "tflops": round(achieved, 3),
            "fraction_of_peak": round(achieved / peak, 3) if peak else None}


def _xla_gflop(keras, model, x, batch: int) -> float | None:
    """XLA's FLOP count of the compiled forward pass per slice (JAX only)."""
    if keras.backend.backend() != "jax":
        return None
    import jax

    def forward(trainable, non_trainable, inputs):
        return model.stateless_call(trainable, non_trainable, inputs, training=False)[0]

    values = ([v.value for v in model.trainable_variables],
              [v.value for v in model.non_trainable_variables])
    cost = jax.jit(forward).lower(*values, x).cost_analysis()  # from the HLO, no compile
    cost = cost[0] if isinstance(cost, list) else cost
    return round(cost["flops"] / batch / 1e9, 3) if cost and "flops" in cost else None


def _memory(keras) -> dict:
    peak = None
    if keras.backend.backend() == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        peak = stats.get("peak_bytes_in_use")
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_logical_devices("GPU"):
            peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"peak_device_gib": None if peak is None else round(peak / 2**30, 2),
            "peak_host_rss_gib": round(rss, 2)}


def _emit(line: dict) -> dict:
    line.setdefault("keras", __import__("keras").__version__)
    line.setdefault("python", sys.version.split()[0])
    print(json.dumps(line), flush=True)
    return line


if __name__ == "__main__":
    main()
