// Weight ranges that a latency-bound kernel of a small decode step (attention, the RMSNorm
// between two GEMVs) asks the memory system to bring into L2 while it runs, so that the next
// GEMV finds its first weights there. At batch 1 those kernels leave DRAM idle for ~10 us a
// layer; the prefetch fills that gap with bytes the step must read anyway. A hint only: no
// kernel's result depends on it. The prefetching threads belong to extra CTAs of the kernel that
// carries it (they issue, then exit), spread over the GPU because each SM's bulk-copy unit
// issues its requests one after another.
// Thread ownership: plain data, built by the engine thread, read by device code.
#pragma once

#include <cstdint>

namespace autoglm::cuda {

struct L2Prefetch {
  static constexpr int kRanges = 2;  // the SwiGLU GEMV reads the gate and up halves together
  const void* begin[kRanges] = {};   // 16-byte aligned
  int64_t bytes[kRanges] = {};       // multiples of 16
  int32_t ctas = 0;                  // extra CTAs the launch adds to issue them (0: none)
  bool lines = false;                // one prefetch per 128-byte line rather than bulk prefetches

  bool empty() const { return ctas == 0 || (bytes[0] <= 0 && bytes[1] <= 0); }
  // What the bulk prefetch requires; launchers reject anything else.
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

}  // namespace autoglm::cuda
