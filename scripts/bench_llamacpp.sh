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
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36
GGUF_VERSION=0.19.0

BENCH_DIR=${BENCH_DIR:-/tmp/autoglm-bench}
LLAMA_VENV=${LLAMA_VENV:-/tmp/autoglm-llamacpp-venv}
AUTOGLM_BIN=${AUTOGLM_BIN:-build/tools/autoglm/autoglm}
THREADS=${THREADS:-2}
PROMPT_TOKENS=${PROMPT_TOKENS:-128}
DECODE_TOKENS=${DECODE_TOKENS:-64}
HERE=$(cd "$(dirname "$0")" && pwd)

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

main() {
  local what=${1:-all}
  case "$what" in
    install) install_llamacpp ;;
    *) echo "unknown step: $what" >&2; exit 2 ;;
  esac
}

main "$@"
