// Device side of l2_prefetch.h: the extra CTAs' work. CTA c of `ctas` takes the c-th contiguous
// slice of every range and its threads issue it, either as bulk prefetches of up to kBulkPiece
// bytes (Hopper's cp.async.bulk.prefetch.L2, one request per piece) or one prefetch.global.L2
// per 128-byte line; then the CTA exits without waiting for the previous kernel: weights are
// constant.
// Thread ownership: device code.
#pragma once

#include <cstdint>

#include "backend/cuda/l2_prefetch.h"

namespace autoglm::cuda {

__device__ __forceinline__ void prefetch_to_l2(const L2Prefetch& p, int64_t cta, int64_t ctas) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int64_t kUnit = 16;  // bulk copies move whole 16-byte units
  constexpr int64_t kLine = 128;
  constexpr int64_t kBulkPiece = 32 << 10;
#pragma unroll
  for (int r = 0; r < L2Prefetch::kRanges; ++r) {
    const int64_t slice = (p.bytes[r] / kUnit + ctas - 1) / ctas * kUnit;
    const int64_t begin = cta * slice;
    const int64_t end = begin + slice < p.bytes[r] ? begin + slice : p.bytes[r];
    const char* base = static_cast<const char*>(p.begin[r]);
    if (p.lines) {
      for (int64_t at = begin + threadIdx.x * kLine; at < end; at += int64_t{blockDim.x} * kLine) {
        asm volatile("prefetch.global.L2 [%0];" ::"l"(base + at) : "memory");
      }
    } else {
      for (int64_t at = begin + threadIdx.x * kBulkPiece; at < end;
           at += int64_t{blockDim.x} * kBulkPiece) {
        const uint32_t size = static_cast<uint32_t>(end - at < kBulkPiece ? end - at : kBulkPiece);
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(base + at), "r"(size)
                     : "memory");
      }
    }
  }
#else
  (void)p, (void)cta, (void)ctas;
#endif
}

}  // namespace autoglm::cuda
