"""Time ``liverseg segment`` of one CT volume, file to file, per stage; print one JSON object.

    python benchmarks/volume.py                                    # demo profile, 400 x 512 x 512 phantom
    python benchmarks/volume.py --profile smoke --shape 40 128 128
    python benchmarks/volume.py --model runs/demo/model --input volume-0.nii --reference segmentation-0.nii

What is timed is :func:`liverseg.inference.volume.segment_file`, the whole of ``liverseg
segment``: read the CT, preprocess, per structure (liver, then lesion inside the liver) and
plane the cascade localizer -> Grad-CAM + CRF ROI prior -> tuner, fusion, post-processing,
write the label NIfTI. It runs in a fresh Python process (as the command line does), so the
times include loading the networks and the backend's first-call tracing, and the peak
memory is that of segmentation alone; the process's start-up and imports are reported
beside it (``process``).

The input is a synthetic phantom (``synthetic.make_case``, ``--shape``, ``--seed``) written as
an int16 NIfTI, or any CT given with ``--input``. The model folder is ``--model`` (written by
``liverseg train``) or, by default, a folder of *untrained* networks of ``--profile`` built
on the spot: the same networks, so the same compute, except that the CRF and
post-processing see other probabilities (and, if the untrained liver is empty, the lesion
cascade does not run) -- the JSON says ``"weights": "untrained"`` and its Dice means nothing.

Per ``{structure}_{plane}`` stage, the library's own stage time is split (unless
``--no-split``) by timing wrappers put around the functions it calls, at the place they are
looked up: model loading, resizing to and from the model's size, the localizer's
``predict`` (``predict.predict_probability``), Grad-CAM (``cam.grad_cam``, its maps resized
on the device), the ROI prior (``predict.roi_priors``, of which the dense CRF,
``prior.dense_crf`` or ``crf_grid.dense_crf_stack``), the tuner's ``predict``
(``predict.predict_tuned``) and fusion. The
first call of each is reported apart (``first_call_seconds``): it holds the tracing.
Peak memory: the process's resident set sampled by a thread (psutil) every
``--sample-interval`` seconds, overall and per stage, and ``ru_maxrss``.

``--stage-log FILE`` appends one JSON line to FILE as each step ends (phantom, model folder,
each library stage, each plane's ``predict_plane`` with its parts so far), so a run stopped
part-way (a time limit) still leaves what it measured. ``--prepare-only`` (with
``--workdir``) writes the phantom, its label and the untrained model folder and stops;
``--reuse`` then takes them from that ``--workdir`` instead of making them again (if they
were made for the same shape, seed, suffix, profile and planes; else they are made anew), so
the set-up can run beside other work (``benchmarks/gpu_device.sh``).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _machine import device_name, machine_info

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # liverseg from this checkout

PROFILES = ("smoke", "demo", "paper")
PLANES = ("axial", "coronal", "sagittal")
FUSIONS = ("soft", "union", "intersection", "majority")
STRUCTURES = ("liver", "lesion")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None,
                        help="model folder from `liverseg train` (default: untrained networks of --profile)")
    parser.add_argument("--profile", choices=PROFILES, default="demo",
                        help="profile of the untrained model folder (ignored with --model)")
    parser.add_argument("--input", type=Path, default=None,
                        help="CT to segment (NIfTI/NRRD file or DICOM folder) instead of a phantom")
    parser.add_argument("--reference", type=Path, default=None,
                        help="reference label of --input, for the Dice (a phantom has its own)")
    parser.add_argument("--shape", type=int, nargs=3, metavar=("Z", "Y", "X"), default=(400, 512, 512),
                        help="phantom shape (default 400 512 512, a LiTS-sized volume)")
    parser.add_argument("--seed", type=int, default=0, help="phantom and untrained weights seed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change one setting of the untrained model folder's profile, e.g. "
                             "--set prior.crf.engine=grid (JSON values; ignored with --model)")
    parser.add_argument("--suffix", choices=(".nii", ".nii.gz"), default=".nii.gz",
                        help="file type of the phantom and of the output label")
    parser.add_argument("--planes", nargs="+", choices=PLANES, default=None,
                        help="passed to segment_file (default: every plane of the model)")
    parser.add_argument("--fusion", choices=FUSIONS, default=None,
                        help="passed to segment_file (default: the model's, soft voting)")
    parser.add_argument("--no-split", action="store_true",
                        help="no timing wrappers: stage times of the library only")
    parser.add_argument("--in-process", action="store_true",
                        help="segment in this process (peak memory then includes the set-up)")
    parser.add_argument("--sample-interval", type=float, default=0.01,
                        help="seconds between resident-memory samples (psutil)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where files are written and kept (default: a temporary folder, removed)")
    parser.add_argument("--json-only", action="store_true", help="no progress on stderr (the backend's own start-up logs remain)")
    parser.add_argument("--stage-log", type=Path, default=None,
                        help="append a JSON line to this file as each step ends (survives a killed run)")
    parser.add_argument("--prepare-only", action="store_true",
                        help="write the phantom and untrained model folder to --workdir, then stop")
    parser.add_argument("--reuse", action="store_true",
                        help="take the phantom and model folder from --workdir if --prepare-only made them")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: JSON job
    args = parser.parse_args(argv)
    if args.reference is not None and args.input is None:
        parser.error("--reference goes with --input (a phantom brings its own label)")
    if (args.prepare_only or args.reuse) and args.workdir is None:
        parser.error("--prepare-only and --reuse need --workdir")
    return args


def log(args, message: str) -> None:
    if not args.json_only:
        print(message, file=sys.stderr, flush=True)


def stage_log(path, event: str, **fields) -> None:
    """Append one JSON line (``event``, wall-clock time, ``fields``) to ``path`` if given."""
    if not path:
        return
    line = {"benchmark": "segment_progress", "event": event, "time": round(time.time(), 3), **fields}
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")


# --------------------------------------------------------------------------------------
# Measuring (in the process that segments)


class Probe:
    """Stage bookkeeping shared by the timing wrappers and the memory sampler."""

    def __init__(self, log_path=None):
        self.log_path = log_path
        self.started = time.perf_counter()
        self.stage = "other"
        self.parts: dict[str, dict[str, dict]] = {}
        self.stage_peak_rss: dict[str, int] = {}
        self.peak_rss = 0
        self.samples = 0

    def add(self, part: str, seconds: float) -> None:
        entry = self.parts.setdefault(self.stage, {}).setdefault(
            part, {"seconds": 0.0, "calls": 0, "first_call_seconds": None})
        entry["seconds"] += seconds
        entry["calls"] += 1
        if entry["first_call_seconds"] is None:
            entry["first_call_seconds"] = seconds

    def log(self, event: str, stage: str, seconds: float, **fields) -> None:
        stage_log(self.log_path, event, stage=stage, seconds=round(seconds, 3),
                  elapsed_seconds=round(time.perf_counter() - self.started, 3),
                  peak_rss_mib=round(self.peak_rss / 2**20, 1), **fields)

    def sample(self, rss: int) -> None:
        self.samples += 1
        self.peak_rss = max(self.peak_rss, rss)
        stage = self.stage
        self.stage_peak_rss[stage] = max(self.stage_peak_rss.get(stage, 0), rss)


class MemorySampler(threading.Thread):
    """Samples this process's resident set size into a :class:`Probe` (needs psutil)."""

    def __init__(self, probe: Probe, interval: float):
        super().__init__(daemon=True)
        import psutil

        self.process, self.probe, self.interval = psutil.Process(), probe, interval
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.probe.sample(self.process.memory_info().rss)
            self.done.wait(self.interval)

    def stop(self):
        self.done.set()
        self.join()
        self.probe.stage = "after segment_file"
        self.probe.sample(self.process.memory_info().rss)


def _patch(owner, name: str, make_wrapper, undo: list) -> None:
    original = getattr(owner, name)
    undo.append((owner, name, original))
    setattr(owner, name, functools.wraps(original)(make_wrapper(original)))


def install_probes(probe: Probe, split: bool) -> list:
    """Put timing wrappers around the library's functions; return what undoes them.

    Stage wrappers set ``probe.stage`` (for the per-stage memory peak and to file the parts
    under); part wrappers add their time to the current stage. A plane's stage starts in
    ``Segmenter.predict_plane`` and lasts until the next one or the end of ``_fused``, so the
    fusion of its probabilities is filed under it, as the library's own stage time does.
    """
    import liverseg.cam
    import liverseg.cam.gradcam
    import liverseg.crf_grid
    import liverseg.io
    import liverseg.predict
    import liverseg.prior
    from liverseg.inference import volume
    from liverseg.inference.fusion import FusionAccumulator

    undo: list = []

    def stage(name):
        def make(fn):
            def wrapper(*a, **k):
                before, probe.stage = probe.stage, name
                tic = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    probe.stage = before
                    probe.log("stage_done", name, time.perf_counter() - tic)
            return wrapper
        return make

    # segment_file imports read_volume / write_volume from liverseg.io when it runs
    _patch(liverseg.io, "read_volume", stage("read"), undo)
    _patch(liverseg.io, "write_volume", stage("write"), undo)
    _patch(volume, "preprocess", stage("preprocess"), undo)
    _patch(volume, "postprocess_label", stage("postprocess"), undo)

    signature = inspect.signature(volume.Segmenter.predict_plane)

    def plane_stage(fn):
        def wrapper(*a, **k):
            bound = signature.bind(*a, **k)
            bound.apply_defaults()
            name = probe.stage = f"{bound.arguments['structure']}_{bound.arguments['plane']}"
            tic = time.perf_counter()
            result = fn(*a, **k)
            parts = {part: {"seconds": round(p["seconds"], 3), "calls": p["calls"],
                            "first_call_seconds": round(p["first_call_seconds"], 3)}
                     for part, p in probe.parts.get(name, {}).items()}
            probe.log("predict_plane_done", name, time.perf_counter() - tic, parts=parts)
            return result
        return wrapper

    def fused_stage(fn):
        def wrapper(*a, **k):
            try:
                return fn(*a, **k)
            finally:
                probe.stage = "other"
        return wrapper

    _patch(volume.Segmenter, "predict_plane", plane_stage, undo)
    _patch(volume.Segmenter, "_fused", fused_stage, undo)
    if not split:
        return undo

    def part(name):
        def make(fn):
            def wrapper(*a, **k):
                tic = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    probe.add(name, time.perf_counter() - tic)
            return wrapper
        return make

    parts = [
        # inside a plane's stage, where volume.py and predict.py look them up
        (volume.Segmenter, "_network", "load_networks"),
        (volume, "to_model_size", "resize_to_model"),
        (liverseg.predict, "predict_probability", "localizer_predict"),
        (liverseg.cam, "grad_cam", "grad_cam"),  # predict.py calls cam.grad_cam
        (liverseg.predict, "roi_priors", "roi_priors"),
        (liverseg.prior, "dense_crf", "roi_priors.dense_crf"),
        (liverseg.crf_grid, "dense_crf_stack", "roi_priors.dense_crf_grid"),  # prior.crf.engine
        (liverseg.predict, "predict_tuned", "tuner_predict"),
        (volume, "from_model_size", "resize_from_model"),
        (FusionAccumulator, "add", "fusion_add"),
        # between the stages (filed under "other")
        (volume, "check_finite", "check_finite"),
        (volume, "largest_component", "liver_largest_component"),
        (volume, "lesion_view", "lesion_view"),
        (FusionAccumulator, "result", "fusion_result"),
        (FusionAccumulator, "probability", "fusion_probability"),
    ]
    for owner, name, label in parts:
        _patch(owner, name, part(label), undo)
    return undo


def uninstall(undo: list) -> None:
    for owner, name, original in reversed(undo):
        setattr(owner, name, original)


NESTED = {"roi_priors": ("roi_priors.dense_crf", "roi_priors.dense_crf_grid")}
EXCLUSIVE = ("load_networks", "resize_to_model", "localizer_predict", "grad_cam", "roi_priors",
             "tuner_predict", "resize_from_model", "fusion_add")


def plane_breakdown(stage_seconds: float, parts: dict) -> dict:
    """One plane stage's parts, rounded, with what the wrappers did not cover."""
    out = {name: {"seconds": round(p["seconds"], 3), "calls": p["calls"],
                  "first_call_seconds": round(p["first_call_seconds"], 3)}
           for name, p in parts.items()}
    for outer, inners in NESTED.items():
        for inner in inners:
            if outer in parts and inner in parts:
                out[outer]["seconds_without_" + inner.split(".")[-1]] = round(
                    parts[outer]["seconds"] - parts[inner]["seconds"], 3)
    covered = sum(parts[name]["seconds"] for name in EXCLUSIVE if name in parts)
    out["not_covered"] = {"seconds": round(stage_seconds - covered, 3)}
    return out


def totals_by_part(planes: dict) -> dict:
    """Sum each part over the plane stages, and its share of their total."""
    total = sum(stage["seconds"] for stage in planes.values())
    sums: dict[str, float] = {}
    for stage in planes.values():
        for name, part in stage.get("parts", {}).items():
            sums[name] = sums.get(name, 0.0) + part["seconds"]
    return {name: {"seconds": round(s, 3), "share_of_plane_stages": round(s / total, 3) if total else None}
            for name, s in sorted(sums.items(), key=lambda item: -item[1])}


def measure(job: dict) -> dict:
    """Segment ``job["input"]`` to ``job["output"]`` with timing and memory probes."""
    start = time.perf_counter()
    import keras

    from liverseg.inference.volume import segment_file

    import_seconds = time.perf_counter() - start
    probe = Probe(job.get("stage_log"))
    undo = install_probes(probe, split=not job["no_split"])
    sampler = None
    try:
        import psutil  # noqa: F401
    except ImportError:
        psutil_missing = True
    else:
        psutil_missing = False
        sampler = MemorySampler(probe, job["sample_interval"])
    rss_before = _rss()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    load_before = _loadavg()
    if sampler:
        sampler.start()
    tic = probe.started = time.perf_counter()
    stage_log(job.get("stage_log"), "segment_file_start", import_seconds=round(import_seconds, 3))
    try:
        summary = segment_file(job["input"], job["output"], job["model"], planes=job["planes"],
                               fusion=job["fusion"], progress=job["progress"])
    finally:
        wall = time.perf_counter() - tic
        if sampler:
            sampler.stop()
        uninstall(undo)
    stage_log(job.get("stage_log"), "segment_file_done", seconds=round(wall, 3),
              stages=summary["seconds"], peak_rss_mib=round(probe.peak_rss / 2**20, 1))
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    maxrss_before, maxrss_after = usage_before.ru_maxrss, usage_after.ru_maxrss
    cpu_seconds = (usage_after.ru_utime + usage_after.ru_stime
                   - usage_before.ru_utime - usage_before.ru_stime)

    seconds = summary["seconds"]
    planes = {name: {"seconds": s} for name, s in seconds.items()
              if name.split("_", 1)[0] in STRUCTURES}
    if not job["no_split"]:
        for name, stage in planes.items():
            stage["parts"] = plane_breakdown(stage["seconds"], probe.parts.get(name, {}))
    other_parts = {name: round(p["seconds"], 3) for name, p in probe.parts.get("other", {}).items()}
    mib = 2**20
    memory = {
        "rss_before_mib": None if rss_before is None else round(rss_before / mib, 1),
        "ru_maxrss_mib_before": round(maxrss_before / 1024, 1),
        "ru_maxrss_mib_after": round(maxrss_after / 1024, 1),
    }
    if sampler:
        memory.update({
            "peak_rss_mib": round(probe.peak_rss / mib, 1),
            "peak_rss_increase_mib": round((probe.peak_rss - rss_before) / mib, 1),
            "peak_rss_mib_by_stage": {name: round(v / mib, 1) for name, v in probe.stage_peak_rss.items()},
            "samples": probe.samples,
            "sample_interval_s": job["sample_interval"],
        })
    else:
        memory["note"] = "psutil not installed: only ru_maxrss (the process's peak so far)"
    return {
        "summary": summary,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "loadavg_1min": {"before": load_before, "after": _loadavg()},
        "import_seconds": round(import_seconds, 3),
        "stage_seconds": seconds,
        "stage_seconds_sum": round(sum(seconds.values()), 3),
        "not_in_library_stages_seconds": round(wall - sum(seconds.values()), 3),
        "between_stages_parts_seconds": other_parts,
        "plane_stages": planes,
        "by_part": totals_by_part(planes) if not job["no_split"] else None,
        "memory": memory,
        "psutil_missing": psutil_missing,
        "runtime": runtime_info(keras),
    }


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _rss() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss


def runtime_info(keras) -> dict:
    backend = keras.backend.backend()
    info = {"backend": backend, "keras": keras.__version__, "device": device_name(keras)}
    if backend == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["tf_intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
        info["tf_inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads()
    elif backend == "jax":
        import jax

        info["jax"] = jax.__version__
    elif backend == "torch":
        import torch

        info["torch"] = torch.__version__
    return info


def write_phantom(args, folder: Path):
    import numpy as np

    from liverseg.datasets.synthetic import make_case
    from liverseg.io import write_volume

    case = make_case(args.seed, shape=tuple(args.shape))
    path = folder / f"phantom-{args.seed}{args.suffix}"
    write_volume(case.image.array.astype(np.int16), path, like=case.image)
    return case, path


def build_untrained_model(args, root: Path) -> dict:
    """A model folder of untrained networks of ``--profile`` (as tests/test_segment.py)."""
    import keras

    from liverseg import models
    from liverseg.config import parse_assignments, profile
    from liverseg.model_folder import network_file, write_manifest

    settings = profile(args.profile).replace(**parse_assignments(args.set))
    planes = tuple(args.planes or settings.planes)
    keras.utils.set_random_seed(args.seed)
    root.mkdir(parents=True, exist_ok=True)
    params = {}
    for plane in planes:
        for structure in STRUCTURES:
            stage = settings.stage(structure)  # the lesion networks may have their own size
            localizer = models.build_localization_net(stage)
            tuner = models.build_tuning_net(stage)
            localizer.save(root / network_file(plane, structure, "localizer"))
            tuner.save(root / network_file(plane, structure, "tuner"))
            params = {"localizer": localizer.count_params(), "tuner": tuner.count_params()}
    write_manifest(root, settings, planes, STRUCTURES, info={"weights": "untrained (benchmark)"})
    return params


def run_child(args, job: dict) -> tuple[dict, float]:
    """Measure in a fresh interpreter; return its result and the process's wall time."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(job)]
    tic = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL if args.json_only else None, text=True)
    seconds = time.perf_counter() - tic
    if done.returncode != 0:
        raise SystemExit(f"the segmentation process failed (exit code {done.returncode})")
    return json.loads(done.stdout), seconds


def dice_scores(output: Path, reference) -> dict:
    import numpy as np

    from liverseg.io import read_volume
    from liverseg.metrics import dice

    label = read_volume(output).array
    reference = np.asarray(reference)
    return {"liver_dice": round(float(dice(label >= 1, reference >= 1)), 4),
            "lesion_dice": round(float(dice(label == 2, reference == 2)), 4),
            "output_liver_voxels": int(np.count_nonzero(label >= 1)),
            "reference_liver_voxels": int(np.count_nonzero(reference >= 1))}


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.child is not None:  # the measuring process
        print(json.dumps(measure(json.loads(args.child))))
        return {}

    started = time.perf_counter()
    setup = {}
    with tempfile.TemporaryDirectory(prefix="liverseg-bench-segment-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        reference, case = None, None
        prepared = read_prepared(args, workdir) if args.reuse else None
        if args.input is None and prepared:
            log(args, f"phantom {tuple(args.shape)} (seed {args.seed}) from {workdir} ...")
            input_path = workdir / prepared["phantom"]
            import numpy as np

            reference = np.load(workdir / prepared["label"])
            setup.update(prepared["setup"], reused=True)
        elif args.input is None:
            log(args, f"phantom {tuple(args.shape)} (seed {args.seed}) ...")
            tic = time.perf_counter()
            case, input_path = write_phantom(args, workdir)
            setup["phantom_seconds"] = round(time.perf_counter() - tic, 3)
            reference = case.label
            stage_log(args.stage_log, "phantom_done", seconds=setup["phantom_seconds"],
                      shape_zyx=list(args.shape))
        else:
            input_path = args.input
            if args.reference is not None:
                from liverseg.io import read_volume

                reference = read_volume(args.reference).array
        if args.model is None and prepared:
            model_dir, params, weights = workdir / prepared["model"], prepared["params"], "untrained"
        elif args.model is None:
            log(args, f"untrained {args.profile} model folder ...")
            tic = time.perf_counter()
            model_dir = workdir / f"model-{args.profile}-untrained"
            params = build_untrained_model(args, model_dir)
            setup["model_build_seconds"] = round(time.perf_counter() - tic, 3)
            stage_log(args.stage_log, "model_folder_done", seconds=setup["model_build_seconds"],
                      profile=args.profile)
            weights = "untrained"
        else:
            model_dir, params, weights = args.model, None, "trained"
        if args.prepare_only:
            return write_prepared(args, workdir, input_path, case, model_dir, params, setup)
        from liverseg.inference.volume import Segmenter
        from liverseg.model_folder import read_model_folder

        folder = read_model_folder(model_dir)
        if str(folder.info.get("weights", "")).startswith("untrained"):  # a folder this script built
            weights = "untrained"
        output_path = workdir / f"label{args.suffix}"
        job = {"input": str(input_path), "output": str(output_path), "model": str(model_dir),
               "planes": args.planes, "fusion": args.fusion, "no_split": args.no_split,
               "sample_interval": args.sample_interval, "progress": not args.json_only,
               "stage_log": str(args.stage_log) if args.stage_log else None}
        log(args, f"segment {input_path.name} with {folder.root} ...")
        if args.in_process:
            tic = time.perf_counter()
            measured = measure(job)
            process_seconds = time.perf_counter() - tic
        else:
            measured, process_seconds = run_child(args, job)
        from liverseg.io import read_volume

        volume = read_volume(input_path)
        scores = dice_scores(output_path, reference) if reference is not None else None
        sizes = {"input_file_mib": round(_size(input_path) / 2**20, 2),
                 "output_file_mib": round(_size(output_path) / 2**20, 2)}

    summary = measured["summary"]
    lesion_ran = any(name.startswith("lesion_") for name in measured["stage_seconds"])
    report = {
        "benchmark": "segment",
        "config": {
            "profile": folder.settings.name,
            "weights": weights,
            "model": str(args.model) if args.model else f"untrained {args.profile} networks (built here)",
            "image_size": folder.settings.image_size,
            "network_params": params,
            "planes_option": args.planes,
            "fusion_option": args.fusion,
            "planes": summary["planes"],
            "fusion": summary["fusion"],
            "chunk_slices": inspect.signature(Segmenter).parameters["chunk"].default,
            "inference_batch_size": folder.settings.inference.batch_size,
            "crf_engine": folder.settings.prior.crf.engine,
            "set": args.set if args.model is None else [],
            "input": "phantom" if args.input is None else str(args.input),
            "seed": args.seed if args.input is None else None,
            "shape_zyx": list(volume.array.shape),
            "spacing_zyx_mm": [round(float(s), 4) for s in volume.spacing],
            "voxels": int(volume.array.size),
            **sizes,
            "split": not args.no_split,
            "in_process": args.in_process,
            "reused_setup": bool(setup.get("reused")),
        },
        "machine": {**machine_info(), "keras_backend_env": os.environ.get("KERAS_BACKEND"),
                    **measured["runtime"],
                    "loadavg_1min_around_segment_file": measured["loadavg_1min"]},
        "seconds": {
            "segment_file": measured["wall_seconds"],
            "segment_file_cpu": measured["cpu_seconds"],
            "stages": measured["stage_seconds"],
            "stages_sum": measured["stage_seconds_sum"],
            "outside_library_stages": measured["not_in_library_stages_seconds"],
            "outside_library_stages_parts": measured["between_stages_parts_seconds"],
            "process": {"wall": round(process_seconds, 3), "imports": measured["import_seconds"]},
            "setup": setup,
            "benchmark_total": round(time.perf_counter() - started, 3),
        },
        "lesion_cascade_ran": lesion_ran,
        "plane_stages": measured["plane_stages"],
        "by_part": measured["by_part"],
        "memory": measured["memory"],
        "result": {"liver_ml": round(summary["liver_ml"], 2), "lesion_ml": round(summary["lesion_ml"], 2),
                   **(scores or {}),
                   "dice_meaningful": weights == "trained" and scores is not None},
        "notes": (
            "seconds.segment_file: wall time of liverseg.inference.volume.segment_file (read file .. label file "
            "written; segment_file_cpu: user + system CPU time of the process; other processes on the machine "
            "show in machine.loadavg_1min_around_segment_file), in a fresh process unless in_process; "
            "seconds.stages: the library's own stage times; "
            "plane_stages.*.parts: timing wrappers (inclusive times; first_call_seconds includes tracing); "
            "memory: resident set of the measuring process. "
            + ("Untrained weights: same networks and compute as trained ones, but the CRF and post-processing "
               "see other probabilities, and the lesion cascade runs only where the untrained liver is not "
               "empty; the Dice is meaningless." if weights == "untrained" else "")),
    }
    print(json.dumps(report, indent=2))
    return report


PREPARED = "prepared.json"


def _prepared_key(args) -> dict:
    return {"profile": args.profile, "shape": list(args.shape), "seed": args.seed,
            "suffix": args.suffix, "planes": args.planes, "input": str(args.input),
            "model": str(args.model), "set": sorted(args.set)}


def write_prepared(args, workdir: Path, input_path: Path, case, model_dir: Path, params,
                   setup: dict) -> dict:
    """``--prepare-only``: keep the phantom's label beside it and say what was made (last, so
    the file's presence means everything is there); print it as the result."""
    import numpy as np

    label = None
    if case is not None:
        label = f"{input_path.name.split('.')[0]}-label.npy"
        np.save(workdir / label, np.asarray(case.label))
    prepared = {"benchmark": "segment_prepare", "key": _prepared_key(args),
                "phantom": input_path.name if args.input is None else None, "label": label,
                "model": Path(model_dir).name if args.model is None else None,
                "params": params, "setup": setup, "machine": machine_info()}
    (workdir / PREPARED).write_text(json.dumps(prepared))
    print(json.dumps(prepared, indent=2))
    return prepared


def read_prepared(args, workdir: Path) -> dict | None:
    """What ``--prepare-only`` made in ``workdir`` for these same arguments, else ``None``."""
    try:
        prepared = json.loads((workdir / PREPARED).read_text())
    except (OSError, ValueError):
        return None
    if prepared.get("key") != _prepared_key(args):
        return None
    return prepared


def _size(path: Path) -> int:
    path = Path(path)
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


if __name__ == "__main__":
    main()
