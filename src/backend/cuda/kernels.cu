// See kernels.h. Kernels are templates over the storage type (BF16 or FP16) with fp32 math; one
// switch per launcher picks the instantiation, so this file instantiates each kernel twice.
// Row kernels use one block per row and a block-wide sum; they favour clarity over the last
// few percent of bandwidth (issue 7 tunes them).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/element_convert.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/pdl.cuh"
#include "core/error.h"

namespace autoglm::cuda {
namespace {

constexpr int kRowThreads = 256;

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
__device__ float block_sum(float v) {
  __shared__ float partial[32];
  __shared__ float total;
  v = warp_sum(v);
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float s = lane < static_cast<int>(blockDim.x / 32) ? partial[lane] : 0.0f;
    s = warp_sum(s);
    if (lane == 0) total = s;
  }
  __syncthreads();
  const float result = total;
  __syncthreads();  // `partial`/`total` may be reused by the next call
  return result;
}

int grid_for(size_t n, int threads) {
  const size_t blocks = (n + threads - 1) / threads;
  return static_cast<int>(blocks < 65535 * 8 ? blocks : 65535 * 8);
}

template <typename S, typename D>
__global__ void convert_kernel(const S* src, D* dst, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    dst[i] = from_f32<D>(to_f32(src[i]));
  }
}

template <typename S>
void convert_from(const S* src, void* dst, DType dst_type, size_t n, cudaStream_t stream) {
  const int grid = grid_for(n, 256);
  switch (dst_type) {
    case DType::kF32:
      convert_kernel<<<grid, 256, 0, stream>>>(src, static_cast<float*>(dst), n);
      return;
    case DType::kBF16:
      convert_kernel<<<grid, 256, 0, stream>>>(src, static_cast<__nv_bfloat16*>(dst), n);
      return;
    case DType::kF16:
      convert_kernel<<<grid, 256, 0, stream>>>(src, static_cast<__half*>(dst), n);
      return;
    default:
      fail(ErrorCode::kUnsupported, "CUDA convert: unsupported destination type");
  }
}

template <typename T>
__global__ void embedding_kernel(const int32_t* ids, const T* table, int64_t hidden, float* x) {
  wait_for_previous_kernel();
  const int64_t t = blockIdx.x;
  const T* row = table + static_cast<int64_t>(ids[t]) * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) x[t * hidden + i] = to_f32(row[i]);
}

// One block per row, the row held in registers: it is read once and written once. At batch 1
// there is a single block, so the kernel is bound by one SM's load latency, and reading the
// fp32 residual four times (the looped form) cost ~23 us a launch on an H200 (ncu); with every
// thread's loads issued together it is one round trip per pass over registers.
constexpr int kNormThreads = 1024;
constexpr int kNormPerThread = 16;  // rows up to 16,384 wide

template <typename T>
__global__ void __launch_bounds__(kNormThreads)
    residual_add_norm_kernel(float* x, const T* delta, const float* post_w, const float* norm_w,
                             T* out, int64_t hidden, float eps) {
  wait_for_previous_kernel();
  float* xr = x + blockIdx.x * hidden;
  const T* dr = delta != nullptr ? delta + blockIdx.x * hidden : nullptr;
  float v[kNormPerThread];
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kNormPerThread; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kNormThreads;
    v[j] = (dr != nullptr && i < hidden) ? to_f32(dr[i]) : 0.0f;
    ss += v[j] * v[j];
  }
  // GLM-4's post-sublayer norm of the delta, before it joins the residual.
  const float post_scale =
      (dr != nullptr && post_w != nullptr) ? rsqrtf(block_sum(ss) / hidden + eps) : 1.0f;
  ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kNormPerThread; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kNormThreads;
    if (i < hidden) {
      float xv = xr[i];
      if (dr != nullptr) {
        xv += post_w != nullptr ? post_w[i] * (v[j] * post_scale) : v[j];
        xr[i] = xv;
      }
      v[j] = xv;
      ss += xv * xv;
    }
  }
  if (norm_w == nullptr) return;
  const float inv = rsqrtf(block_sum(ss) / hidden + eps);
  T* orow = out + blockIdx.x * hidden;
#pragma unroll
  for (int j = 0; j < kNormPerThread; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kNormThreads;
    if (i < hidden) orow[i] = from_f32<T>(norm_w[i] * (v[j] * inv));
  }
}

template <typename T>
__global__ void gather_rms_norm_kernel(const float* x, const int32_t* rows, int64_t hidden,
                                       const float* w, float eps, T* out) {
  wait_for_previous_kernel();
  const float* xr = x + static_cast<int64_t>(rows[blockIdx.x]) * hidden;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) ss += xr[i] * xr[i];
  const float inv = rsqrtf(block_sum(ss) / static_cast<float>(hidden) + eps);
  T* orow = out + blockIdx.x * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    orow[i] = from_f32<T>(w[i] * (xr[i] * inv));
  }
}

constexpr int kQkvWarps = 4;

// Block (token, group of kQkvWarps heads); each warp takes one whole head: load to shared fp32,
// norm, rotate, store.
template <typename T>
__global__ void qkv_norm_rope_kernel(const T* qkv, const int32_t* positions, QkvLayout lay,
                                     const float* q_norm, const float* k_norm, float eps,
                                     const float* rope_cos, const float* rope_sin, T* q,
                                     KvDestination kv) {
  wait_for_previous_kernel();
  __shared__ float buf[kQkvWarps][kMaxHeadDim];
  const int t = blockIdx.x;
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int hd = lay.head_dim;
  const int total_heads = lay.num_heads + 2 * lay.num_kv_heads;
  // A decode step of one token spreads its heads over many SMs instead of walking them in one
  // block (13 us per launch on the 9B shape, each head a chain of dependent global loads).
  const int h = blockIdx.y * kQkvWarps + warp;
  if (h >= total_heads) return;
  const int half = lay.rotary_dim / 2;
  const float* cos_row = rope_cos + static_cast<int64_t>(positions[t]) * half;
  const float* sin_row = rope_sin + static_cast<int64_t>(positions[t]) * half;
  const T* src_row = qkv + static_cast<int64_t>(t) * total_heads * hd;
  float* b = buf[warp];
  const T* src = src_row + h * hd;
  const bool is_q = h < lay.num_heads;
  const bool is_k = !is_q && h < lay.num_heads + lay.num_kv_heads;
  // k and v rows: token t's row of the arrays, or its slot's row of the KV pool.
  const int64_t kv_row = kv.slots != nullptr ? kv.slots[t] : t;
  if (!is_q && kv_row < 0) return;  // a padding token: no KV slot
  if (!is_q && !is_k) {             // v: a plain copy
    T* dst = static_cast<T*>(kv.v) +
             (kv_row * lay.num_kv_heads + (h - lay.num_heads - lay.num_kv_heads)) * hd;
    for (int d = lane; d < hd; d += 32) dst[d] = src[d];
    return;
  }
  for (int d = lane; d < hd; d += 32) b[d] = to_f32(src[d]);
  const float* norm_w = is_q ? q_norm : k_norm;
  if (norm_w != nullptr) {
    float ss = 0.0f;
    for (int d = lane; d < hd; d += 32) ss += b[d] * b[d];
    const float inv = rsqrtf(warp_sum(ss) / static_cast<float>(hd) + eps);
    for (int d = lane; d < hd; d += 32) b[d] = norm_w[d] * (b[d] * inv);
  }
  __syncwarp();
  for (int j = lane; j < half; j += 32) {
    const int i0 = lay.interleaved ? 2 * j : j;
    const int i1 = lay.interleaved ? 2 * j + 1 : j + half;
    const float a = b[i0];
    const float c = b[i1];
    b[i0] = a * cos_row[j] - c * sin_row[j];
    b[i1] = c * cos_row[j] + a * sin_row[j];
  }
  __syncwarp();
  T* dst = is_q ? q + (static_cast<int64_t>(t) * lay.num_heads + h) * hd
                : static_cast<T*>(kv.k) + (kv_row * lay.num_kv_heads + (h - lay.num_heads)) * hd;
  for (int d = lane; d < hd; d += 32) dst[d] = from_f32<T>(b[d]);
}

template <typename T>
__global__ void silu_mul_kernel(const T* gate_up, int64_t n_tokens, int64_t inter, T* out) {
  wait_for_previous_kernel();
  const int64_t n = n_tokens * inter;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = idx / inter;
    const int64_t i = idx - t * inter;
    const float g = to_f32(gate_up[t * 2 * inter + i]);
    const float u = to_f32(gate_up[t * 2 * inter + inter + i]);
    out[idx] = from_f32<T>(g / (1.0f + __expf(-g)) * u);
  }
}

}  // namespace

void convert(const void* src, DType src_type, void* dst, DType dst_type, size_t count,
             cudaStream_t stream) {
  if (count == 0) return;
  switch (src_type) {
    case DType::kF32:
      convert_from(static_cast<const float*>(src), dst, dst_type, count, stream);
      break;
    case DType::kBF16:
      convert_from(static_cast<const __nv_bfloat16*>(src), dst, dst_type, count, stream);
      break;
    case DType::kF16:
      convert_from(static_cast<const __half*>(src), dst, dst_type, count, stream);
      break;
    default:
      fail(ErrorCode::kUnsupported, std::string("CUDA backend: weights of type ") +
                                        std::string(dtype_name(src_type)) + " are not supported");
  }
  check_launch("convert");
}

void embedding_gather(const int32_t* ids, int32_t n_tokens, const void* table, ActType type,
                      int64_t hidden, float* x, cudaStream_t stream) {
  if (n_tokens == 0) return;
  if (type == ActType::kBF16) {
    launch_dependent("embedding_gather", embedding_kernel<__nv_bfloat16>, n_tokens, kRowThreads, 0,
                     stream, ids, static_cast<const __nv_bfloat16*>(table), hidden, x);
  } else {
    launch_dependent("embedding_gather", embedding_kernel<__half>, n_tokens, kRowThreads, 0, stream,
                     ids, static_cast<const __half*>(table), hidden, x);
  }
  check_launch("embedding_gather");
}

void residual_add_norm(float* x, const void* delta, const float* post_w, const float* norm_w,
                       void* out, int32_t n_rows, int64_t hidden, float eps, ActType type,
                       cudaStream_t stream) {
  if (n_rows == 0) return;
  if (hidden > static_cast<int64_t>(kNormThreads) * kNormPerThread) {
    fail(ErrorCode::kUnsupported, "CUDA residual_add_norm: hidden size " + std::to_string(hidden) +
                                      " over " + std::to_string(kNormThreads * kNormPerThread));
  }
  if (type == ActType::kBF16) {
    launch_dependent("residual_add_norm", residual_add_norm_kernel<__nv_bfloat16>, n_rows,
                     kNormThreads, 0, stream, x, static_cast<const __nv_bfloat16*>(delta), post_w,
                     norm_w, static_cast<__nv_bfloat16*>(out), hidden, eps);
  } else {
    launch_dependent("residual_add_norm", residual_add_norm_kernel<__half>, n_rows, kNormThreads, 0,
                     stream, x, static_cast<const __half*>(delta), post_w, norm_w,
                     static_cast<__half*>(out), hidden, eps);
  }
  check_launch("residual_add_norm");
}

void gather_rms_norm(const float* x, const int32_t* rows, int32_t n_rows, int64_t hidden,
                     const float* w, float eps, void* out, ActType type, cudaStream_t stream) {
  if (n_rows == 0) return;
  if (type == ActType::kBF16) {
    launch_dependent("gather_rms_norm", gather_rms_norm_kernel<__nv_bfloat16>, n_rows, kRowThreads,
                     0, stream, x, rows, hidden, w, eps, static_cast<__nv_bfloat16*>(out));
  } else {
    launch_dependent("gather_rms_norm", gather_rms_norm_kernel<__half>, n_rows, kRowThreads, 0,
                     stream, x, rows, hidden, w, eps, static_cast<__half*>(out));
  }
  check_launch("gather_rms_norm");
}

void qkv_norm_rope(const void* qkv, const int32_t* positions, int32_t n_tokens,
                   const QkvLayout& layout, const float* q_norm, const float* k_norm, float eps,
                   const float* rope_cos, const float* rope_sin, void* q, KvDestination kv,
                   ActType type, cudaStream_t stream) {
  if (layout.head_dim <= 0 || layout.head_dim > kMaxHeadDim || layout.rotary_dim % 2 != 0 ||
      layout.rotary_dim > layout.head_dim) {
    fail(ErrorCode::kUnsupported, "CUDA qkv_norm_rope: head_dim " +
                                      std::to_string(layout.head_dim) + " / rotary_dim " +
                                      std::to_string(layout.rotary_dim) + " not supported");
  }
  if (n_tokens == 0) return;
  const int total_heads = layout.num_heads + 2 * layout.num_kv_heads;
  const dim3 grid(static_cast<unsigned>(n_tokens),
                  static_cast<unsigned>((total_heads + kQkvWarps - 1) / kQkvWarps));
  if (type == ActType::kBF16) {
    using T = __nv_bfloat16;
    launch_dependent("qkv_norm_rope", qkv_norm_rope_kernel<T>, grid, 32 * kQkvWarps, 0, stream,
                     static_cast<const T*>(qkv), positions, layout, q_norm, k_norm, eps, rope_cos,
                     rope_sin, static_cast<T*>(q), kv);
  } else {
    using T = __half;
    launch_dependent("qkv_norm_rope", qkv_norm_rope_kernel<T>, grid, 32 * kQkvWarps, 0, stream,
                     static_cast<const T*>(qkv), positions, layout, q_norm, k_norm, eps, rope_cos,
                     rope_sin, static_cast<T*>(q), kv);
  }
  check_launch("qkv_norm_rope");
}

void silu_mul(const void* gate_up, int32_t n_tokens, int64_t inter, void* out, ActType type,
              cudaStream_t stream) {
  const size_t n = static_cast<size_t>(n_tokens) * static_cast<size_t>(inter);
  if (n == 0) return;
  const int grid = grid_for(n, 256);
  if (type == ActType::kBF16) {
    launch_dependent("silu_mul", silu_mul_kernel<__nv_bfloat16>, grid, 256, 0, stream,
                     static_cast<const __nv_bfloat16*>(gate_up), n_tokens, inter,
                     static_cast<__nv_bfloat16*>(out));
  } else {
    launch_dependent("silu_mul", silu_mul_kernel<__half>, grid, 256, 0, stream,
                     static_cast<const __half*>(gate_up), n_tokens, inter,
                     static_cast<__half*>(out));
  }
  check_launch("silu_mul");
}

}  // namespace autoglm::cuda
