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

// Rows of a weight tile packed into fp32 panels per thread for the multi-token (prefill) path;
// a multiple of every ISA's register tile (two panels of its vector width: 32 rows at most).
inline constexpr int64_t kGemmRowBlock = 64;

// One query token's attention for `group` query heads (rows of q, hd apart) that share one KV
// head, over keys 0..n_keys-1 of a paged pool: key j is the row k + slot_j * row_stride, slot_j =
// blocks[j / block_size] * block_size + j % block_size, and value j the same row of v.
// out[g][0..hd) = sum_j softmax_j(scale * q[g] . key_j) * value_j. scores: group * n_keys floats.
struct AttendArgs {
  const float* q;
  int64_t group;
  int64_t hd;
  float scale;
  const float* k;
  const float* v;
  int64_t row_stride;
  const int32_t* blocks;
  int32_t block_size;
  int32_t n_keys;
  float* scores;
  float* out;
};

struct SimdKernels {
  std::string_view isa;
  // y[t * w.rows + o] = dot(x[t * w.cols ...], row o of w) + (bias ? bias[o] : 0) for
  // o in [row_begin, row_end) and t < n_tokens. `scratch` holds kGemmRowBlock * w.cols floats
  // (used only when n_tokens > 1).
  void (*linear_rows)(const float* x, int64_t n_tokens, const WeightMatrix& w, const float* bias,
                      int64_t row_begin, int64_t row_end, float* y, float* scratch);
  float (*dot)(const float* a, const float* b, int64_t n);
  // y[i] += a * x[i]
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  // The same dot and axpy per score and value, inlined, each key and value row read once for the
  // whole group.
  void (*attend)(const AttendArgs& a);
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
