#!/usr/bin/env bash
# The GPU figures of the README's performance section, in one command:
#     bash benchmarks/gpu.sh [OUT_DIR]        (JSON lines in OUT_DIR, default benchmarks/results)
# JAX backend, paper networks at 512 x 512: both networks in bf16 (inference and training), the
# tuner's fp32 inference beside them, the input pipeline; then one LiTS-sized volume
# (400 x 512 x 512) through the full system with untrained paper networks. Needs liverseg
# installed with a CUDA build of JAX (README: "Running on a GPU"). Not yet run on a GPU: the
# expected time (about 6-8 minutes on one H100) is an estimate from the CPU runs' compile and
# step times, most of it compilation; the persistent compilation cache lets the twelve networks
# of the volume run share the compiled programs of their three architectures.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results}
mkdir -p "$out"
export KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 PYTHONUNBUFFERED=1
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/liverseg-jax-cache}
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
python benchmarks/throughput.py --profile paper --image-size 512 --batch 16 \
    --precision mixed_bfloat16 --repeats 10 | tee "$out/throughput.jsonl"
python benchmarks/throughput.py --profile paper --image-size 512 --batch 16 --models tuning \
    --precision float32 --no-train --no-pipeline --repeats 10 | tee -a "$out/throughput.jsonl"
python benchmarks/volume.py --profile paper --shape 400 512 512 --json-only | tee "$out/volume.json"
