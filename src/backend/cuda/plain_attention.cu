// See kernels.h: paged_attention_plain, the straightforward version of the
// attention.h contract for head sizes the optimised kernels reject (the tiny test fixtures use
// head_dim 16 and 32). One warp per (token, head) walks the visible keys with an online
// softmax; it is correct for any layout but is not meant to be fast.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "core/error.h"

namespace autoglm::cuda {
namespace {

__device__ __forceinline__ float load_f32(const __nv_bfloat16* p) {
  return __bfloat162float(*p);
}
__device__ __forceinline__ float load_f32(const __half* p) {
  return __half2float(*p);
}
__device__ __forceinline__ void store_f32(__nv_bfloat16* p, float v) {
  *p = __float2bfloat16_rn(v);
}
__device__ __forceinline__ void store_f32(__half* p, float v) {
  *p = __float2half_rn(v);
}

constexpr int kDimsPerLane = kMaxHeadDim / 32;

template <typename T>
__global__ void attention_kernel(AttentionBatch batch, AttentionShape shape, const T* q,
                                 const T* k_cache, const T* v_cache, T* out) {
  const int32_t t = blockIdx.x;
  const int32_t h = blockIdx.y;
  const int lane = threadIdx.x;
  // The sequence of token t: the last s with seq_start[s] <= t (binary search).
  int32_t lo = 0, hi = batch.n_seqs - 1;
  while (lo < hi) {
    const int32_t mid = (lo + hi + 1) / 2;
    if (batch.seq_start[mid] <= t)
      lo = mid;
    else
      hi = mid - 1;
  }
  const int32_t s = lo;
  const int32_t len = batch.seq_start[s + 1] - batch.seq_start[s];
  const int32_t visible = batch.context_len[s] - len + (t - batch.seq_start[s]) + 1;
  const int32_t hd = shape.head_dim;
  const int32_t kv_dim = shape.num_kv_heads * hd;
  const int32_t kv_off = h / (shape.num_heads / shape.num_kv_heads) * hd;
  const int32_t* blocks = batch.block_table + static_cast<int64_t>(s) * batch.max_blocks_per_seq;
  const T* qh = q + (static_cast<int64_t>(t) * shape.num_heads + h) * hd;
  float qv[kDimsPerLane], acc[kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    qv[i] = d < hd ? load_f32(qh + d) : 0.0f;
    acc[i] = 0.0f;
  }
  float running_max = -INFINITY, running_sum = 0.0f;
  for (int32_t p = 0; p < visible; ++p) {
    const int64_t slot = static_cast<int64_t>(blocks[p / batch.block_size]) * batch.block_size +
                         p % batch.block_size;
    const T* kr = k_cache + slot * kv_dim + kv_off;
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) dot += qv[i] * load_f32(kr + d);
    }
    for (int off = 16; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
    const float score = dot * shape.scale;
    const float new_max = fmaxf(running_max, score);
    const float rescale = __expf(running_max - new_max);
    const float weight = __expf(score - new_max);
    running_sum = running_sum * rescale + weight;
    running_max = new_max;
    const T* vr = v_cache + slot * kv_dim + kv_off;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) acc[i] = acc[i] * rescale + weight * load_f32(vr + d);
    }
  }
  T* oh = out + (static_cast<int64_t>(t) * shape.num_heads + h) * hd;
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) store_f32(oh + d, acc[i] / running_sum);
  }
}

void check_shape(const AttentionShape& shape) {
  if (shape.head_dim <= 0 || shape.head_dim > kMaxHeadDim || shape.num_kv_heads <= 0 ||
      shape.num_heads % shape.num_kv_heads != 0) {
    fail(ErrorCode::kUnsupported, "CUDA plain attention: heads " + std::to_string(shape.num_heads) +
                                      "/" + std::to_string(shape.num_kv_heads) + ", head_dim " +
                                      std::to_string(shape.head_dim) + " not supported");
  }
  if (shape.kv_fp8) {
    fail(ErrorCode::kUnsupported, "CUDA plain attention: no FP8 KV pool (head_dim 64 or 128 only)");
  }
}

}  // namespace

void paged_attention_plain(const AttentionBatch& batch, const AttentionShape& shape, const void* q,
                           PagedKvLayer kv, void* out, ActType type, cudaStream_t stream) {
  check_shape(shape);
  if (batch.n_tokens == 0) return;
  const dim3 grid(static_cast<unsigned>(batch.n_tokens), static_cast<unsigned>(shape.num_heads));
  if (type == ActType::kBF16) {
    using T = __nv_bfloat16;
    attention_kernel<<<grid, 32, 0, stream>>>(batch, shape, static_cast<const T*>(q),
                                              static_cast<const T*>(kv.k),
                                              static_cast<const T*>(kv.v), static_cast<T*>(out));
  } else {
    using T = __half;
    attention_kernel<<<grid, 32, 0, stream>>>(batch, shape, static_cast<const T*>(q),
                                              static_cast<const T*>(kv.k),
                                              static_cast<const T*>(kv.v), static_cast<T*>(out));
  }
  check_launch("paged_attention_plain");
}

}  // namespace autoglm::cuda
