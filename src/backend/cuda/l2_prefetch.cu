// See l2_prefetch.h. CTA c of the grid takes the c-th contiguous slice of every range and its
// threads issue it, as bulk prefetches of up to kBulkPiece bytes (Hopper's
// cp.async.bulk.prefetch.L2: one request per piece) or as one prefetch.global.L2 per line.
// Thread ownership: see l2_prefetch.h.
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/l2_prefetch.h"
#include "core/error.h"

namespace autoglm::cuda {
namespace {

constexpr int kThreads = 128;

__global__ void __launch_bounds__(kThreads) l2_prefetch_kernel(const L2Prefetch p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int64_t kUnit = 16;  // bulk copies move whole 16-byte units
  constexpr int64_t kLine = 128;
  constexpr int64_t kBulkPiece = 32 << 10;
#pragma unroll
  for (int r = 0; r < L2Prefetch::kRanges; ++r) {
    const int64_t slice = (p.bytes[r] / kUnit + gridDim.x - 1) / gridDim.x * kUnit;
    const int64_t begin = blockIdx.x * slice;
    const int64_t end = begin + slice < p.bytes[r] ? begin + slice : p.bytes[r];
    const char* base = static_cast<const char*>(p.begin[r]);
    if (p.lines) {
      for (int64_t at = begin + threadIdx.x * kLine; at < end; at += kThreads * kLine) {
        asm volatile("prefetch.global.L2 [%0];" ::"l"(base + at) : "memory");
      }
    } else {
      for (int64_t at = begin + threadIdx.x * kBulkPiece; at < end; at += kThreads * kBulkPiece) {
        const uint32_t size = static_cast<uint32_t>(end - at < kBulkPiece ? end - at : kBulkPiece);
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(base + at), "r"(size)
                     : "memory");
      }
    }
  }
#else
  (void)p;
#endif
}

}  // namespace

void l2_prefetch(const L2Prefetch& prefetch, cudaStream_t stream) {
  if (!prefetch.well_formed()) {
    fail(ErrorCode::kInvalidArgument,
         "CUDA l2_prefetch: ranges must be 16-byte aligned and sized, CTAs in 0..65535");
  }
  if (prefetch.empty()) return;
  l2_prefetch_kernel<<<static_cast<unsigned>(prefetch.ctas), kThreads, 0, stream>>>(prefetch);
  check_launch("l2_prefetch");
}

}  // namespace autoglm::cuda
