#!/usr/bin/env bash
# Compares batch-1 decode speed of llama.cpp (through the PyPI llama-cpp-python package) with
# `autoglm bench latency` on the same weights, precision, machine and thread count.
# Owned by the perf/benchmark thread; not part of CI (it builds llama.cpp from the PyPI sdist,
# which takes many minutes on 2 cores).
#
# Usage: scripts/bench_llamacpp.sh [install|convert|bench|all]   (default: all)
# Environment:
#   BENCH_DIR      model root made by scripts/make_bench_model.py (default /tmp/autoglm-bench)
#   LLAMA_VENV     venv for llama-cpp-python + gguf (default /tmp/autoglm-llamacpp-venv)
#   AUTOGLM_BIN    our CLI (default build/tools/autoglm/autoglm)
#   THREADS        threads for both engines (default 2)
#   PROMPT_TOKENS / DECODE_TOKENS  (default 128 / 64)
#   REF_PYTHON     python with torch + transformers for the converter (default /opt/refenv/bin/python)
#
# The GGUF converter is the one shipped inside the same llama-cpp-python sdist
# (vendor/llama.cpp/convert_hf_to_gguf.py with its vendored gguf-py); it runs under REF_PYTHON
# because it imports torch and transformers. The bench model's tokenizer is the tiny fixture's,
# whose pre-tokenizer hash the converter does not know, so the wrapper below names the "glm4"
# pre-tokenizer; token ids are random in both benchmarks, so the tokenizer never runs.
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36
GGUF_VERSION=0.19.0

BENCH_DIR=${BENCH_DIR:-/tmp/autoglm-bench}
LLAMA_VENV=${LLAMA_VENV:-/tmp/autoglm-llamacpp-venv}
AUTOGLM_BIN=${AUTOGLM_BIN:-build/tools/autoglm/autoglm}
THREADS=${THREADS:-2}
PROMPT_TOKENS=${PROMPT_TOKENS:-128}
DECODE_TOKENS=${DECODE_TOKENS:-64}
REF_PYTHON=${REF_PYTHON:-/opt/refenv/bin/python}
SDIST_DIR=${SDIST_DIR:-/tmp/autoglm-llamacpp-sdist}
PRECISIONS=${PRECISIONS:-"f32 bf16 f16"}

install_llamacpp() {
  if "$LLAMA_VENV/bin/python" -c "import llama_cpp, gguf" 2>/dev/null; then return; fi
  python3 -m venv "$LLAMA_VENV"
  "$LLAMA_VENV/bin/pip" install -q --upgrade pip
  # CPU only, tuned for this machine (GGML_NATIVE), built from the PyPI sdist.
  CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_BLAS=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=2 \
    "$LLAMA_VENV/bin/pip" install -v --no-binary llama-cpp-python \
    "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" "gguf==$GGUF_VERSION"
}

sdist_vendor() {
  local root="$SDIST_DIR/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION"
  if [ ! -f "$root/vendor/llama.cpp/convert_hf_to_gguf.py" ]; then
    mkdir -p "$SDIST_DIR"
    "$LLAMA_VENV/bin/pip" download -q --no-deps --no-binary :all: \
      "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$SDIST_DIR"
    tar xzf "$SDIST_DIR/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz" -C "$SDIST_DIR" \
      "llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
  fi
  echo "$root/vendor/llama.cpp"
}

convert_gguf() {
  local vendor
  vendor=$(sdist_vendor)
  for p in $PRECISIONS; do
    local model="$BENCH_DIR/$p" out="$BENCH_DIR/$p.gguf"
    [ -d "$model" ] || { echo "skip $p: no $model (scripts/make_bench_model.py --f16)"; continue; }
    [ -f "$out" ] && continue
    "$REF_PYTHON" - "$vendor" "$model" "$p" "$out" <<'PY'
import runpy, sys
vendor, model, outtype, out = sys.argv[1:5]
sys.path[:0] = [vendor, vendor + "/gguf-py"]
import conversion.base as base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "glm4"
sys.argv = ["convert_hf_to_gguf.py", model, "--outtype", outtype, "--outfile", out]
runpy.run_path(vendor + "/convert_hf_to_gguf.py", run_name="__main__")
PY
  done
}

# llama.cpp decode speed through llama-cpp-python: one prefill of PROMPT_TOKENS random ids,
# then DECODE_TOKENS single-token llama_decode calls, the same shape as `autoglm bench latency`.
bench_llamacpp_one() {
  "$LLAMA_VENV/bin/python" - "$1" "$THREADS" "$PROMPT_TOKENS" "$DECODE_TOKENS" <<'PY'
import random, sys, time
import llama_cpp
path, threads, n_prompt, n_decode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llm = llama_cpp.Llama(model_path=path, n_ctx=n_prompt + n_decode + 16, n_batch=max(n_prompt, 8),
                      n_ubatch=max(n_prompt, 8), n_threads=threads, n_threads_batch=threads,
                      verbose=False)
rng = random.Random(0)
vocab = llm.n_vocab()
llm.eval([rng.randrange(vocab) for _ in range(8)])  # warm-up: touches every weight page
llm.reset()
llm._ctx.memory_clear(True) if hasattr(llm._ctx, "memory_clear") else None
t0 = time.perf_counter()
llm.eval([rng.randrange(vocab) for _ in range(n_prompt)])
prefill = time.perf_counter() - t0
t0 = time.perf_counter()
for _ in range(n_decode):
    llm.eval([rng.randrange(vocab)])
decode = time.perf_counter() - t0
print(f"llama.cpp {llama_cpp.__version__} {path}: prefill {n_prompt / prefill:.1f} tok/s, "
      f"decode {n_decode / decode:.2f} tok/s ({threads} threads)")
print("llama.cpp system info:", llama_cpp.llama_print_system_info().decode().strip())
PY
}

# Alternates the two engines REPEATS times per precision and reports each one's best decode
# rate: on a shared 2-core machine a neighbour's burst only ever slows a run down, so the best
# of several alternating runs is the fairest like-for-like figure. Every run is printed too.
bench_both() {
  local repeats=${REPEATS:-3} log
  log=$(mktemp)
  for p in $PRECISIONS; do
    [ -f "$BENCH_DIR/$p.gguf" ] || continue
    for _ in $(seq "$repeats"); do
      bench_llamacpp_one "$BENCH_DIR/$p.gguf" | tee -a "$log" | sed "s/^/[$p] /"
      "$AUTOGLM_BIN" bench latency --model "$BENCH_DIR/$p" --threads "$THREADS" \
        --prompt-tokens "$PROMPT_TOKENS" --decode-tokens "$DECODE_TOKENS" |
        sed "s/^decode:/autoglm decode:/" | tee -a "$log" | sed "s/^/[$p] /"
    done
    local ours theirs
    theirs=$(grep "^llama.cpp .*$p.gguf" "$log" | sed -E 's/.*decode ([0-9.]+) tok.*/\1/' | sort -g | tail -1)
    ours=$(grep "^autoglm decode:" "$log" | sed -E 's/.*= ([0-9.]+) tok.*/\1/' | sort -g | tail -1)
    echo "SUMMARY $p: decode best-of-$repeats autoglm $ours tok/s, llama.cpp $theirs tok/s," \
      "ratio $(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", a / b }')"
    : >"$log"
  done
  rm -f "$log"
}

main() {
  local what=${1:-all}
  case "$what" in
    install) install_llamacpp ;;
    convert) convert_gguf ;;
    bench) bench_both ;;
    all) install_llamacpp && convert_gguf && bench_both ;;
    *) echo "unknown step: $what" >&2; exit 2 ;;
  esac
}

main "$@"
