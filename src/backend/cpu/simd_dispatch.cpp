// The portable kernel table and the run-time choice among the per-ISA tables (see
// simd_kernels.h). The CPU check uses the compiler's __builtin_cpu_supports (cpuid + XCR0,
// so an OS that does not save AVX-512 state is not offered AVX-512).
// Thread ownership: best_kernels() is safe to call from any thread (static initialisation).
#if defined(AUTOGLM_X86_KERNELS)
#include <cpuid.h>
#endif

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "backend/cpu/kernels.h"
#include "backend/cpu/simd_kernels.h"

namespace autoglm::cpu {
namespace {

// Baseline-ISA vectors through the GCC/Clang vector extension: SSE2 on x86-64, NEON on arm64.
struct V {
  using F = float __attribute__((vector_size(16)));
  static constexpr int64_t kWidth = 4;
  // The tiled prefill GEMM (simd_impl.inc): 4 x 2 dot-product accumulators.
  static constexpr int kPackedTokens = 0;
  static constexpr int kGemmRows = 4;
  static constexpr int kGemmTokens = 2;
  static F zero() { return F{}; }
  static F set1(float a) { return F{} + a; }
  static F load(const float* p) {
    F v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(float* p, F v) { std::memcpy(p, &v, sizeof v); }
  static F load_bf16(const uint16_t* p) {
    using H = uint16_t __attribute__((vector_size(8)));
    using U = uint32_t __attribute__((vector_size(16)));
    H h;
    std::memcpy(&h, p, sizeof h);
    const U bits = __builtin_convertvector(h, U) << 16;
    F v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  static F load_f16(const uint16_t* p) {
    F v;
    for (int i = 0; i < kWidth; ++i) v[i] = f16_to_f32(p[i]);
    return v;
  }
  static F fma(F a, F b, F c) { return a * b + c; }
  static F add(F a, F b) { return a + b; }
  static float hsum(F v) {
    float s = 0.0f;
    for (int i = 0; i < kWidth; ++i) s += v[i];
    return s;
  }
};

#include "backend/cpu/simd_impl.inc"

constexpr SimdKernels kPortable{"portable", linear_rows_impl, dot_impl, axpy_impl, attend_impl};

#if defined(AUTOGLM_X86_KERNELS)
// clang 14's __builtin_cpu_supports has no "f16c": read CPUID leaf 1 (ECX bit 29) directly.
// AVX2 being usable (checked by the builtin, which includes the OS's XCR0 state) implies the
// YMM state F16C needs.
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  return (ecx & bit_F16C) != 0;
}
#endif

bool cpu_has_avx2() {
#if defined(AUTOGLM_X86_KERNELS)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(AUTOGLM_X86_KERNELS)
  __builtin_cpu_init();
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

}  // namespace

const SimdKernels& portable_kernels() {
  return kPortable;
}

std::vector<const SimdKernels*> available_kernels() {
  std::vector<const SimdKernels*> out;
#if defined(AUTOGLM_X86_KERNELS)
  if (cpu_has_avx512()) out.push_back(&avx512_kernels());
  if (cpu_has_avx2()) out.push_back(&avx2_kernels());
#endif
  out.push_back(&kPortable);
  return out;
}

const SimdKernels& best_kernels() {
  static const SimdKernels* chosen = [] {
    const std::vector<const SimdKernels*> all = available_kernels();
    if (const char* want = std::getenv("AUTOGLM_CPU_ISA")) {
      for (const SimdKernels* k : all) {
        if (k->isa == want) return k;
      }
    }
    return all.front();
  }();
  return *chosen;
}

}  // namespace autoglm::cpu
