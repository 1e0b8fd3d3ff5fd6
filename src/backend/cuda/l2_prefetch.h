// Weights that a batch-1 decode step asks the memory system to bring into L2 ahead of the GEMV
// that reads them, while the latency-bound kernels before that GEMV (attention, an RMSNorm)
// leave DRAM idle (~10 us a layer). The prefetch kernel runs on a side stream, forked from the
// step's stream, so that nothing on the step's critical path waits for it: its requests queue
// in the memory system while attention runs, and the GEMV finds its first weights in L2 or
// already on their way. A hint only: no result depends on it.
// Thread ownership: l2_prefetch() is called by the engine thread; the kernel is device code.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace autoglm::cuda {

struct L2Prefetch {
  static constexpr int kRanges = 2;  // the SwiGLU GEMV reads the gate and up halves together
  const void* begin[kRanges] = {};   // 16-byte aligned
  int64_t bytes[kRanges] = {};       // multiples of 16
  int32_t ctas = 0;                  // CTAs issuing the requests (0: nothing to do)
  bool lines = false;                // one prefetch per 128-byte line rather than bulk ones

  bool empty() const { return ctas == 0 || (bytes[0] <= 0 && bytes[1] <= 0); }
  // What the bulk prefetch requires; l2_prefetch() refuses anything else.
  bool well_formed() const {
    for (int r = 0; r < kRanges; ++r) {
      if (bytes[r] < 0 || bytes[r] % 16 != 0 || (bytes[r] > 0 && begin[r] == nullptr) ||
          reinterpret_cast<uintptr_t>(begin[r]) % 16 != 0) {
        return false;
      }
    }
    return ctas >= 0 && ctas <= 65535;
  }
};

// Launches the prefetch on `stream` (a plain launch: it reads only constant weights).
void l2_prefetch(const L2Prefetch& prefetch, cudaStream_t stream);

}  // namespace autoglm::cuda
