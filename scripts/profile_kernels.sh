#!/usr/bin/env bash
# Per-kernel GPU time of the CUDA backend on a GLM-4-9B-shaped model, from Nsight Compute's
# kernel timer (no hardware-counter sections, clocks left alone): the 4,096-token prefill and
# the decode steps of cuda_decode_bench (PROFILE_BATCH sequences, default 1, after
# PROFILE_PROMPT prompt tokens, default 128), kernels in launch order, summed per kernel name
# by scripts/profile_summary.py. Kernels are serialised under ncu, so launch overlap (PDL) is not
# in these figures: they say where the GPU time goes, not the step's wall time.
# Run on a GPU machine after scripts/gpu_check.sh --build-only (or a full gpu_check) built
# build-gpu-bin/.
#   scripts/profile_kernels.sh [LAYERS (default 8)] [WORK (default /tmp/autoglm-profile)]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
LAYERS=${1:-8}
WORK=${2:-/tmp/autoglm-profile}
OUTDIR=${OUT:-$WORK}
export PATH=/usr/local/cuda/bin:$PATH
mkdir -p "$WORK" "$OUTDIR"
MODEL=$WORK/glm4-9b-random-l$LAYERS
[ -f "$MODEL/config.json" ] || python3 "$REPO/scripts/make_glm9b_random.py" "$MODEL" \
  --layers "$LAYERS" >"$OUTDIR/make_model.log" 2>&1 || [ -f "$MODEL/config.json" ]
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
# The prefill bench runs 4 prefills, then the decode run prefills its prompts (one forward per
# 4,096 prompt tokens; PROFILE_PREFILL_FORWARDS counts them all) and decodes.
"$NCU" --clock-control none --metrics gpu__time_duration.sum --csv --launch-count \
  "${PROFILE_LAUNCHES:-1200}" "$REPO/build-gpu-bin/cuda_decode_bench" "$MODEL" "${PROFILE_BATCH:-1}" \
  "${PROFILE_PROMPT:-128}" \
  "${PROFILE_PREFILL:-4096}" >"$OUTDIR/ncu_kernels.csv" 2>"$OUTDIR/ncu.err" || true
python3 "$REPO/scripts/profile_summary.py" "$OUTDIR/ncu_kernels.csv" "$LAYERS" "${PROFILE_BATCH:-1}" \
  "${PROFILE_PREFILL_FORWARDS:-5}"
