// AVX2+FMA+F16C instance of the fast kernels (simd_impl.inc); compiled with those target flags
// and only called after a run-time CPU check (simd_dispatch.cpp).
// Thread ownership: pure functions.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backend/cpu/kernels.h"
#include "backend/cpu/simd_kernels.h"

namespace autoglm::cpu {
namespace {

struct V {
  using F = __m256;
  static constexpr int64_t kWidth = 8;
  // 2 x 6 accumulators, 2 weight vectors, 1 broadcast: 15 of 16 ymm
  static constexpr int kPackedTokens = 6;
  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float a) { return _mm256_set1_ps(a); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F load_bf16(const uint16_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static F load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static float hsum(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

#include "backend/cpu/simd_impl.inc"

// Constant-initialised: no run-time code from this unit runs before the CPU check.
constexpr SimdKernels kTable{"avx2", linear_rows_impl, dot_impl, axpy_impl, attend_impl};

}  // namespace

const SimdKernels& avx2_kernels() {
  return kTable;
}

}  // namespace autoglm::cpu
