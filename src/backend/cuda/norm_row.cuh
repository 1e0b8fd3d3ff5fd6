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

// load_f32 through L2 only (ld.global.cg): for data that other blocks of the running kernel
// wrote, which this SM's L1 must not serve.
template <int W, typename T>
__device__ __forceinline__ void load_f32_l2(const T* p, float (&out)[W]) {
  Pack<T, W> pack;
  if constexpr (sizeof(pack) == 16) {
    *reinterpret_cast<uint4*>(&pack) = __ldcg(reinterpret_cast<const uint4*>(p));
  } else if constexpr (sizeof(pack) == 8) {
    *reinterpret_cast<uint2*>(&pack) = __ldcg(reinterpret_cast<const uint2*>(p));
  } else if constexpr (sizeof(pack) == 4) {
    *reinterpret_cast<unsigned*>(&pack) = __ldcg(reinterpret_cast<const unsigned*>(p));
  } else {
    static_assert(sizeof(pack) == 2, "a pack is 2 to 16 bytes");
    *reinterpret_cast<unsigned short*>(&pack) = __ldcg(reinterpret_cast<const unsigned short*>(p));
  }
#pragma unroll
  for (int k = 0; k < W; ++k) out[k] = to_f32(pack.v[k]);
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

// One row of residual_add_norm (kernels.h): xr, dr (nullptr: no delta), the fp32 weights and
// the output row; hidden <= blockDim.x * N * W and a multiple of W. kDeltaFromL2 reads the delta
// with load_f32_l2. `partial` serves the two reductions.
template <typename T, int W, int N, bool kDeltaFromL2 = false>
__device__ __forceinline__ void norm_row(float* xr, const T* dr, const float* post_w,
                                         const float* norm_w, T* orow, int64_t hidden, float eps,
                                         float (&partial)[2][32]) {
  // Weights in registers too while that stays within the 64 registers of 1,024 threads.
  constexpr bool kPreloadWeights = N * W <= 8;
  const int width = static_cast<int>(hidden);
  const float* pw_row = dr != nullptr ? post_w : nullptr;
  float xv[N][W], dv[N][W], pw[kPreloadWeights ? N : 1][W], nw[kPreloadWeights ? N : 1][W];
#pragma unroll
  for (int n = 0; n < N; ++n) {
    const int i = (static_cast<int>(threadIdx.x) + n * static_cast<int>(blockDim.x)) * W;
#pragma unroll
    for (int k = 0; k < W; ++k) xv[n][k] = dv[n][k] = 0.0f;
    if (i >= width) continue;  // width is a multiple of W
    load_f32<W>(xr + i, xv[n]);
    if (dr != nullptr) {
      if constexpr (kDeltaFromL2) {
        load_f32_l2<W>(dr + i, dv[n]);
      } else {
        load_f32<W>(dr + i, dv[n]);
      }
    }
    if constexpr (kPreloadWeights) {
      if (pw_row != nullptr) load_f32<W>(pw_row + i, pw[n]);
      if (norm_w != nullptr) load_f32<W>(norm_w + i, nw[n]);
    }
  }
  float post_scale = 1.0f;
  if (pw_row != nullptr) {  // GLM-4's post-sublayer norm of the delta, before it joins x
    float ss = 0.0f;
#pragma unroll
    for (int n = 0; n < N; ++n) {
#pragma unroll
      for (int k = 0; k < W; ++k) ss += dv[n][k] * dv[n][k];
    }
    post_scale = rsqrtf(block_sum_once(ss, partial[0]) / static_cast<float>(hidden) + eps);
  }
  float ss = 0.0f;
#pragma unroll
  for (int n = 0; n < N; ++n) {
    const int i = (static_cast<int>(threadIdx.x) + n * static_cast<int>(blockDim.x)) * W;
    if (i >= width) continue;
    if (dr != nullptr) {
      float w[W] = {};
      if (pw_row != nullptr) {
        if constexpr (kPreloadWeights) {
#pragma unroll
          for (int k = 0; k < W; ++k) w[k] = pw[n][k];
        } else {
          load_f32<W>(pw_row + i, w);
        }
      }
#pragma unroll
      for (int k = 0; k < W; ++k) {
        xv[n][k] += pw_row != nullptr ? w[k] * (dv[n][k] * post_scale) : dv[n][k];
      }
      store_f32<W>(xr + i, xv[n]);
    }
#pragma unroll
    for (int k = 0; k < W; ++k) ss += xv[n][k] * xv[n][k];
  }
  if (norm_w == nullptr) return;
  const float inv = rsqrtf(block_sum_once(ss, partial[1]) / static_cast<float>(hidden) + eps);
#pragma unroll
  for (int n = 0; n < N; ++n) {
    const int i = (static_cast<int>(threadIdx.x) + n * static_cast<int>(blockDim.x)) * W;
    if (i >= width) continue;
    float w[W];
    if constexpr (kPreloadWeights) {
#pragma unroll
      for (int k = 0; k < W; ++k) w[k] = nw[n][k];
    } else {
      load_f32<W>(norm_w + i, w);
    }
    float o[W];
#pragma unroll
    for (int k = 0; k < W; ++k) o[k] = w[k] * (xv[n][k] * inv);
    store_f32<W>(orow + i, o);
  }
}

}  // namespace autoglm::cuda
