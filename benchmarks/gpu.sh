#!/usr/bin/env bash
# The GPU figures of the README's performance section, in one command:
#     bash benchmarks/gpu.sh [OUT_DIR]        (JSON lines in OUT_DIR, default benchmarks/results)
# JAX backend, paper networks at 512 x 512, fp32 and bf16; then one LiTS-sized volume
# (400 x 512 x 512) through the full system with untrained paper networks. Needs liverseg
# installed with a CUDA build of JAX (README: "Running on a GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results}
mkdir -p "$out"
export KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 PYTHONUNBUFFERED=1
python benchmarks/throughput.py --profile paper --image-size 512 --batch 16 \
    --precision mixed_bfloat16 float32 --repeats 10 | tee "$out/throughput.jsonl"
python benchmarks/volume.py --profile paper --shape 400 512 512 --json-only | tee "$out/volume.json"
