// AVX-512 (F+BW+VL) instance of the fast kernels (simd_impl.inc); compiled with AVX-512 target
// flags and only called after a run-time CPU check (simd_dispatch.cpp).
// Thread ownership: pure functions.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 reports its own _mm512_undefined_* placeholders inside the intrinsic headers
// (reduce/convert helpers) as (maybe-)uninitialized; the values are fully defined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backend/cpu/kernels.h"
#include "backend/cpu/simd_kernels.h"

namespace autoglm::cpu {
namespace {

struct V {
  using F = __m512;
  static constexpr int64_t kWidth = 16;
  // 2 x 12 accumulators, 2 weight vectors, 1 broadcast: 27 of 32 zmm
  static constexpr int kPackedTokens = 12;
  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float a) { return _mm512_set1_ps(a); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F load_bf16(const uint16_t* p) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static F load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static float hsum(F v) { return _mm512_reduce_add_ps(v); }
};

#include "backend/cpu/simd_impl.inc"

// Constant-initialised: no run-time code from this unit runs before the CPU check.
constexpr SimdKernels kTable{"avx512", linear_rows_impl, dot_impl, axpy_impl, attend_impl};

}  // namespace

const SimdKernels& avx512_kernels() {
  return kTable;
}

}  // namespace autoglm::cpu
