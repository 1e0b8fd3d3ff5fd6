# Open-AutoGLM: the two commands of the README.
#   make run   installs missing system packages, builds, and serves the model on 127.0.0.1:8080.
#   make test  installs, builds (release, ASan+UBSan, TSan, fuzz) and runs every test.
# Everything else here is a step of those two.

JOBS      ?= $(shell nproc)
BUILD     ?= build
ASAN      ?= build-asan
FUZZ      ?= build-fuzz
TSAN      ?= build-tsan
FUZZ_SECS ?= 20
MODEL     ?= models/autoglm-tiny
PROMPT    ?= Hello from Open-AutoGLM.
VENV      := .venv
# The release build also compiles the CUDA backend when the CUDA toolkit is installed (CI has
# it but no GPU: the CUDA tests then skip). Sanitizer and fuzz builds stay CUDA-free.
CUDA_FLAG := $(if $(or $(shell command -v nvcc 2>/dev/null),$(wildcard /usr/local/cuda/bin/nvcc)),-DAUTOGLM_CUDA=ON,-DAUTOGLM_CUDA=OFF)
PYTHON    := $(VENV)/bin/python
# Every build compiles each target's sources in batches, one translation unit per batch: the
# heavy headers (CLI11, Beast, nlohmann-json, gtest) are then parsed and instantiated once per
# batch instead of once per file, which took ~37% off the release build's compile time on the
# 2-core CI machine. UNITY=OFF builds file by file (quicker rebuilds while editing one file).
UNITY     ?= ON
CONFIGURE := cmake -S . -G Ninja -DCMAKE_UNITY_BUILD=$(UNITY)

.PHONY: run test deps venv build asan-test tsan-test fuzz unit-test clean format format-check

run: build
	./$(BUILD)/tools/autoglm/autoglm serve --model $(MODEL) --host 127.0.0.1 --port 8080

test: deps venv format-check asan-test tsan-test fuzz unit-test

deps:
	@scripts/install_deps.sh

$(PYTHON): tests/requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check -r tests/requirements.txt
	@touch $(PYTHON)

venv: deps $(PYTHON)

RELEASE_CONFIGURE = $(CONFIGURE) -B $(BUILD) -DCMAKE_BUILD_TYPE=Release \
  -DAUTOGLM_PYTHON=$(CURDIR)/$(PYTHON) $(CUDA_FLAG)

build: deps
	$(RELEASE_CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS)

# Sanitizer and fuzz builds keep line tables only (-g1): stack traces still name file:line, and
# the 2-core CI machine compiles and links a good deal faster than with full -g.
LINES_ONLY := -g1
# Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (the gtest binaries only: the
# CLI and the HTTP load generator are exercised by the release build's Python tests).
asan-test: deps
	$(CONFIGURE) -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DAUTOGLM_SANITIZE=address,undefined \
	  -DAUTOGLM_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS_DEBUG="$(LINES_ONLY)" -DCMAKE_C_FLAGS_DEBUG="$(LINES_ONLY)"
	cmake --build $(ASAN) -j $(JOBS) --target unit_tests
	cd $(ASAN) && ctest -L unit -j $(JOBS) --output-on-failure

# The threaded tests under ThreadSanitizer, as paths under the build directory: the runtime's
# (engine thread, submission queue, token streams, soak) and the server's (HTTP connections on
# the I/O threads, handlers answering from the engine thread).
TSAN_TESTS := $(addprefix tests/runtime/,test_scheduler test_kv_cache test_metrics \
  test_session_cache test_engine test_engine_faults test_engine_sessions test_engine_soak) \
  tests/server/autoglm_server_test tests/server/openai/test_openai_handlers \
  tests/server/cache/autoglm_response_cache_test tests/server/models/test_model_registry
tsan-test: deps
	$(CONFIGURE) -B $(TSAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAUTOGLM_SANITIZE=thread \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 $(LINES_ONLY) -DNDEBUG"
	cmake --build $(TSAN) -j $(JOBS) --target $(notdir $(TSAN_TESTS))
	for t in $(TSAN_TESTS); do TSAN_OPTIONS=halt_on_error=1 ./$(TSAN)/$$t || exit 1; done

# libFuzzer targets, each run for a bounded time over its seed corpus.
fuzz: deps
	CC=clang CXX=clang++ $(CONFIGURE) -B $(FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DAUTOGLM_FUZZ=ON -DAUTOGLM_BUILD_TESTS=OFF -DAUTOGLM_BUILD_BENCH=OFF \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 $(LINES_ONLY) -DNDEBUG"
	cmake --build $(FUZZ) -j $(JOBS) --target fuzz_targets
	scripts/run_fuzz.sh $(FUZZ) $(FUZZ_SECS)

# Release build: unit, golden, CLI and Python parity tests. Its ctest summary is the last line.
# It compiles what ctest runs (every test binary and the CLI the Python tests drive), not the
# benchmarks, which `make build` adds.
unit-test: deps venv
	$(RELEASE_CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS) --target unit_tests autoglm
	cd $(BUILD) && ctest -j $(JOBS) --output-on-failure

CXX_SOURCES = find src include tools tests bench -name '*.cpp' -o -name '*.h' -o -name '*.inc' -o -name '*.cu' -o -name '*.cuh'

format:
	$(CXX_SOURCES) | xargs clang-format -i

# Fails when a C++ file is not formatted as .clang-format says.
format-check: deps
	$(CXX_SOURCES) | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ) $(TSAN)
