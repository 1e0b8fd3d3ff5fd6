// The tensor cores' m16n8k16 mma.sync with fp32 accumulation, shared by the attention kernels
// (attention_kernel.cuh) and the few-row GEMV (gemv.cu), and the E4M3 m16n8k32 one of the
// FP8-weight GEMV (gemv_fp8.cu), whose fragments hold four bytes a register: A's rows l / 4 and
// l / 4 + 8 at k bytes 4 (l % 4) (registers 0, 1) and 16 + 4 (l % 4) (registers 2, 3), B's
// column l / 4 at the same k bytes. Fragments per the PTX ISA: lane l holds
// A's rows l / 4 and l / 4 + 8 at k pairs 2 (l % 4) and 2 (l % 4) + 8, B's column l / 4 at the
// same k pairs, and D's rows l / 4 and l / 4 + 8 at columns 2 (l % 4) and 2 (l % 4) + 1.
// Thread ownership: device code.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace autoglm::cuda {

// d += a (16x16, row-major fragments) * b (16x8, column-major fragments), fp32 accumulators.
template <typename T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  if constexpr (std::is_same_v<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// d += a (16x32 E4M3) * b (32x8 E4M3), fp32 accumulators.
__device__ __forceinline__ void mma16832_e4m3(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                              uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

}  // namespace autoglm::cuda
