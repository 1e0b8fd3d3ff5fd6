// A bandwidth-bound GEMV / small-M GEMM for decode (gemv.cu): y[m][n] = sum_k x[m][k] * W[n][k]
// (+ bias[n]) for 1 to 8 rows of x, with W the row-major [N][K] HF weight streamed from device
// memory exactly once. It is the same contract as Gemm::linear (gemm.h) restricted to m <= 8,
// where cuBLASLt's tiles are mostly padding and its split-K adds a second kernel.
// Thread ownership: called by whoever drives the stream (the engine thread); asynchronous.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/attention.h"

namespace autoglm::cuda {

inline constexpr int64_t kGemvMaxRows = 8;  // the largest m gemv() accepts

// x [m][k] and w [n][k] in `type`; y [m][n] in `type`, or fp32 when out_f32; bias [n] (or
// nullptr) in y's type. fp32 accumulation. 0 <= m <= kGemvMaxRows, else kInvalidArgument;
// m == 0 or n == 0 launches nothing. All arrays are dense (row stride k for x and w, n for y).
// Full speed needs k % 8 == 0 and x, w 16-byte aligned (true of arena buffers and uploaded
// weights); anything else takes a correct but slow element-wise path.
void gemv(const void* x, const void* w, const void* bias, void* y, int64_t m, int64_t n, int64_t k,
          ActType type, bool out_f32, cudaStream_t stream);

}  // namespace autoglm::cuda
