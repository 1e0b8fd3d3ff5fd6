#!/usr/bin/env bash
# The CUDA backend's whole check on a GPU machine, in one call: build (or use carried
# binaries), run the CUDA kernel and end-to-end tests, compute-sanitizer passes (memcheck;
# racecheck and synccheck over the kernels that share memory between warps), and the full-size
# check (a GLM-4-9B-shaped random BF16 model: loads within the memory budget, generates, and is
# teacher-forced on transformers' fp32 greedy continuation of the same weights). The end-to-end
# criteria are relative to transformers' own BF16/FP16 error (tests/fixtures/models/*/
# lowp_error.json, scripts/lowp_reference.py); with torch on the GPU machine this script also
# runs transformers in BF16/FP16 on this GPU and the test reports our distance to those logits
# next to theirs to the fp32 truth. Prints a summary table last.
# Logs go to $OUT (the device tool's folder) or WORK. Owned by gpuval.
#
#   scripts/gpu_check.sh [--build-only] [--skip-9b] [--layers N] [WORK]
#
# WORK (default /tmp/autoglm-gpu-check) holds the 9B model (~19 GB; reused when present).
# --build-only builds here (a machine with the project's build dependencies and the CUDA
# toolkit, no GPU needed) and copies the test binaries into build-gpu-bin/, which git ignores
# and which can be carried to a GPU machine that lacks those dependencies: there the build is
# tried first and the carried binaries are used when it fails.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 1
BUILD_ONLY=0
SKIP_9B=0
LAYERS=40
WORK=/tmp/autoglm-gpu-check
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) BUILD_ONLY=1 ;;
    --skip-9b) SKIP_9B=1 ;;
    --layers) LAYERS=$2; shift ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) WORK=$1 ;;
  esac
  shift
done
LOGS=${OUT:-$WORK}/gpu_check_logs
mkdir -p "$WORK" "$LOGS"
BUILD=$REPO/build-gpu
BIN=$REPO/build-gpu-bin
BINARIES=(test_cuda_kernels test_cuda_attention test_cuda_sampling test_cuda_gemv test_cuda_gemv_fused test_cuda_backend
  test_cuda_vs_cpu test_cuda_graphs cuda_greedy cuda_sampling_bench cuda_gemv_bench
  cuda_decode_bench)
ROWS=()
FAILED=0
row() {  # row CHECK RESULT DETAIL
  ROWS+=("$(printf '%-30s %-8s %s' "$1" "$2" "$3")")
  [ "$2" = FAIL ] && FAILED=1
  echo "gpu_check: $1: $2 $3"
}
summary() {
  echo
  echo "================ gpu_check summary ($((SECONDS))s, logs in $LOGS) ================"
  printf '%-30s %-8s %s\n' CHECK RESULT DETAIL
  for r in "${ROWS[@]}"; do echo "$r"; done
  exit "$FAILED"
}

# ---- toolchain and GPU --------------------------------------------------------------------
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
if ! command -v compute-sanitizer >/dev/null && [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
  export PATH=$PATH:/usr/local/cuda/bin
fi
NVCC=$(command -v nvcc || echo "absent")
GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null |
  head -1)
row "toolchain" INFO "nvcc $( [ "$NVCC" = absent ] && echo absent || nvcc --version | tail -2 |
  head -1 | sed 's/.*release //'); cmake $(cmake --version 2>/dev/null | head -1 |
  awk '{print $3}'); ninja $(ninja --version 2>/dev/null || echo absent)"
row "gpu" INFO "${GPU:-none visible to nvidia-smi}"

# ---- build ---------------------------------------------------------------------------------
# Debian -dev packages carried in .devdebs/ (scripts/fetch_device_debs.sh) for a machine that
# lacks some; unpacked into a private prefix.
# shellcheck source=scripts/gpu_env.sh
source "$REPO/scripts/gpu_env.sh"
build() {
  local gen="Unix Makefiles" launcher=()
  command -v ninja >/dev/null && gen=Ninja
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache
    -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  cmake -S "$REPO" -B "$BUILD" -G "$gen" -DCMAKE_BUILD_TYPE=Release -DAUTOGLM_CUDA=ON \
    "${launcher[@]}" >"$LOGS/configure.log" 2>&1 || return 1
  cmake --build "$BUILD" -j "$(nproc)" --target "${BINARIES[@]}" autoglm >"$LOGS/build.log" 2>&1 ||
    return 1
  mkdir -p "$BIN"
  for b in "${BINARIES[@]}"; do cp "$BUILD/tests/backend/cuda/$b" "$BIN/"; done
  cp "$BUILD/tools/autoglm/autoglm" "$BIN/"
  echo "$REPO" >"$BIN/SOURCE_DIR"
}
t0=$SECONDS
if build; then
  row "build (Release, CUDA on)" PASS "$((SECONDS - t0))s, binaries in ${BIN#"$REPO"/}"
elif [ -x "$BIN/test_cuda_kernels" ]; then
  row "build (Release, CUDA on)" CARRIED "build failed here (tail of log below); using $BIN"
  tail -5 "$LOGS/configure.log" "$LOGS/build.log" 2>/dev/null
else
  row "build (Release, CUDA on)" FAIL "see $LOGS/configure.log and build.log"
  tail -20 "$LOGS/configure.log" "$LOGS/build.log" 2>/dev/null
  summary
fi
if [ "$BUILD_ONLY" = 1 ]; then
  row "carry" INFO "build-gpu-bin ($(du -sh "$BIN" | cut -f1))"
  summary
fi

# Carried binaries find the fixtures through the source path they were built in.
SRC=$(cat "$BIN/SOURCE_DIR" 2>/dev/null || echo "$REPO")
if [ "$SRC" != "$REPO" ] && [ ! -e "$SRC/tests/fixtures" ]; then
  mkdir -p "$SRC/tests" && ln -s "$REPO/tests/fixtures" "$SRC/tests/fixtures"
  [ -e "$SRC/models" ] || ln -s "$REPO/models" "$SRC/models"
fi
# libcublasLt.so.13: the toolkit's, else the one in Python's nvidia wheels.
if ! ldd "$BIN/cuda_greedy" | grep -q 'libcublasLt.so.13 => /'; then
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    $(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null); do
    lib=$(find "$d" -name 'libcublasLt.so.13*' 2>/dev/null | head -1)
    if [ -n "$lib" ]; then export LD_LIBRARY_PATH=$(dirname "$lib"):${LD_LIBRARY_PATH:-}; break; fi
  done
fi

# ---- ceilings, measured in this run (device-to-device copy, BF16 matmul through torch) ----
BW_TBS=""
MATMUL_TFLOPS=""
if python3 -c 'import torch; assert torch.cuda.is_available()' >/dev/null 2>&1; then
  ceil=$(timeout 120 python3 - <<'PYEOF' 2>"$LOGS/ceilings.err"
import torch
def timed(fn, reps):
    for _ in range(3): fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        start.record(); fn(); end.record(); torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return sorted(times)[len(times) // 2]
src = torch.randn(1 << 30, device="cuda", dtype=torch.bfloat16)  # 2 GiB
dst = torch.empty_like(src)
t = timed(lambda: dst.copy_(src), 10)
bw = 2 * src.numel() * 2 / t / 1e12
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
t = timed(lambda: a @ b, 10)
print(f"{bw:.2f} {2 * 8192**3 / t / 1e12:.0f}")
PYEOF
  )
  if [ -n "$ceil" ]; then
    BW_TBS=${ceil%% *}
    MATMUL_TFLOPS=${ceil##* }
    row "ceilings (torch, median of 10)" INFO "D2D copy ${BW_TBS} TB/s (read+write); BF16 8192^3 matmul ${ceil##* } TFLOP/s"
  fi
fi

# ---- tests ---------------------------------------------------------------------------------
gtest_row() {  # gtest_row NAME LOG RC
  local passed skipped failed benches
  passed=$(grep -oE '\[  PASSED  \] [0-9]+' "$2" | grep -oE '[0-9]+$' || echo 0)
  skipped=$(grep -oE '\[  SKIPPED \] [0-9]+ test' "$2" | grep -oE '[0-9]+' | head -1 || echo 0)
  failed=$(grep -cE '^\[  FAILED  \] .*\(' "$2" || true)
  # Benchmarks that skip themselves without AUTOGLM_CUDA_BENCH=1 are not checks left undone.
  benches=$(grep -c 'set AUTOGLM_CUDA_BENCH=1 to run' "$2" || true)
  if [ "$3" -eq 0 ] && [ "${skipped:-0}" = 0 ]; then
    row "$1" PASS "${passed:-0} passed"
  elif [ "$3" -eq 0 ] && [ "${skipped:-0}" = "${benches:-0}" ]; then
    row "$1" PASS "${passed:-0} passed (${benches} benchmark not run: AUTOGLM_CUDA_BENCH unset)"
  elif [ "$3" -eq 0 ]; then
    row "$1" SKIP "${passed:-0} passed, ${skipped} skipped: $(grep -m1 'skipped, no usable' "$2")"
  else
    row "$1" FAIL "rc $3, ${failed} failed: $(grep -E '^\[  FAILED  \] .*\(' "$2" | head -3 |
      sed 's/\[  FAILED  \] //' | tr '\n' ' ')"
    # The failing checks' own lines (and test_cuda_vs_cpu's reruns) on stdout, which the device
    # tool always brings back, where the log itself may not come.
    grep -E 'Failure|Expected|Which is|Value of|rerun' "$2" | head -30 | sed 's/^/gpu_check:   /'
  fi
}
# transformers' own BF16/FP16 logits on this GPU, for the direct comparison in the fixture test.
HF_LOWP=$WORK/hf_lowp
if python3 -c 'import torch, transformers; assert torch.cuda.is_available()' >/dev/null 2>&1; then
  t0=$SECONDS
  if timeout 600 python3 "$REPO/scripts/lowp_reference.py" --device cuda --no-json \
    --logits-out "$HF_LOWP" >"$LOGS/lowp_reference_gpu.log" 2>&1; then
    export AUTOGLM_HF_LOWP_LOGITS_DIR=$HF_LOWP
    row "transformers BF16/FP16 on GPU" INFO "$((SECONDS - t0))s; $(grep -c 'worst max_rel_diff' \
      "$LOGS/lowp_reference_gpu.log") fixture x dtype runs in lowp_reference_gpu.log"
  else
    row "transformers BF16/FP16 on GPU" FAIL "$(tail -1 "$LOGS/lowp_reference_gpu.log")"
  fi
else
  row "transformers BF16/FP16 on GPU" SKIP "no torch+transformers with CUDA for python3"
fi
timeout 300 "$BIN/test_cuda_kernels" >"$LOGS/test_cuda_kernels.log" 2>&1
gtest_row "kernels vs CPU reference" "$LOGS/test_cuda_kernels.log" $?
timeout 300 "$BIN/test_cuda_gemv" >"$LOGS/test_cuda_gemv.log" 2>&1
gtest_row "decode GEMV vs host reference" "$LOGS/test_cuda_gemv.log" $?
timeout 300 "$BIN/test_cuda_gemv_fused" >"$LOGS/test_cuda_gemv_fused.log" 2>&1
gtest_row "fused GEMV vs unfused kernels" "$LOGS/test_cuda_gemv_fused.log" $?
if timeout 200 "$BIN/cuda_gemv_bench" >"$LOGS/cuda_gemv_bench.log" 2>&1; then
  row "GEMV vs cuBLASLt (m 1)" INFO "$(awk '$1 == "[gemv]" && $7 == "1:" {
    printf "%s %s GB/s (x%s); ", $2, $11, $21}' "$LOGS/cuda_gemv_bench.log")"
else
  row "GEMV vs cuBLASLt (m 1)" FAIL "$(tail -1 "$LOGS/cuda_gemv_bench.log")"
fi
timeout 300 "$BIN/test_cuda_sampling" >"$LOGS/test_cuda_sampling.log" 2>&1
gtest_row "sampling vs host reference" "$LOGS/test_cuda_sampling.log" $?
if timeout 120 "$BIN/cuda_sampling_bench" >"$LOGS/cuda_sampling_bench.log" 2>&1; then
  row "sampling time (151,552 vocab)" INFO "$(awk '$1 == "[sampling]" && ($3 == 1 || $3 == 256) {
    printf "%s rows %s: %s us; ", $7, $3, $8}' "$LOGS/cuda_sampling_bench.log")"
else
  row "sampling time (151,552 vocab)" FAIL "$(tail -1 "$LOGS/cuda_sampling_bench.log")"
fi
timeout 300 "$BIN/test_cuda_backend" >"$LOGS/test_cuda_backend.log" 2>&1
gtest_row "end to end (fixtures)" "$LOGS/test_cuda_backend.log" $?
unset AUTOGLM_HF_LOWP_LOGITS_DIR
timeout 300 "$BIN/test_cuda_graphs" >"$LOGS/test_cuda_graphs.log" 2>&1
gtest_row "decode CUDA graphs vs eager" "$LOGS/test_cuda_graphs.log" $?
timeout 300 "$BIN/test_cuda_vs_cpu" >"$LOGS/test_cuda_vs_cpu.log" 2>&1
gtest_row "hd 64/128 models vs CPU" "$LOGS/test_cuda_vs_cpu.log" $?
# Again with every scratch buffer NaN at load: a read of memory no kernel wrote fails here.
AUTOGLM_CUDA_POISON_WORKSPACE=1 timeout 300 "$BIN/test_cuda_vs_cpu" \
  >"$LOGS/test_cuda_vs_cpu_poisoned.log" 2>&1
gtest_row "models vs CPU, NaN scratch" "$LOGS/test_cuda_vs_cpu_poisoned.log" $?
if [ -x "$BIN/test_cuda_attention" ]; then
  timeout 300 "$BIN/test_cuda_attention" >"$LOGS/test_cuda_attention.log" 2>&1
  gtest_row "paged attention kernels" "$LOGS/test_cuda_attention.log" $?
fi
# The fixture test's own lines, summarised (criteria: tests/backend/cuda/test_cuda_backend.cpp).
for dt in bfloat16 float16; do
  logits=$(awk -v dt="$dt" '$1 == "[logits]" && $3 == dt && $4 == "worst" {
      r = $6 / ($8 > 0 ? $8 : 1); if (r > w) {w = r; l = $2 ": ours " $6 ", transformers " $8}
      if ($NF == "FAIL") f++ }
    END {if (l) printf "worst ours/transformers %.2f (%s); %d fixtures over tolerance", w, l, f}' \
    "$LOGS/test_cuda_backend.log")
  row "  logits $dt vs fp32" INFO "${logits:-n/a}"
  greedy=$(awk -v dt="$dt" '$1 == "[greedy-total]" && $3 == dt {a += $5; n += $7; t += $9
      h += $14; hn += $16}
    END {if (n) printf "ours %d of %d agree, %d ties; transformers %s own: %d of %d", a, n, t,
      dt, h, hn}' "$LOGS/test_cuda_backend.log")
  mism=$(grep -c "^\[greedy\] .* $dt step .*MISMATCH" "$LOGS/test_cuda_backend.log" || true)
  row "  greedy $dt (teacher-forced)" INFO "${greedy:-n/a}; ${mism} non-tie mismatches"
  hfgpu=$(awk -v dt="$dt" '$1 == "[hf-gpu]" && $3 == dt {if ($6 > a) a = $6; if ($9 > b) b = $9}
    END {if (a) printf "worst max_rel_diff(ours, hf) %.4g; max_rel_diff(hf, fp32) %.4g", a, b}' \
    "$LOGS/test_cuda_backend.log")
  [ -n "$hfgpu" ] && row "  vs transformers $dt on GPU" INFO "$hfgpu"
done

# ---- compute-sanitizer ---------------------------------------------------------------------
# Judged on the sanitizer's own verdict (exit code 99, ERROR SUMMARY); a test failing inside
# it is reported by the rows above, not here.
if command -v compute-sanitizer >/dev/null; then
  rcs=""
  mc() {  # mc LOG BINARY FILTER
    timeout 600 compute-sanitizer --tool memcheck --error-exitcode 99 "$2" --gtest_filter="$3" \
      >"$LOGS/$1" 2>&1
    rcs="$rcs $?"
  }
  mc memcheck_kernels.log "$BIN/test_cuda_kernels" '*/BF16'
  mc memcheck_sampling.log "$BIN/test_cuda_sampling" '*NonFinite*:*VariateSweep*'
  mc memcheck_gemv.log "$BIN/test_cuda_gemv" '*'
  mc memcheck_gemv_fused.log "$BIN/test_cuda_gemv_fused" '*'
  mc memcheck_backend.log "$BIN/test_cuda_backend" '*LogitsMatchTransformers'
  mc memcheck_vs_cpu.log "$BIN/test_cuda_vs_cpu" '*glm4_hd128*'
  mc memcheck_graphs.log "$BIN/test_cuda_graphs" '*'
  mc memcheck_attention.log "$BIN/test_cuda_attention" \
    '*Fp8Pool/BF16:*DecodeGlm4Shape/BF16:*DecodeBlockSizes/BF16:*ChunkedPrefillOverCachedKeys/BF16'
  summary_line=$(grep -h 'ERROR SUMMARY' "$LOGS"/memcheck_*.log | sort | uniq -c | tr -s ' ' |
    tr '\n' ';')
  if echo "$rcs" | grep -qE ' (99|124|137)' ||
    grep -h 'ERROR SUMMARY' "$LOGS"/memcheck_*.log | grep -qv ' 0 errors' ||
    [ "$(cat "$LOGS"/memcheck_*.log | grep -c 'ERROR SUMMARY')" -lt 8 ]; then
    row "compute-sanitizer memcheck" FAIL "rc$rcs;$summary_line"
  else
    row "compute-sanitizer memcheck" PASS "$summary_line (test rc$rcs)"
  fi
  # Shared-memory hazards (racecheck) and barrier misuse (synccheck) in the kernels that share
  # tiles and partial sums between warps: decode and prefill attention over BF16 and FP8 pools
  # (cp.async tiles, the decode CTA's cross-warp merge), the row norms' and GEMVs' block sums.
  # Every BF16 case: 2-17 s a run on an H200; two minutes each at most, and a run cut by its
  # time limit is reported as such, not as clean.
  hz=""
  sc() {  # sc TOOL LOG BINARY FILTER
    timeout 120 compute-sanitizer --tool "$1" --error-exitcode 99 "$3" --gtest_filter="$4" \
      >"$LOGS/$2" 2>&1
    case $? in
      99) hz="$hz $2:hazard" ;;
      124 | 137) hz="$hz $2:timeout" ;;
    esac
  }
  for tool in racecheck synccheck; do
    sc "$tool" "${tool}_attention.log" "$BIN/test_cuda_attention" '*/BF16'
    # Not the cuBLASLt GEMM tests: racecheck reports hazards inside cuBLASLt's own kernels
    # (nvjet_sm90_*, seven on an H200 with cuBLAS of CUDA 13.0), which do not use our code.
    sc "$tool" "${tool}_kernels.log" "$BIN/test_cuda_kernels" '*/BF16:-*Gemm*'
    sc "$tool" "${tool}_gemv_fused.log" "$BIN/test_cuda_gemv_fused" '*'
  done
  hz_summary=$(grep -h -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$LOGS"/racecheck_*.log \
    "$LOGS"/synccheck_*.log | sort | uniq -c | tr -s ' ' | tr '\n' ';')
  if echo "$hz" | grep -q hazard; then
    row "compute-sanitizer racecheck + synccheck" FAIL "$hz;$hz_summary"
  elif [ -n "$hz" ]; then
    row "compute-sanitizer racecheck + synccheck" INFO "incomplete:$hz;$hz_summary"
  else
    row "compute-sanitizer racecheck + synccheck" PASS "$hz_summary"
  fi
else
  row "compute-sanitizer memcheck" SKIP "compute-sanitizer not on PATH"
fi

# ---- serving on the GPU: the OpenAI-SDK server suite with AUTOGLM_DEVICE=cuda --------------
# The openai SDK and its needs may be carried as wheels in .whl/ (the GPU machine has no index).
if compgen -G "$REPO/.whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/autoglm-site "$REPO"/.whl/*.whl >"$LOGS/wheels.log" 2>&1 &&
    export PYTHONPATH=/tmp/autoglm-site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -x "$BIN/autoglm" ] && python3 -c 'import openai, pytest' 2>/dev/null; then
  AUTOGLM_DEVICE=cuda AUTOGLM_BIN="$BIN/autoglm" timeout 300 python3 -m pytest -q -p no:cacheprovider \
    "$REPO/tests/python/test_server_openai.py" >"$LOGS/server_openai_cuda.log" 2>&1
  rc=$?
  res=$(tail -1 "$LOGS/server_openai_cuda.log")
  if [ $rc -eq 0 ]; then row "server suite, --device cuda" PASS "$res"; else
    row "server suite, --device cuda" FAIL "rc $rc: $res"; fi
else
  row "server suite, --device cuda" SKIP "no autoglm binary or no openai/pytest in python3"
fi

# ---- full size: GLM-4-9B shape -------------------------------------------------------------
if [ "$SKIP_9B" = 1 ]; then
  row "GLM-4-9B shape" SKIP "--skip-9b"
  summary
fi
MODEL=$WORK/glm4-9b-random-l$LAYERS
PY=python3
command -v python3 >/dev/null || PY=""
# A reference of an older format (bf16 free-running) is made again; the weights with it.
REF_FORMAT=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('format', 1))" \
  "$MODEL/reference_greedy.json" 2>/dev/null || echo none)
if [ "$REF_FORMAT" != 2 ] && [ -n "$PY" ]; then
  t0=$SECONDS
  $PY "$REPO/scripts/make_glm9b_random.py" "$MODEL" --layers "$LAYERS" \
    >"$LOGS/make_glm9b.log" 2>&1
  rc=$?
  case $rc in
    0) row "9B model + transformers ref" PASS "$((SECONDS - t0))s" ;;
    3) row "9B model + transformers ref" SKIP "$(tail -1 "$LOGS/make_glm9b.log")" ;;
    *) row "9B model + transformers ref" FAIL "rc $rc: $(tail -1 "$LOGS/make_glm9b.log")" ;;
  esac
fi
if [ ! -f "$MODEL/config.json" ]; then
  row "GLM-4-9B shape" FAIL "no model (python3 ${PY:+present}${PY:-absent})"
  summary
fi
PROMPT=151331,151333,872,198,9703,11,1879,0,3838,374,220,17,10,17,30,151337
TEACHER=()
N_TOKENS=16
if [ -f "$MODEL/reference_greedy.json" ]; then
  read -r PROMPT TEACHER_IDS N_TOKENS < <(python3 -c "import json,sys; \
r = json.load(open(sys.argv[1])); g = r['greedy_ids']; \
print(','.join(map(str, r['prompt_ids'])), ','.join(map(str, g)), len(g))" \
    "$MODEL/reference_greedy.json")
  TEACHER=(--teacher "$TEACHER_IDS")
fi
# Teacher-forced on transformers' fp32 continuation when there is one: each position's argmax
# is then comparable on its own, and one near-tie cannot derail the rest.
timeout 300 "$BIN/cuda_greedy" "$MODEL" "$PROMPT" "$N_TOKENS" "${TEACHER[@]}" \
  >"$LOGS/cuda_greedy.json" 2>"$LOGS/cuda_greedy.err"
rc=$?
if [ $rc -ne 0 ]; then
  row "GLM-4-9B load + generate" FAIL "rc $rc: $(tail -2 "$LOGS/cuda_greedy.err" | tr '\n' ' ')"
  summary
fi
row "GLM-4-9B load + generate" PASS "$(python3 - "$LOGS/cuda_greedy.json" "$BW_TBS" "$LAYERS" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
line = (f"load {r['load_s']} s, prefill {r['prefill_s']} s, decode {r['decode_tok_s']} tok/s "
        f"(batch 1, no graphs, host argmax), {r['kv_blocks']} KV blocks")
if sys.argv[2]:
    # Weight bytes read per token: layers x 204.0 M params + the 620.8 M lm_head, BF16.
    ceiling = float(sys.argv[2]) * 1e12 / ((int(sys.argv[3]) * 204.0e6 + 620.8e6) * 2)
    line += f"; {r['decode_tok_s'] / ceiling:.0%} of the {ceiling:.0f} tok/s bandwidth ceiling"
print(line)
PYEOF
)"
if [ -f "$MODEL/reference_greedy.json" ]; then
  cmp=$(python3 "$REPO/scripts/gpu_check_9b_compare.py" "$LOGS/cuda_greedy.json" \
    "$MODEL/reference_greedy.json" 2>&1 | tee "$LOGS/glm9b_compare.log" | tail -1)
  row "GLM-4-9B vs transformers fp32" "${cmp%% *}" "${cmp#* }"
fi
# ---- decode step on the 9B shape: batch sizes, CUDA graphs off and on, vs the ceiling ------
if timeout 400 "$BIN/cuda_decode_bench" "$MODEL" "${DECODE_BATCHES:-1,8,64,256}" 128 \
  >"$LOGS/cuda_decode_bench.log" 2>"$LOGS/cuda_decode_bench.err"; then
  row "prefill 9B, 4096 tokens" INFO "$(awk -v mm="$MATMUL_TFLOPS" '$1 == "[prefill]" {
    printf "%s ms, %s TFLOP (attention %.0f%%), %s TFLOP/s%s", $5, $7, 100 * $11, $9,
    mm ? sprintf(" = %.0f%% of the %s TFLOP/s matmul", 100 * $9 / mm, mm) : "" }' \
    "$LOGS/cuda_decode_bench.log")"
  for g in off on; do
    row "decode step 9B, graphs $g" INFO "$(awk -v g="$g" -v bw="$BW_TBS" '$1 == "[decode]" &&
      $3 == g { line = line sprintf("b%s %s ms %s tok/s %s GB/s%s; ", $5, $9, $11, $13,
      bw ? sprintf(" (%.0f%%)", $13 / (bw * 10)) : "") } END { print line }' \
      "$LOGS/cuda_decode_bench.log")"
    # Each step submitted before the previous one is collected (overlapped scheduling).
    row "decode step 9B, graphs $g, pipelined" INFO "$(awk -v g="$g" '$1 == "[pipelined]" &&
      $3 == g { line = line sprintf("b%s %s ms %s tok/s; ", $5, $9, $11) } END { print line }' \
      "$LOGS/cuda_decode_bench.log")"
  done
  # The graphs-on step with one measuring knob set: what that mechanism buys.
  knob_row() {  # knob_row CHECK LOG BATCHES VAR=VALUE
    env "$4" timeout 200 "$BIN/cuda_decode_bench" "$MODEL" "$3" 128 0 >"$LOGS/$2" 2>&1
    row "$1" INFO "$(awk '$1 == "[decode]" && $3 == "on" {
      printf "b%s %s ms %s tok/s; ", $5, $9, $11 }' "$LOGS/$2")"
  }
  # Every kernel launched plainly (no programmatic dependent launch).
  knob_row "decode step 9B, graphs, no PDL" cuda_decode_bench_nopdl.log 1,64 AUTOGLM_CUDA_PDL=0
  # The QKV+RoPE and gate_up+SwiGLU GEMVs unfused.
  knob_row "decode step 9B, graphs, unfused" cuda_decode_bench_nofuse.log 1 AUTOGLM_CUDA_FUSE=0
  # No late trigger of the next kernel (pdl.cuh).
  knob_row "decode step 9B, no late trigger" cuda_decode_bench_notrigger.log 1,64 \
    AUTOGLM_CUDA_LATE_TRIGGER=0
  # One-token norms letting the next GEMV launch once their loads are issued, not at their start.
  knob_row "decode step 9B, late norm trigger" cuda_decode_bench_normlate.log 1 \
    AUTOGLM_CUDA_NORM_EARLY_TRIGGER=0
  # The one-token QKV GEMV letting attention launch once its loads are used, not at its start.
  knob_row "decode step 9B, late QKV trigger" cuda_decode_bench_qkvlate.log 1 \
    AUTOGLM_CUDA_QKV_EARLY_TRIGGER=0
  # The one-token gate_up GEMV letting the down GEMV launch once its loads are used, not at start.
  knob_row "decode step 9B, late gate_up trigger" cuda_decode_bench_swiglulate.log 1 \
    AUTOGLM_CUDA_SWIGLU_EARLY_TRIGGER=0
  # The samples copied back to the host after each step instead of written there by the sampler.
  knob_row "decode step 9B, samples copied back" cuda_decode_bench_samplescopy.log 1 \
    AUTOGLM_CUDA_MAPPED_SAMPLES=0
  # The embedding gather as a launch of its own instead of inside the step's first norm.
  knob_row "decode step 9B, embedding apart" cuda_decode_bench_embedapart.log 1 \
    AUTOGLM_CUDA_EMBED_NORM=0
  # The final norm as a launch of its own instead of inside the last layer's residual norm.
  knob_row "decode step 9B, final norm apart" cuda_decode_bench_finalapart.log 1 \
    AUTOGLM_CUDA_FINAL_NORM_FUSED=0
  # One-token attention waiting for the QKV GEMV before it reads the batch arrays and older keys.
  knob_row "decode step 9B, no early K/V" cuda_decode_bench_nokvearly.log 1 AUTOGLM_CUDA_KV_EARLY=0
  # o and down as plain cuBLASLt GEMMs instead of K in two parts summed by the norm (2-256 rows).
  knob_row "decode step 9B, no K split" cuda_decode_bench_noksplit.log 8,64 AUTOGLM_CUDA_KSPLIT=0
  # 3-8 row projections on cuBLASLt instead of the tensor-core GEMV.
  knob_row "decode step 9B, no tensor-core GEMV" cuda_decode_bench_nommagemv.log 4,8 \
    AUTOGLM_CUDA_GEMV_MMA=0
  # FP8 weights (--quantization fp8): the layer projections W8A8 / W8A16 (docs/OPERATIONS.md).
  knob_row "decode step 9B, FP8 weights" cuda_decode_bench_fp8w.log 1,8,64,256 QUANTIZATION=fp8
  # The KV cache in the activation type and in FP8 E4M3, at serving's context (1,500-token
  # prompts), where attention reads a third of a batch-256 step's bytes.
  for kv in auto fp8; do
    KV_CACHE_DTYPE=$kv timeout 200 "$BIN/cuda_decode_bench" "$MODEL" 64,256 1500 0 \
      >"$LOGS/cuda_decode_bench_kv_$kv.log" 2>&1
    row "decode step 9B, 1500 keys, KV $kv" INFO "$(awk '$1 == "[decode]" && $3 == "on" {
      printf "b%s %s ms %s tok/s; ", $5, $9, $11 }' "$LOGS/cuda_decode_bench_kv_$kv.log")"
  done
else
  row "decode step 9B" FAIL "$(tail -2 "$LOGS/cuda_decode_bench.err" | tr '\n' ' ')"
fi
# ---- serving benchmark on the 9B shape: autoglm bench serve against autoglm serve --device cuda
# BENCH_CONCURRENCY (default "1 8 64"; "none" skips it), BENCH_INPUT/BENCH_OUTPUT tokens (256/128),
# BENCH_PROMPTS_PER_CLIENT (4, at least 16 prompts), BENCH_MAX_BATCHED (serve's
# --max-batched-tokens, 4096), BENCH_SERVE_FLAGS (more serve flags, e.g. "--overlap-scheduling
# false"). With matplotlib, a plot of throughput and ITL against concurrency goes to
# $LOGS/bench_serve_9b.png. BENCH_TARGET=1 then also runs issue 7's serving command as written
# (256 clients, --num-prompts left at its default of 1,000, other prompts than the sweep's) on a
# fresh server, so that neither the sweep's prefix-cache entries nor a short run's ramp and tail
# set the figure.
start_server() {  # start_server LOG
  "$BIN/autoglm" serve --model "$MODEL" --device cuda --port 18080 --max-num-seqs 256 \
    --max-batched-tokens "${BENCH_MAX_BATCHED:-4096}" \
    --max-context-length $((IN_LEN + OUT_LEN + 64)) ${BENCH_SERVE_FLAGS:-} >"$1" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 1 120); do
    curl -sf http://127.0.0.1:18080/ready >/dev/null 2>&1 && break
    sleep 1
  done
}
stop_server() {
  kill -TERM $SERVE_PID 2>/dev/null
  wait $SERVE_PID 2>/dev/null
}
# bench_run CHECK NAME BENCH_ARGS...: one bench serve run, its row with the engine's host gap,
# the device's idle gap and the GPU energy per generated token over the run, and the median SM
# clock and power while it ran (all from the server's /metrics); the JSON goes to
# $LOGS/bench_serve_NAME.json.
bench_run() {
  local check=$1 name=$2
  shift 2
  curl -sf http://127.0.0.1:18080/metrics >"$LOGS/metrics_before_$name.txt"
  # The server's own GPU power and SM clock gauges, scraped twice a second while the bench runs.
  (while true; do
    curl -sf http://127.0.0.1:18080/metrics | grep -E \
      '^autoglm:gpu_(sm_clock_hertz|power_watts|power_limit_watts|clock_slowdown)\{gpu="0"' \
      | tr '\n' ' '
    echo
    sleep 0.5
  done) >"$LOGS/gpu_samples_$name.txt" 2>/dev/null &
  local sampler=$!
  timeout 580 "$BIN/autoglm" bench serve --base-url http://127.0.0.1:18080 \
    --vocab-size 151552 --input-len "$IN_LEN" --output-len "$OUT_LEN" --ignore-eos "$@" \
    --json "$LOGS/bench_serve_$name.json" >"$LOGS/bench_serve_$name.log" 2>&1
  kill "$sampler" 2>/dev/null
  wait "$sampler" 2>/dev/null
  curl -sf http://127.0.0.1:18080/metrics >"$LOGS/metrics_after_$name.txt"
  local gap
  gap=$(python3 - "$LOGS/metrics_before_$name.txt" "$LOGS/metrics_after_$name.txt" <<'PYEOF'
import re, sys
def read(path):
    text = open(path).read()
    def one(name):
        m = re.search(r"^" + name + r"(?:\{[^}]*\})? ([0-9.e+-]+)$", text, re.M)
        return float(m.group(1)) if m else 0.0
    return {k: one(k) for k in ("autoglm:engine_host_gap_seconds_sum",
        "autoglm:engine_host_gap_seconds_count", "autoglm:decode_step_seconds_sum",
        "autoglm:decode_step_seconds_count", "autoglm:prefill_step_seconds_sum",
        "autoglm:prefill_step_seconds_count", "autoglm:device_idle_gap_seconds_sum",
        "autoglm:device_idle_gap_seconds_count", "autoglm:gpu_energy_joules_total",
        "autoglm:generation_tokens_total")}
a, b = read(sys.argv[1]), read(sys.argv[2])
d = {k: b[k] - a[k] for k in a}
n = d["autoglm:engine_host_gap_seconds_count"]
steps = d["autoglm:decode_step_seconds_count"] + d["autoglm:prefill_step_seconds_count"]
busy = d["autoglm:decode_step_seconds_sum"] + d["autoglm:prefill_step_seconds_sum"]
parts = []
if n and steps:
    parts.append(f"host gap {1e3 * d['autoglm:engine_host_gap_seconds_sum'] / n:.3f} ms mean over {n:.0f} "
          f"steps; mean step {1e3 * busy / steps:.2f} ms ({d['autoglm:decode_step_seconds_count']:.0f} "
          f"decode-only)")
idle = d["autoglm:device_idle_gap_seconds_count"]
if idle:
    parts.append(f"device idle {1e3 * d['autoglm:device_idle_gap_seconds_sum'] / idle:.3f} ms "
                 f"mean over {idle:.0f} gaps")
joules, tokens = d["autoglm:gpu_energy_joules_total"], d["autoglm:generation_tokens_total"]
if joules > 0 and tokens > 0:
    parts.append(f"GPU energy {joules / 1e3:.1f} kJ, {1e3 * joules / tokens:.1f} mJ per generated token")
print("; ".join(parts))
PYEOF
  )
  local power
  power=$(python3 - "$LOGS/gpu_samples_$name.txt" <<'PYEOF'
import re, statistics, sys
clock, watts, limit, capped = [], [], [], []
for line in open(sys.argv[1]):
    def one(pattern):
        m = re.search(pattern + r"\{[^}]*\} ([0-9.e+-]+)", line)
        return float(m.group(1)) if m else None
    c, w, l = one("autoglm:gpu_sm_clock_hertz"), one("autoglm:gpu_power_watts"), one("autoglm:gpu_power_limit_watts")
    cap = re.search(r'autoglm:gpu_clock_slowdown\{[^}]*reason="power_cap"\} ([01])', line)
    if c is None or w is None: continue
    clock.append(c / 1e6); watts.append(w)
    if l is not None: limit.append(l)
    if cap: capped.append(cap.group(1) == "1")
if clock:
    text = (f"SM clock median {statistics.median(clock):.0f} MHz, power median {statistics.median(watts):.0f} W"
            + (f" of {max(limit):.0f}" if limit else "") + f" over {len(clock)} samples")
    if capped: text += f", power-capped in {100 * sum(capped) / len(capped):.0f}%"
    print(text)
PYEOF
  )
  row "$check" INFO "$(python3 -c "import json,sys; r = json.load(open(sys.argv[1])); \
print('in %d out %d, %d prompts: output %.0f tok/s; ITL p50 %.1f p99 %.1f ms; TTFT p50 %.0f p99 %.0f ms; failed %s' % ( \
r['parameters']['input_len'], r['parameters']['output_len'], r['parameters']['num_prompts'], \
r['output_throughput'], r['itl']['p50_ms'], r['itl']['p99_ms'], r['ttft']['p50_ms'], \
r['ttft']['p99_ms'], r['failed']))" "$LOGS/bench_serve_$name.json" 2>&1 | tail -1); $gap${power:+; $power}"
}
if [ -x "$BIN/autoglm" ] && { [ "${BENCH_CONCURRENCY:-1 8 64}" != none ] || [ "${BENCH_TARGET:-0}" = 1 ]; }; then
  # Random weights have no tokenizer: one whose vocabulary fills the model's, so every sampled
  # id streams as text.
  [ -f "$MODEL/tokenizer.json" ] || python3 "$REPO/scripts/make_full_vocab_tokenizer.py" \
    "$MODEL" >"$LOGS/tokenizer.log" 2>&1
  IN_LEN=${BENCH_INPUT:-256}
  OUT_LEN=${BENCH_OUTPUT:-128}
  BENCH_JSONS=()
  [ "${BENCH_CONCURRENCY:-1 8 64}" != none ] && start_server "$LOGS/serve_9b.log"
  for c in ${BENCH_CONCURRENCY:-1 8 64}; do
    [ "$c" = none ] && break
    n=$((c * ${BENCH_PROMPTS_PER_CLIENT:-4}))
    [ $n -lt 16 ] && [ "$OUT_LEN" -le 256 ] && n=16
    # A seed per run: the same seed would make a run's first prompts those of the run before,
    # which would find them in the prefix cache.
    bench_run "bench serve 9B, concurrency $c" "c$c" --num-prompts "$n" --max-concurrency "$c" \
      --seed "$c"
    BENCH_JSONS+=("$LOGS/bench_serve_c$c.json")
  done
  [ "${BENCH_CONCURRENCY:-1 8 64}" != none ] && stop_server
  if [ ${#BENCH_JSONS[@]} -gt 0 ] && python3 -c 'import matplotlib' 2>/dev/null; then
    python3 "$REPO/scripts/plot_bench_serve.py" "$LOGS/bench_serve_9b.png" \
      "autoglm serve, GLM-4-9B shape (random BF16), $(echo "$GPU" | cut -d, -f1), in $IN_LEN / out $OUT_LEN" \
      "${BENCH_JSONS[@]}" >"$LOGS/plot.log" 2>&1 &&
      row "bench serve plot" INFO "$LOGS/bench_serve_9b.png" ||
      row "bench serve plot" FAIL "$(tail -1 "$LOGS/plot.log")"
  fi
  if [ "${BENCH_TARGET:-0}" = 1 ]; then
    start_server "$LOGS/serve_9b_target.log"
    bench_run "bench serve 9B, issue 7 run" target --max-concurrency 256 --seed 2
    stop_server
  fi
fi
summary
