// The fast CPU kernels behind one table of function pointers, picked once at run time from
// what the CPU supports (AVX-512, AVX2+FMA+F16C, or the portable fallback). Each ISA lives in
// its own translation unit compiled with that ISA's target flags, so the rest of the program
// runs on any x86-64. The scalar kernels in kernels.h stay the reference these are tested
// against (tests/backend/test_cpu_kernels.cpp).
// Thread ownership: pure functions over caller-owned memory; callers split rows across threads.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "backend/cpu/kernels.h"

namespace autoglm::cpu {

// Rows of a weight tile converted to fp32 per thread for the multi-token (prefill) path.
inline constexpr int64_t kGemmRowBlock = 16;

struct SimdKernels {
  std::string_view isa;
  // y[t * w.rows + o] = dot(x[t * w.cols ...], row o of w) + (bias ? bias[o] : 0) for
  // o in [row_begin, row_end) and t < n_tokens. `scratch` holds kGemmRowBlock * w.cols floats
  // (used only when n_tokens > 1 and w is not F32).
  void (*linear_rows)(const float* x, int64_t n_tokens, const WeightMatrix& w, const float* bias,
                      int64_t row_begin, int64_t row_end, float* y, float* scratch);
  float (*dot)(const float* a, const float* b, int64_t n);
  // y[i] += a * x[i]
  void (*axpy)(float a, const float* x, float* y, int64_t n);
};

// The portable implementation (plain C++ the compiler may auto-vectorise for the baseline ISA).
const SimdKernels& portable_kernels();
// Every table this build has AND this CPU can run, fastest first (portable last).
std::vector<const SimdKernels*> available_kernels();
// The fastest available table, or the one named by AUTOGLM_CPU_ISA (avx512, avx2, portable)
// when that environment variable is set and the ISA is available.
const SimdKernels& best_kernels();

// Per-ISA tables; defined only in builds for x86-64 (see CMakeLists.txt).
const SimdKernels& avx2_kernels();
const SimdKernels& avx512_kernels();

}  // namespace autoglm::cpu
