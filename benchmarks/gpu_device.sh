#!/usr/bin/env bash
# gpu.sh's figures in one call of the workplace's GPU machine (H200, no internet, no
# TensorFlow), within a fixed time budget:
#     bash benchmarks/gpu_device.sh            (run in the repository root; results in $OUT)
# Needs the wheels of what that machine lacks in .whl/ (keras, namex, optree, nibabel, pydicom,
# pynrrd, a cp312 build of pydensecrf2); they are installed with --target into $GPU_BENCH_SITE
# and liverseg is used from this checkout. Steps, most important first, each under its own
# `timeout` (and never past the budget), so one that fails or is slow leaves the others:
#   a  throughput.py: paper networks at 512², batch 16, bf16, inference + training, input pipeline
#   b  throughput.py: the tuner's fp32 inference
#   c  volume.py: a 400 x 512 x 512 phantom through the whole system, untrained paper networks,
#      the dense CRF on the device (prior.crf.engine=grid: the run of 2026-12-04 measured
#      pydensecrf's), per-stage split; its phantom and model folder are made on the CPU while a and b run
#      (--prepare-only / --reuse), and each stage is logged as it ends (--stage-log), so a run
#      cut short by the budget still says where its time went.
# What comes back ($OUT, 3 files): results.jsonl (one JSON object a line, each with "step"),
# volume_progress.jsonl (the volume run's stages as they end), log.txt (everything printed).
# Environment: GPU_BENCH_PYTHON (python3), GPU_BENCH_BUDGET (seconds for the whole script,
# 470), GPU_BENCH_TINY=1 (tiny sizes: a CPU dry run), GPU_BENCH_TIMEOUT_SCALE (an integer
# factor on each step's own limit, 1; the budget still caps them), GPU_BENCH_SITE (/tmp/site),
# GPU_BENCH_WORK (/tmp/gpu-bench), GPU_BENCH_SKIP_INSTALL=1 (wheels already on the path).
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
OUT=${OUT:-/tmp/gpuout}
PY=${GPU_BENCH_PYTHON:-python3}
BUDGET=${GPU_BENCH_BUDGET:-470}
SCALE=${GPU_BENCH_TIMEOUT_SCALE:-1}
SITE=${GPU_BENCH_SITE:-/tmp/site}
WORK=${GPU_BENCH_WORK:-/tmp/gpu-bench}
mkdir -p "$OUT" "$WORK"
RES=$OUT/results.jsonl
PROGRESS=$OUT/volume_progress.jsonl
: >"$RES"
: >"$PROGRESS"

export KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 PYTHONUNBUFFERED=1
export JAX_COMPILATION_CACHE_DIR=$WORK/jax-cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several processes share the GPU (volume.py's two)

if [[ ${GPU_BENCH_TINY:-0} == 1 ]]; then
    NET=(--profile smoke --image-size 64 --batch 4 --repeats 2)
    VOL=(--profile smoke --shape 24 64 64 --set prior.crf.engine=grid)
else
    NET=(--profile paper --image-size 512 --batch 16 --repeats 10)
    VOL=(--profile paper --shape 400 512 512 --set prior.crf.engine=grid)
fi

elapsed() { echo $(($(date +%s) - T0)); }

# Append the JSON of a step's stdout (one document, or JSON lines) to results.jsonl, tagged.
tag() {
    "$PY" - "$@" >>"$RES" <<'EOF'
import json, sys
step, path = sys.argv[1:3]
extra = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
try:
    text = open(path).read()
except OSError:
    text = ""
try:
    docs = [json.loads(text)] if text.strip() else []
except ValueError:
    docs = []
    for line in text.splitlines():
        try:
            docs.append(json.loads(line))
        except ValueError:
            pass
for doc in docs:
    print(json.dumps({"step": step, **extra, **doc} if isinstance(doc, dict) else {"step": step, "value": doc}))
EOF
}

# step NAME LIMIT COMMAND...: run under `timeout` (LIMIT, cut to what the budget has left),
# stdout kept in $WORK/NAME.out and added to results.jsonl, stderr to the log.
step() {
    local name=$1 limit=$2 left rc tic seconds
    shift 2
    limit=$((limit * SCALE))
    left=$((BUDGET - $(elapsed) - 5))
    ((limit > left)) && limit=$left
    if ((limit < 15)); then
        echo "=== $name: skipped, ${left}s of the budget left"
        echo "{\"step\": \"$name\", \"skipped\": true, \"budget_left_s\": $left}" >>"$RES"
        return
    fi
    echo "=== $name (timeout ${limit}s, at $(elapsed)s): $*"
    tic=$(date +%s.%N)
    timeout -k 10 "$limit" "$@" >"$WORK/$name.out"
    rc=$?
    seconds=$(awk "BEGIN {printf \"%.1f\", $(date +%s.%N) - $tic}")
    if (($(wc -c <"$WORK/$name.out") < 8000)); then
        cat "$WORK/$name.out"
    else
        echo "($(wc -c <"$WORK/$name.out") bytes of JSON: in results.jsonl)"
    fi
    echo "=== $name: exit $rc after ${seconds}s$( ((rc == 124 || rc == 137)) && echo ' (TIMED OUT)')"
    tag "$name" "$WORK/$name.out"
    echo "{\"step\": \"$name\", \"event\": \"step_done\", \"rc\": $rc, \"timed_out\": $( ((rc == 124 || rc == 137)) && echo true || echo false), \"seconds\": $seconds, \"timeout_s\": $limit, \"at_s\": $(elapsed)}" >>"$RES"
}

main() {
    echo "=== gpu_device.sh $(date -u +%FT%TZ) tiny=${GPU_BENCH_TINY:-0} budget=${BUDGET}s python=$PY"
    uname -a
    echo "cpus: $(nproc)"; free -g | head -2
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi
        nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
    else
        echo "no nvidia-smi"
    fi
    if [[ ${GPU_BENCH_SKIP_INSTALL:-0} != 1 ]]; then
        echo "=== wheels -> $SITE"
        ls -la .whl
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SITE" .whl/*.whl || echo "WHEEL INSTALL FAILED (rc $?)"
    fi
    export PYTHONPATH=$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}
    echo "=== versions (at $(elapsed)s)"
    "$PY" - >"$WORK/env.out" <<'EOF'
import json, os, platform, sys
info = {"python": sys.version.split()[0], "executable": sys.executable}
for name in ("numpy", "scipy", "jax", "jaxlib", "keras", "optree", "ml_dtypes", "h5py", "skimage", "nibabel", "psutil"):
    try:
        info[name] = __import__(name).__version__
    except Exception as error:  # noqa: BLE001
        info[name] = f"MISSING: {error!r}"
try:
    import jax
    info["devices"] = [str(d) for d in jax.devices()]
    info["device_kind"] = jax.devices()[0].device_kind
    import keras
    info["keras_backend"] = keras.backend.backend()
    import liverseg.crf, liverseg.inference.volume, liverseg.models, liverseg.train  # noqa: F401
    import pydensecrf.densecrf  # noqa: F401
    info["liverseg_imports"] = "ok"
    info["tensorflow_imported"] = "tensorflow" in sys.modules
except Exception as error:  # noqa: BLE001
    info["error"] = repr(error)
info["env"] = {k: v for k, v in os.environ.items() if k.startswith(("JAX", "XLA", "KERAS", "PYTHONPATH"))}
print(json.dumps(info))
EOF
    cat "$WORK/env.out"
    tag env "$WORK/env.out"

    # c's set-up on the CPU (phantom + 12 untrained networks, written to disk), beside a and b
    rm -rf "$WORK/volume"
    echo "=== volume set-up in the background (CPU, nice), at $(elapsed)s"
    (JAX_PLATFORMS=cpu nice -n 10 timeout -k 10 "$((BUDGET - 60))" "$PY" benchmarks/volume.py "${VOL[@]}" \
        --workdir "$WORK/volume" --prepare-only --json-only --stage-log "$PROGRESS" \
        >"$WORK/prepare.out" 2>"$WORK/prepare.err") &
    local prep=$!

    step a 200 "$PY" benchmarks/throughput.py "${NET[@]}" --precision mixed_bfloat16
    step b 60 "$PY" benchmarks/throughput.py "${NET[@]}" --models tuning --precision float32 \
        --no-train --no-pipeline

    echo "=== waiting for the volume set-up (at $(elapsed)s)"
    wait "$prep"
    echo "=== volume set-up: exit $? at $(elapsed)s"
    cat "$WORK/prepare.err"
    tag prepare "$WORK/prepare.out"

    step c 600 "$PY" benchmarks/volume.py "${VOL[@]}" --workdir "$WORK/volume" --reuse \
        --stage-log "$PROGRESS"

    echo "=== summary (at $(elapsed)s of ${BUDGET}s)"
    "$PY" - "$RES" "$PROGRESS" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
for r in rows:
    if r.get("stage") == "network":
        cells = [f"{r['step']} {r['model']:12} {r['precision']:15} b{r['batch']} {r['image_size']}²"]
        for kind in ("inference", "training"):
            if kind in r:
                k = r[kind]
                cells.append(f"{kind} {k['slices_per_second']} sl/s {k['tflops']} TF/s "
                             f"(peak {k['fraction_of_peak']}, warm-up {k['warmup_seconds']} s)")
        cells.append(f"{r['forward_gflop_per_slice']} GFLOP fwd, mem {r['peak_device_gib']} GiB")
        print(" | ".join(cells))
    elif r.get("stage") == "input_pipeline":
        print(f"{r['step']} input pipeline {r['slices_per_second']} slices/s ({r['image_size']}², one worker)")
    elif r.get("benchmark") == "segment":
        s = r["seconds"]
        print(f"{r['step']} volume {r['config']['shape_zyx']}: segment_file {s['segment_file']} s "
              f"(cpu {s['segment_file_cpu']} s), process {s['process']}, setup {s['setup']}, "
              f"peak RSS {r['memory'].get('peak_rss_mib')} MiB")
        print("   stages:", s["stages"])
        print("   by part:", {k: v["seconds"] for k, v in (r.get("by_part") or {}).items()})
    elif r.get("event") == "step_done":
        print(f"step {r['step']}: rc {r['rc']}, {r['seconds']} s of {r['timeout_s']} s"
              + (" TIMED OUT" if r["timed_out"] else ""))
    elif r.get("skipped"):
        print(f"step {r['step']}: skipped")
done = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]
print("volume progress:", [(d.get("stage") or d["event"], d.get("seconds")) for d in done])
EOF
    echo "=== done at $(elapsed)s"
}

main 2>&1 | tee "$OUT/log.txt"
