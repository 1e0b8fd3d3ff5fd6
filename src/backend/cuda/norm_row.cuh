// The row RMSNorm shared by the norm kernels (kernels.cu: one block per row) and the GEMV whose
// last block finishes its output row with it (gemv.cu), plus the small vector and reduction
// helpers both use. norm_row: the block's threads (blockDim.x, a multiple of 32) own the N
// vectors of W elements that start at elements (thread + n * blockDim.x) * W. Every load of the
// row (x, delta, and the weights when they fit in registers) is issued before the first
// reduction, so the row waits for memory once; the two reductions take one barrier each.
// Thread ownership: device code.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cuda/element_convert.cuh"

namespace autoglm::cuda {

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// W consecutive elements moved as aligned vector accesses: nvcc emits one ld/st.global.v2/v4
// for a pack of up to 16 bytes, two 16-byte ones for a 32-byte pack (8 floats).
template <typename T, int W>
struct alignas(sizeof(T) * W < 16 ? sizeof(T) * W : 16) Pack {
  T v[W];
};

template <int W, typename T>
__device__ __forceinline__ void load_f32(const T* p, float (&out)[W]) {
  const Pack<T, W> pack = *reinterpret_cast<const Pack<T, W>*>(p);
#pragma unroll
  for (int k = 0; k < W; ++k) out[k] = to_f32(pack.v[k]);
}

template <int W, typename T>
__device__ __forceinline__ void store_f32(T* p, const float (&in)[W]) {
  Pack<T, W> pack;
#pragma unroll
  for (int k = 0; k < W; ++k) pack.v[k] = from_f32<T>(in[k]);
  *reinterpret_cast<Pack<T, W>*>(p) = pack;
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024) with one barrier: each warp posts
// its sum in `partial`, then every warp adds all posts, in the same order, so every thread gets
// the same bits. `partial` must serve this one reduction only (no barrier protects its reuse).
__device__ __forceinline__ float block_sum_once(float v, float* partial) {
  v = warp_sum(v);
  const int lane = threadIdx.x % 32;
  if (lane == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  return warp_sum(lane < static_cast<int>(blockDim.x / 32) ? partial[lane] : 0.0f);
}

// One row of residual_add_norm (kernels.h) in two phases, so that a caller can load the row's
// operands early and supply the delta itself (gemv.cu): load_row brings x (and the delta, and
// the fp32 weights when kPreloadWeights) into registers, finish_row does the arithmetic and the
// stores. Vector n of W elements of a thread starts at element (thread + n * blockDim.x) * W;
// hidden <= blockDim.x * N * W and a multiple of W. `partial` serves the two reductions.
template <int W, int N, bool kPreloadWeights>
struct RowOperands {
  float xv[N][W], dv[N][W];
  float pw[kPreloadWeights ? N : 1][W], nw[kPreloadWeights ? N : 1][W];
};

template <int W>
__device__ __forceinline__ int row_vector(int n) {
  return (static_cast<int>(threadIdx.x) + n * static_cast<int>(blockDim.x)) * W;
}

template <typename T, int W, int N, bool kPreloadWeights>
__device__ __forceinline__ void load_row(RowOperands<W, N, kPreloadWeights>& r, const float* xr,
                                         const T* dr, const float* post_w, const float* norm_w,
                                         int64_t hidden) {
#pragma unroll
  for (int n = 0; n < N; ++n) {
    const int i = row_vector<W>(n);
#pragma unroll
    for (int k = 0; k < W; ++k) r.xv[n][k] = r.dv[n][k] = 0.0f;
    if (i >= hidden) continue;  // hidden is a multiple of W
    load_f32<W>(xr + i, r.xv[n]);
    if (dr != nullptr) load_f32<W>(dr + i, r.dv[n]);
    if constexpr (kPreloadWeights) {
      if (post_w != nullptr) load_f32<W>(post_w + i, r.pw[n]);
      if (norm_w != nullptr) load_f32<W>(norm_w + i, r.nw[n]);
    }
  }
}

// post_w applies to the delta (GLM-4's post-sublayer norm), so only with one (has_delta).
template <typename T, int W, int N, bool kPreloadWeights>
__device__ __forceinline__ void finish_row(RowOperands<W, N, kPreloadWeights>& r, float* xr,
                                           bool has_delta, const float* post_w, const float* norm_w,
                                           T* orow, int64_t hidden, float eps,
                                           float (&partial)[2][32]) {
  const float* pw_row = has_delta ? post_w : nullptr;
  float post_scale = 1.0f;
  if (pw_row != nullptr) {
    float ss = 0.0f;
#pragma unroll
    for (int n = 0; n < N; ++n) {
#pragma unroll
      for (int k = 0; k < W; ++k) ss += r.dv[n][k] * r.dv[n][k];
    }
    post_scale = rsqrtf(block_sum_once(ss, partial[0]) / static_cast<float>(hidden) + eps);
  }
  float ss = 0.0f;
#pragma unroll
  for (int n = 0; n < N; ++n) {
    const int i = row_vector<W>(n);
    if (i >= hidden) continue;
    if (has_delta) {
      float w[W] = {};
      if (pw_row != nullptr) {
        if constexpr (kPreloadWeights) {
#pragma unroll
          for (int k = 0; k < W; ++k) w[k] = r.pw[n][k];
        } else {
          load_f32<W>(pw_row + i, w);
        }
      }
#pragma unroll
      for (int k = 0; k < W; ++k) {
        r.xv[n][k] += pw_row != nullptr ? w[k] * (r.dv[n][k] * post_scale) : r.dv[n][k];
      }
      store_f32<W>(xr + i, r.xv[n]);
    }
#pragma unroll
    for (int k = 0; k < W; ++k) ss += r.xv[n][k] * r.xv[n][k];
  }
  if (norm_w == nullptr) return;
  const float inv = rsqrtf(block_sum_once(ss, partial[1]) / static_cast<float>(hidden) + eps);
#pragma unroll
  for (int n = 0; n < N; ++n) {
    const int i = row_vector<W>(n);
    if (i >= hidden) continue;
    float w[W];
    if constexpr (kPreloadWeights) {
#pragma unroll
      for (int k = 0; k < W; ++k) w[k] = r.nw[n][k];
    } else {
      load_f32<W>(norm_w + i, w);
    }
    float o[W];
#pragma unroll
    for (int k = 0; k < W; ++k) o[k] = w[k] * (r.xv[n][k] * inv);
    store_f32<W>(orow + i, o);
  }
}

// Both phases: every load issued before the first reduction, so the row waits for memory once.
// The weights go to registers too while that stays within the 64 registers of 1,024 threads.
template <typename T, int W, int N>
__device__ __forceinline__ void norm_row(float* xr, const T* dr, const float* post_w,
                                         const float* norm_w, T* orow, int64_t hidden, float eps,
                                         float (&partial)[2][32]) {
  RowOperands<W, N, (N * W <= 8)> r;
  load_row<T>(r, xr, dr, dr != nullptr ? post_w : nullptr, norm_w, hidden);
  finish_row<T>(r, xr, dr != nullptr, post_w, norm_w, orow, hidden, eps, partial);
}

}  // namespace autoglm::cuda
