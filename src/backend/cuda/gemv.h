// A bandwidth-bound GEMV / small-M GEMM for decode (gemv.cu): y[m][n] = sum_k x[m][k] * W[n][k]
// (+ bias[n]) for 1 to 8 rows of x, with W the row-major [N][K] HF weight streamed from device
// memory exactly once. It is the same contract as Gemm::linear (gemm.h) restricted to m <= 8,
// where cuBLASLt's tiles are mostly padding and its split-K adds a second kernel. One or two
// rows take a CUDA-core sweep (with the fused epilogues below); 3-8 rows, K a multiple of 64,
// take the tensor cores (mma.sync with W as the A operand), where the sweep is bound by its FMAs.
// Thread ownership: called by whoever drives the stream (the engine thread); asynchronous.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/kernels.h"

namespace autoglm::cuda {

inline constexpr int64_t kGemvMaxRows = 8;  // the largest m gemv() accepts
// From this many rows gemv() runs its products on the tensor cores (gemv_mma_supported: also
// k % 64 == 0 and 16-byte aligned x and w), below it on the CUDA cores.
inline constexpr int64_t kGemvMmaMinRows = 3;
bool gemv_mma_supported(int64_t m, int64_t k, const void* x, const void* w);

// x [m][k] and w [n][k] in `type`; y [m][n] in `type`, or fp32 when out_f32; bias [n] (or
// nullptr) in y's type. fp32 accumulation. 0 <= m <= kGemvMaxRows, else kInvalidArgument;
// m == 0 or n == 0 launches nothing. All arrays are dense (row stride k for x and w, n for y).
// Full speed needs k % 8 == 0 and x, w 16-byte aligned (true of arena buffers and uploaded
// weights); anything else takes a correct but slow element-wise path.
void gemv(const void* x, const void* w, const void* bias, void* y, int64_t m, int64_t n, int64_t k,
          ActType type, bool out_f32, cudaStream_t stream);

// The one- and two-row projections of an FP8-weight model (W8A16): w8 [n][k] E4M3 with
// w_scale [n] fp32 (quantize_rows_e4m3, kernels.h), x [m][k], bias [n] (or nullptr) and y [m][n]
// in `type`; y[i][j] = w_scale[j] * sum_k x[i][k] * w8[j][k] (+ bias[j]), fp32 accumulation.
// Needs gemv_fp8_supported (1 <= m <= kGemvFp8MaxRows, k % 16 == 0, 16-byte aligned x and w8),
// else kInvalidArgument.
inline constexpr int64_t kGemvFp8MaxRows = 2;
bool gemv_fp8_supported(int64_t m, int64_t k, const void* x, const void* w8);
void gemv_fp8(const void* x, const void* w8, const float* w_scale, const void* bias, void* y,
              int64_t m, int64_t n, int64_t k, ActType type, cudaStream_t stream);
// gemv_fp8 over gate_up (n = 2 x inter rows: the gate half, then the up half) with silu_mul in
// its epilogue: y [m][n / 2] = silu(gate) x up, bit for bit gemv_fp8 then silu_mul. Needs what
// gemv_fp8 needs and n even, else kInvalidArgument.
void gemv_fp8_swiglu(const void* x, const void* w8, const float* w_scale, const void* bias, void* y,
                     int64_t m, int64_t n, int64_t k, ActType type, cudaStream_t stream);
// Three to kGemvMaxRows rows of an FP8-weight model on the tensor cores (W8A8, as
// Gemm::linear_fp8): x8 [m][k] E4M3 with x_scale [m] (quantize_rows_e4m3 of the input), w8 and
// w_scale as above; y[i][j] = x_scale[i] * w_scale[j] * sum_k x8[i][k] w8[j][k] (+ bias[j]).
// Needs gemv_fp8_mma_supported (k % 128 == 0, 16-byte aligned x8 and w8), else kInvalidArgument.
bool gemv_fp8_mma_supported(int64_t m, int64_t k, const void* x8, const void* w8);
void gemv_fp8_mma(const void* x8, const float* x_scale, const void* w8, const float* w_scale,
                  const void* bias, void* y, int64_t m, int64_t n, int64_t k, ActType type,
                  cudaStream_t stream);

// Decode fusions: the same GEMV with the next element-wise kernel done in its epilogue, so a
// batch-1 step launches (and waits on) one kernel fewer for each. Results are bit-identical to
// the unfused pair (each sum is rounded to `type` before the element-wise step, as a store and a
// reload would round it).
//
// gemv + silu_mul: w_gate_up is [2 * inter][k] (gate rows, then up rows, as HF fuses them), bias
// [2 * inter] or nullptr; y [m][inter] = silu(gate) * up.
void gemv_swiglu(const void* x, const void* w_gate_up, const void* bias, void* y, int64_t m,
                 int64_t inter, int64_t k, ActType type, cudaStream_t stream);

// gemv + qkv_norm_rope without q/k norms: w_qkv is [(heads + 2 * kv_heads) * head_dim][k]; row
// m of x is the token at positions[m]; q [m][heads * head_dim] and k, v to `kv` as qkv_norm_rope
// writes them. Needs head_dim and rotary_dim multiples of 4 (gemv_rope_qkv_supported), else
// kInvalidArgument. positions and kv.slots may be read before the wait for the previous kernel
// (pdl.cuh), as constants: they must come from a copy, not from the kernel just before.
bool gemv_rope_qkv_supported(const QkvLayout& layout);
void gemv_rope_qkv(const void* x, const void* w_qkv, const void* bias, int64_t m, int64_t k,
                   const QkvLayout& layout, const int32_t* positions, const float* rope_cos,
                   const float* rope_sin, void* q, KvDestination kv, ActType type,
                   cudaStream_t stream);

}  // namespace autoglm::cuda
