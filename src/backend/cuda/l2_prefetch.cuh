// Device side of l2_prefetch.h: the extra CTAs' work. Each thread takes one contiguous piece of
// every range and issues it as one bulk prefetch (Hopper's cp.async.bulk.prefetch.L2), then the
// CTA exits without waiting for the previous kernel: weights are constant.
// Thread ownership: device code.
#pragma once

#include <cstdint>

#include "backend/cuda/l2_prefetch.h"

namespace autoglm::cuda {

// `thread` of `threads` prefetching threads (every thread of the extra CTAs).
__device__ __forceinline__ void prefetch_to_l2(const L2Prefetch& p, int64_t thread,
                                               int64_t threads) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Bulk copies move whole 16-byte units; a piece is the range over the threads, so rounded.
  constexpr int64_t kUnit = 16;
  constexpr int64_t kMaxPiece = int64_t{1} << 20;  // keeps `size` well inside 32 bits
#pragma unroll
  for (int r = 0; r < L2Prefetch::kRanges; ++r) {
    const int64_t units = p.bytes[r] / kUnit;
    int64_t piece = (units + threads - 1) / threads * kUnit;
    piece = piece < kMaxPiece ? piece : kMaxPiece;
    if (piece == 0) continue;
    for (int64_t at = thread * piece; at < units * kUnit; at += threads * piece) {
      const int64_t left = units * kUnit - at;
      const uint32_t size = static_cast<uint32_t>(left < piece ? left : piece);
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(
                       static_cast<const char*>(p.begin[r]) + at),
                   "r"(size)
                   : "memory");
    }
  }
#else
  (void)p, (void)thread, (void)threads;
#endif
}

}  // namespace autoglm::cuda
