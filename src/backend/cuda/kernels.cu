// See kernels.h. Kernels are templates over the storage type (BF16 or FP16) with fp32 math; one
// switch per launcher picks the instantiation, so this file instantiates each kernel twice.
// Row kernels use one block per row and a block-wide sum. The norm, embedding and SwiGLU kernels
// move whole vectors (up to 16 bytes) per access and issue all of a thread's loads before the
// first use, so a batch-1 launch costs one memory round trip instead of one per element or per
// pass, and a prefill launch streams near copy bandwidth; widths that do not divide the row
// fall back to one element per access with the same code.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/element_convert.cuh"
#include "backend/cuda/elementwise_math.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/kv_store.cuh"
#include "backend/cuda/pdl.cuh"
#include "core/error.h"

namespace autoglm::cuda {
namespace {

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

int grid_for(size_t n, int threads) {
  const size_t blocks = (n + threads - 1) / threads;
  return static_cast<int>(blocks < 65535 * 8 ? blocks : 65535 * 8);
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

// Block (token, chunk of kEmbedThreads * W elements); each thread copies W elements with one
// load and one store, so a one-token gather is spread over several SMs and is one round trip
// after the id (not a loop of dependent 2-byte loads in one block).
constexpr int kEmbedThreads = 128;

// The embedding row token t reads (embedding_gather's contract in kernels.h).
__device__ __forceinline__ int64_t embedding_row(const EmbeddingSource& e, int64_t t) {
  int64_t id = e.ids[t];
  if (id < 0) id = e.previous[-1 - id].token;
  return id < 0 || id >= e.vocab ? 0 : id;
}

template <typename T, int W>
__global__ void embedding_kernel(EmbeddingSource e, int64_t hidden, float* x) {
  wait_for_previous_kernel();
  const int64_t t = blockIdx.x;
  const int64_t i = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * W;
  if (i >= hidden) return;  // hidden is a multiple of W
  float v[W];
  load_f32<W>(static_cast<const T*>(e.table) + embedding_row(e, t) * hidden + i, v);
  store_f32<W>(x + t * hidden + i, v);
}

// Reduces v over the block (blockDim.x a multiple of 32, <= 1024) with one barrier: each warp
// posts its result in `partial`, then every warp reduces all posts, in the same order, so every
// thread gets the same bits. `partial` must serve this one reduction only (no barrier protects
// its reuse). Empty posts count as 0 (the identity of both reductions used: sums, and maxima
// of magnitudes).
template <float (*WarpReduce)(float)>
__device__ __forceinline__ float block_reduce_once(float v, float* partial) {
  v = WarpReduce(v);
  const int lane = threadIdx.x % 32;
  if (lane == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  return WarpReduce(lane < static_cast<int>(blockDim.x / 32) ? partial[lane] : 0.0f);
}

__device__ __forceinline__ float block_sum_once(float v, float* partial) {
  return block_reduce_once<warp_sum>(v, partial);
}

// One row's FP8 E4M3 quantization (quantize_rows_e4m3, kernels.h) from its largest magnitude:
// the factor its values are multiplied by and the scale stored with it. IEEE divisions, so that
// a host reference computes the same bits.
struct E4m3Row {
  float inv, scale;
  template <int W>
  __device__ void store(const float (&v)[W], __nv_fp8_storage_t* out) const {
    Pack<__nv_fp8_storage_t, W> q;
#pragma unroll
    for (int k = 0; k < W; ++k)
      q.v[k] = __nv_cvt_float_to_fp8(v[k] * inv, __NV_SATFINITE, __NV_E4M3);
    *reinterpret_cast<Pack<__nv_fp8_storage_t, W>*>(out) = q;
  }
};

__device__ __forceinline__ E4m3Row e4m3_row(float amax) {
  return amax > 0.0f ? E4m3Row{__fdiv_rn(kE4m3Max, amax), __fdiv_rn(amax, kE4m3Max)}
                     : E4m3Row{1.0f, 1.0f};
}

// quantize_rows_e4m3: one block per row, which it reads twice (its largest magnitude, then the
// conversion: the second pass from L1/L2), W elements per access.
constexpr int kQuantThreads = 256;

template <typename T, int W>
__global__ void __launch_bounds__(kQuantThreads)
    quantize_rows_kernel(const T* src, int64_t cols, __nv_fp8_storage_t* dst, float* scales) {
  wait_for_previous_kernel();
  __shared__ float partial[kQuantThreads / 32];
  const T* row = src + static_cast<int64_t>(blockIdx.x) * cols;
  __nv_fp8_storage_t* out = dst + static_cast<int64_t>(blockIdx.x) * cols;
  float amax = 0.0f;
  for (int64_t i = int64_t{threadIdx.x} * W; i < cols; i += int64_t{kQuantThreads} * W) {
    float v[W];
    load_f32<W>(row + i, v);
#pragma unroll
    for (int k = 0; k < W; ++k) amax = fmaxf(amax, fabsf(v[k]));
  }
  const E4m3Row q = e4m3_row(block_reduce_once<warp_max>(amax, partial));
  for (int64_t i = int64_t{threadIdx.x} * W; i < cols; i += int64_t{kQuantThreads} * W) {
    float v[W];
    load_f32<W>(row + i, v);
    q.store(v, out + i);
  }
  if (threadIdx.x == 0) scales[blockIdx.x] = q.scale;
}

// The row norms (residual_add_norm, gather_rms_norm): one block per row; thread j owns the N
// vectors of W elements that start at elements (j + n * blockDim.x) * W. Every load of the
// row (x, delta, and the weights when they fit in registers) is issued before the first
// reduction, so a batch-1 launch waits for memory once; the two reductions take one barrier
// each. With `rows`, block b reads row rows[b] of x (gather_rms_norm: no delta, x unchanged).
// With an embedding source (embedding_norm: the step's first norm), block b reads token b's
// embedding row instead of x, and writes it to x: one launch fewer a step.
// The weights are constant, so they are loaded before the wait. With `x_before_wait` x is too:
// the caller sets it only when the previous kernel lets this one launch after its own wait
// (allow_next_kernel, pdl.cuh) and does not write x, so x's last writer has completed by then.
// After the wait a batch-1 norm then loads only the delta the GEMV has just left in L2, where
// the weights and x, evicted by the weight stream, would have cost a DRAM round trip.
// A batch-1 norm lets the next kernel (the next GEMV) launch at its start (NormTrigger), so that
// the GEMV's blocks take the slots of the previous GEMV's exiting blocks and stream their first
// weights while that GEMV drains and this norm runs: the weight stream does not stop for the
// norm (H200, 9B batch-1 step: 4.566 against 4.619 ms when it triggered once its loads were
// issued). Safe as the GEMV reads only weights and batch arrays before its own wait.
// N * W elements per thread: 4 (N 1, W 4) keeps a 4,096-wide row on 1,024 threads for batch-1
// latency; 8 (N 2) holds up to ~2 rows an SM in one wave with the weights still in registers
// (a decode step of 256 rows: one round of loads, where the 16 below take three, the weights
// loaded after each reduction); 16 (N 4) makes 256-thread blocks for many rows (prefill),
// several blocks per SM in flight.
constexpr int kNormMaxThreads = 1024;
constexpr int kNormMaxPerThread = 16;   // rows up to 16,384 wide
constexpr int32_t kNormMidRows = 129;   // from here on, rows take two blocks an SM
constexpr int32_t kNormManyRows = 512;  // from here on, rows favour throughput over latency

// When a norm lets the next kernel launch (allow_next_kernel, pdl.cuh).
enum class NormTrigger : int8_t {
  kNone,        // at exit (more than one row)
  kAtStart,     // one row: before anything else
  kAfterLoads,  // one row with AUTOGLM_CUDA_NORM_EARLY_TRIGGER=0: once its loads are issued
};

template <typename T, int W, int N, bool kFp8Out>
__global__ void __launch_bounds__(kNormMaxThreads)
    norm_rows_kernel(float* x, const int32_t* rows, EmbeddingSource embed, const T* delta,
                     const float* delta_parts, int32_t n_parts, const float* post_w,
                     const float* norm_w, T* out, __nv_fp8_storage_t* out8, float* out8_scales,
                     int64_t hidden, float eps, NormTrigger trigger, bool x_before_wait) {
  if (trigger == NormTrigger::kAtStart) allow_next_kernel();
  // Weights in registers too while that stays within the 64 registers of 1,024 threads.
  constexpr bool kPreloadWeights = N * W <= 8;
  __shared__ float partial[kFp8Out ? 3 : 2][32];
  const int width = static_cast<int>(hidden);  // <= kNormMaxThreads * kNormMaxPerThread
  const T* dr = delta != nullptr ? delta + blockIdx.x * hidden : nullptr;
  // Delta::parts: part p of this row at p * (rows * hidden) past the first.
  const float* parts_row = delta_parts != nullptr ? delta_parts + blockIdx.x * hidden : nullptr;
  const int64_t part_stride = static_cast<int64_t>(gridDim.x) * hidden;
  const bool has_delta = dr != nullptr || parts_row != nullptr;
  const bool writes_x = has_delta || embed.table != nullptr;
  const float* pw_row = has_delta ? post_w : nullptr;
  float xv[N][W], dv[N][W], pw[kPreloadWeights ? N : 1][W], nw[kPreloadWeights ? N : 1][W];
  const auto element = [&](int n) {  // width is a multiple of W
    return (static_cast<int>(threadIdx.x) + n * static_cast<int>(blockDim.x)) * W;
  };
  const auto load_x = [&](const float* xr) {
#pragma unroll
    for (int n = 0; n < N; ++n) {
      if (element(n) < width) load_f32<W>(xr + element(n), xv[n]);
    }
  };
#pragma unroll
  for (int n = 0; n < N; ++n) {
#pragma unroll
    for (int k = 0; k < W; ++k) xv[n][k] = dv[n][k] = 0.0f;
    if constexpr (kPreloadWeights) {
      if (element(n) >= width) continue;
      if (pw_row != nullptr) load_f32<W>(pw_row + element(n), pw[n]);
      if (norm_w != nullptr) load_f32<W>(norm_w + element(n), nw[n]);
    }
  }
  if (x_before_wait) load_x(x + blockIdx.x * hidden);  // the caller passes no `rows` then
  wait_for_previous_kernel();
  const int64_t src_row = rows != nullptr ? rows[blockIdx.x] : blockIdx.x;
  float* xr = x + src_row * hidden;
  if (embed.table != nullptr) {
    const T* er = static_cast<const T*>(embed.table) + embedding_row(embed, blockIdx.x) * hidden;
#pragma unroll
    for (int n = 0; n < N; ++n) {
      if (element(n) < width) load_f32<W>(er + element(n), xv[n]);
    }
  } else if (!x_before_wait) {
    load_x(xr);
  }
#pragma unroll
  for (int n = 0; n < N; ++n) {
    if (element(n) >= width) continue;
    if (dr != nullptr) load_f32<W>(dr + element(n), dv[n]);
    if (parts_row == nullptr) continue;
    for (int32_t p = 0; p < n_parts; ++p) {
      float part[W];
      load_f32<W>(parts_row + p * part_stride + element(n), part);
#pragma unroll
      for (int k = 0; k < W; ++k) dv[n][k] += part[k];
    }
    // Rounded as a projection's output in T would be, so that a step's rows see the same delta
    // whichever path (GEMV, GEMM, GEMM in parts) their batch size took.
#pragma unroll
    for (int k = 0; k < W; ++k) dv[n][k] = to_f32(from_f32<T>(dv[n][k]));
  }
  if (trigger == NormTrigger::kAfterLoads) allow_next_kernel();
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
    if (has_delta) {
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
    }
    if (writes_x) store_f32<W>(xr + i, xv[n]);
#pragma unroll
    for (int k = 0; k < W; ++k) ss += xv[n][k] * xv[n][k];
  }
  if (norm_w == nullptr) return;
  const float inv = rsqrtf(block_sum_once(ss, partial[1]) / static_cast<float>(hidden) + eps);
  T* orow = out + blockIdx.x * hidden;
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
    if constexpr (kFp8Out) {
#pragma unroll
      for (int k = 0; k < W; ++k) xv[n][k] = to_f32(from_f32<T>(o[k]));  // out as stored
    }
  }
  // FP8 rows of `out` exactly as quantize_rows_e4m3 would make them from it (a separate
  // instantiation, so that the norms without it keep their registers).
  if constexpr (kFp8Out) {
    float amax = 0.0f;
#pragma unroll
    for (int n = 0; n < N; ++n) {
#pragma unroll
      for (int k = 0; k < W; ++k) amax = fmaxf(amax, fabsf(xv[n][k]));  // 0 past the row's end
    }
    const E4m3Row q = e4m3_row(block_reduce_once<warp_max>(amax, partial[2]));
#pragma unroll
    for (int n = 0; n < N; ++n) {
      const int i = (static_cast<int>(threadIdx.x) + n * static_cast<int>(blockDim.x)) * W;
      if (i < width) q.store(xv[n], out8 + blockIdx.x * hidden + i);
    }
    if (threadIdx.x == 0) out8_scales[blockIdx.x] = q.scale;
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
  const int64_t kv_dim = int64_t{lay.num_kv_heads} * hd;
  if (!is_q && !is_k) {  // v: a copy (T -> fp32 -> T is exact; an FP8 pool rounds once)
    const int64_t head0 = int64_t{h - lay.num_heads - lay.num_kv_heads} * hd;
    for (int d = lane; d < hd; d += 32) {
      store_kv_element<T>(kv, false, kv_row, kv_dim, hd, head0 + d, to_f32(src[d]));
    }
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
    b[i0] = rotate_pair(a, c, cos_row[j], sin_row[j], true);
    b[i1] = rotate_pair(c, a, cos_row[j], sin_row[j], false);
  }
  __syncwarp();
  if (is_q) {
    T* dst = q + (static_cast<int64_t>(t) * lay.num_heads + h) * hd;
    for (int d = lane; d < hd; d += 32) dst[d] = from_f32<T>(b[d]);
  } else {
    const int64_t head0 = int64_t{h - lay.num_heads} * hd;
    for (int d = lane; d < hd; d += 32)
      store_kv_element<T>(kv, true, kv_row, kv_dim, hd, head0 + d, b[d]);
  }
}

// E consecutive elements of one token's k or v head, [elem0, elem0 + E), into their KV
// destination: one vector store, or with an FP8 pool one packed store of the K row's bytes (V is
// transposed there, so its bytes go one by one).
template <typename T, int E>
__device__ __forceinline__ void store_kv_run(const KvDestination& kv, bool is_k, int64_t kv_row,
                                             int64_t kv_dim, int64_t elem0, const float (&v)[E]) {
  if (!kv.fp8) {
    store_f32<E>(static_cast<T*>(is_k ? kv.k : kv.v) + kv_row * kv_dim + elem0, v);
    return;
  }
  if (!is_k) {
#pragma unroll
    for (int k = 0; k < E; ++k) {
      store_kv_element<T>(kv, false, kv_row, kv_dim, 32 * E, elem0 + k, v[k]);
    }
    return;
  }
  static_assert(E == 2 || E == 4, "two or four bytes a store");
  uint32_t bytes = 0;
#pragma unroll
  for (int k = 0; k < E; ++k) {
    bytes |= static_cast<uint32_t>(to_kv_e4m3(v[k])) << (8 * k);
  }
  uint8_t* at =
      static_cast<uint8_t*>(kv.k) + fp8_kv_offset(kv, true, kv_row, kv_dim, 32 * E, elem0);
  if constexpr (E == 4) {
    *reinterpret_cast<uint32_t*>(at) = bytes;
  } else {
    *reinterpret_cast<uint16_t*>(at) = static_cast<uint16_t>(bytes);
  }
}

// qkv_norm_rope_kernel for head_dim 32 * E: lane l holds elements [E l, E l + E) of its warp's
// head in registers, moved with one vector load and one store, where the general kernel moved
// one element per access through shared memory (a 1,024-token step of the 9B shape: 15.6 us,
// 1.2 TB/s). The q/k norm is a warp sum; a rotary pair sits within a lane (GLM's adjacent pairs)
// or in the lane half / E away (NeoX halves; the caller checks that half is a multiple of E).
template <typename T, int E>
__global__ void qkv_norm_rope_vec_kernel(const T* qkv, const int32_t* positions, QkvLayout lay,
                                         const float* q_norm, const float* k_norm, float eps,
                                         const float* rope_cos, const float* rope_sin, T* q,
                                         KvDestination kv) {
  constexpr int kHeadDim = 32 * E;
  wait_for_previous_kernel();
  const int t = blockIdx.x;
  const int lane = threadIdx.x % 32;
  const int h = blockIdx.y * kQkvWarps + static_cast<int>(threadIdx.x / 32);
  const int total_heads = lay.num_heads + 2 * lay.num_kv_heads;
  if (h >= total_heads) return;  // the whole warp: h is the warp's
  const bool is_q = h < lay.num_heads;
  const bool is_k = !is_q && h < lay.num_heads + lay.num_kv_heads;
  const int64_t kv_row = kv.slots != nullptr ? kv.slots[t] : t;
  if (!is_q && kv_row < 0) return;  // a padding token: no KV slot
  const int i0 = lane * E;
  float v[E];
  load_f32<E>(qkv + (static_cast<int64_t>(t) * total_heads + h) * kHeadDim + i0, v);
  const int64_t kv_dim = int64_t{lay.num_kv_heads} * kHeadDim;
  if (!is_q && !is_k) {
    store_kv_run<T, E>(kv, false, kv_row, kv_dim,
                       int64_t{h - lay.num_heads - lay.num_kv_heads} * kHeadDim + i0, v);
    return;
  }
  if (const float* norm_w = is_q ? q_norm : k_norm; norm_w != nullptr) {
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < E; ++k) ss += v[k] * v[k];
    const float inv = rsqrtf(warp_sum(ss) / static_cast<float>(kHeadDim) + eps);
    float w[E];
    load_f32<E>(norm_w + i0, w);
#pragma unroll
    for (int k = 0; k < E; ++k) v[k] = w[k] * (v[k] * inv);
  }
  const int half = lay.rotary_dim / 2;
  const int64_t rope_row = static_cast<int64_t>(positions[t]) * half;
  if (lay.interleaved) {
#pragma unroll
    for (int k = 0; k < E; k += 2) {
      const int j = (i0 + k) / 2;
      if (j >= half) continue;
      const float c = rope_cos[rope_row + j], s = rope_sin[rope_row + j];
      const float a = v[k], b = v[k + 1];
      v[k] = rotate_pair(a, b, c, s, true);
      v[k + 1] = rotate_pair(b, a, c, s, false);
    }
  } else {
    const bool rotates = i0 < lay.rotary_dim;
    const bool first = i0 < half;
    const int partner = rotates ? (first ? lane + half / E : lane - half / E) : lane;
    float other[E];
#pragma unroll
    for (int k = 0; k < E; ++k) other[k] = __shfl_sync(0xffffffffu, v[k], partner);
    if (rotates) {
      const int j0 = first ? i0 : i0 - half;
#pragma unroll
      for (int k = 0; k < E; ++k) {
        v[k] = rotate_pair(v[k], other[k], rope_cos[rope_row + j0 + k], rope_sin[rope_row + j0 + k],
                           first);
      }
    }
  }
  if (is_q) {
    store_f32<E>(q + (static_cast<int64_t>(t) * lay.num_heads + h) * kHeadDim + i0, v);
  } else {
    store_kv_run<T, E>(kv, true, kv_row, kv_dim, int64_t{h - lay.num_heads} * kHeadDim + i0, v);
  }
}

// Block (chunk of kSiluThreads * W columns, token): each thread reads W gate and W up values
// with two vector loads and writes W outputs with one store; no per-element division to find
// the token.
constexpr int kSiluThreads = 256;

template <typename T, int W>
__global__ void silu_mul_kernel(const T* gate_up, int32_t n_tokens, int64_t inter, T* out) {
  wait_for_previous_kernel();
  const int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * W;
  if (i >= inter) return;  // inter is a multiple of W
  for (int64_t t = blockIdx.y; t < n_tokens; t += gridDim.y) {
    const T* row = gate_up + t * 2 * inter;
    float g[W], u[W], o[W];
    load_f32<W>(row + i, g);
    load_f32<W>(row + inter + i, u);
#pragma unroll
    for (int k = 0; k < W; ++k) o[k] = silu_times(g[k], u[k]);
    store_f32<W>(out + t * inter + i, o);
  }
}

template <typename T, int W>
void launch_embedding(const EmbeddingSource& e, int32_t n_tokens, int64_t hidden, float* x,
                      cudaStream_t stream) {
  const int64_t chunks = (hidden / W + kEmbedThreads - 1) / kEmbedThreads;
  launch_dependent("embedding_gather", embedding_kernel<T, W>,
                   dim3(static_cast<unsigned>(n_tokens), static_cast<unsigned>(chunks)),
                   kEmbedThreads, 0, stream, e, hidden, x);
}

template <typename T>
void embedding_of(const EmbeddingSource& e, int32_t n_tokens, int64_t hidden, float* x,
                  cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  if (hidden % kVec == 0 && aligned_to(e.table, 16) && aligned_to(x, 16)) {
    launch_embedding<T, kVec>(e, n_tokens, hidden, x, stream);
  } else {
    launch_embedding<T, 1>(e, n_tokens, hidden, x, stream);
  }
}

struct NormRowsArgs {
  float* x;
  const int32_t* rows;
  EmbeddingSource embed;
  Delta delta;
  const float* post_w;
  const float* norm_w;
  void* out;
  int32_t n_rows;
  int64_t hidden;
  float eps;
  Fp8Rows out8;
};

template <typename T, int W, int N>
void launch_norm_rows(const char* name, const NormRowsArgs& a, cudaStream_t stream) {
  const int64_t threads = (a.hidden / W + N - 1) / N;
  const int block = static_cast<int>((threads + 31) / 32 * 32);
  // The sublayer's GEMV (one row) triggers after its wait and does not write x: see the kernel.
  const bool late_trigger = late_trigger_at(a.n_rows);
  const bool has_delta = a.delta.act != nullptr || a.delta.parts != nullptr;
  const bool x_before_wait = late_trigger && has_delta && a.rows == nullptr;
  const NormTrigger trigger = norm_trigger_at_start(a.n_rows) ? NormTrigger::kAtStart
                              : late_trigger                  ? NormTrigger::kAfterLoads
                                                              : NormTrigger::kNone;
  const auto kernel =
      a.out8.bytes != nullptr ? norm_rows_kernel<T, W, N, true> : norm_rows_kernel<T, W, N, false>;
  launch_dependent(name, kernel, a.n_rows, block, 0, stream, a.x, a.rows, a.embed,
                   static_cast<const T*>(a.delta.act), a.delta.parts, a.delta.n_parts, a.post_w,
                   a.norm_w, static_cast<T*>(a.out), static_cast<__nv_fp8_storage_t*>(a.out8.bytes),
                   a.out8.scales, a.hidden, a.eps, trigger, x_before_wait);
}

// Elements per thread: the fewest that fit the row in one block when there are few rows (more
// threads, more loads in flight for the one SM that holds a row); twice that from kNormMidRows
// rows (two blocks an SM); 16 (W 4) or 8 (W 1) when there are many (small blocks, many rows per
// SM). W 1 with N 16 (rows over 8,192 wide whose width is not a multiple of 4) spills a few
// registers; no model seen so far has such rows.
template <typename T, int W, int N0>
void dispatch_norm_rows(const char* name, const NormRowsArgs& a, cudaStream_t stream) {
  constexpr int kManyN = W == 4 ? 4 * N0 : 2 * N0;
  const auto fits = [&](int n) {
    return a.hidden <= static_cast<int64_t>(kNormMaxThreads) * n * W;
  };
  if (a.n_rows >= kNormManyRows && fits(kManyN)) {
    launch_norm_rows<T, W, kManyN>(name, a, stream);
  } else if (a.n_rows >= kNormMidRows && fits(2 * N0)) {
    launch_norm_rows<T, W, 2 * N0>(name, a, stream);
  } else if (fits(N0)) {
    launch_norm_rows<T, W, N0>(name, a, stream);
  } else if (fits(2 * N0)) {
    launch_norm_rows<T, W, 2 * N0>(name, a, stream);
  } else {
    launch_norm_rows<T, W, 4 * N0>(name, a, stream);
  }
}

template <typename T>
void norm_rows(const char* name, const NormRowsArgs& a, cudaStream_t stream) {
  if (a.hidden > static_cast<int64_t>(kNormMaxThreads) * kNormMaxPerThread) {
    fail(ErrorCode::kUnsupported, std::string("CUDA ") + name + ": hidden size " +
                                      std::to_string(a.hidden) + " over " +
                                      std::to_string(kNormMaxThreads * kNormMaxPerThread));
  }
  // Four elements per access: 16 bytes of fp32, 8 of the storage type.
  const bool vector = a.hidden % 4 == 0 && aligned_to(a.x, 16) && aligned_to(a.delta.act, 8) &&
                      aligned_to(a.delta.parts, 16) && aligned_to(a.post_w, 16) &&
                      aligned_to(a.norm_w, 16) && aligned_to(a.out, 8) &&
                      aligned_to(a.embed.table, 8) && aligned_to(a.out8.bytes, 4);
  if (vector) {
    dispatch_norm_rows<T, 4, 1>(name, a, stream);
  } else {
    dispatch_norm_rows<T, 1, 4>(name, a, stream);
  }
}

// Checks what every norm launcher shares, then launches in the activation type.
void norm_rows_of(const char* name, const NormRowsArgs& a, ActType type, cudaStream_t stream) {
  if ((a.out8.bytes != nullptr) != (a.out8.scales != nullptr) ||
      (a.out8.bytes != nullptr && a.norm_w == nullptr)) {
    fail(ErrorCode::kInvalidArgument,
         std::string("CUDA ") + name + ": FP8 rows need their scales and a normed output");
  }
  if (type == ActType::kBF16) {
    norm_rows<__nv_bfloat16>(name, a, stream);
  } else {
    norm_rows<__half>(name, a, stream);
  }
  check_launch(name);
}

template <typename T, int W>
void launch_silu_mul(const T* gate_up, int32_t n_tokens, int64_t inter, T* out,
                     cudaStream_t stream) {
  const int64_t chunks = (inter / W + kSiluThreads - 1) / kSiluThreads;
  const unsigned token_blocks = static_cast<unsigned>(n_tokens < 65535 ? n_tokens : 65535);
  launch_dependent("silu_mul", silu_mul_kernel<T, W>,
                   dim3(static_cast<unsigned>(chunks), token_blocks), kSiluThreads, 0, stream,
                   gate_up, n_tokens, inter, out);
}

template <typename T>
void silu_mul_of(const T* gate_up, int32_t n_tokens, int64_t inter, T* out, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  if (inter % kVec == 0 && aligned_to(gate_up, 16) && aligned_to(out, 16)) {
    launch_silu_mul<T, kVec>(gate_up, n_tokens, inter, out, stream);
  } else {
    launch_silu_mul<T, 1>(gate_up, n_tokens, inter, out, stream);
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

void embedding_gather(const EmbeddingSource& e, int32_t n_tokens, ActType type, int64_t hidden,
                      float* x, cudaStream_t stream) {
  if (n_tokens == 0 || hidden == 0) return;
  if (type == ActType::kBF16) {
    embedding_of<__nv_bfloat16>(e, n_tokens, hidden, x, stream);
  } else {
    embedding_of<__half>(e, n_tokens, hidden, x, stream);
  }
  check_launch("embedding_gather");
}

void residual_add_norm(float* x, Delta delta, const float* post_w, const float* norm_w, void* out,
                       int32_t n_rows, int64_t hidden, float eps, ActType type, cudaStream_t stream,
                       Fp8Rows out8) {
  if (n_rows == 0) return;
  if (delta.act != nullptr && delta.parts != nullptr) {
    fail(ErrorCode::kInvalidArgument, "CUDA residual_add_norm: a delta is one array or parts");
  }
  const NormRowsArgs args{x, nullptr, {}, delta, post_w, norm_w, out, n_rows, hidden, eps, out8};
  norm_rows_of("residual_add_norm", args, type, stream);
}

void embedding_norm(const EmbeddingSource& e, int32_t n_tokens, const float* norm_w, float* x,
                    void* out, int64_t hidden, float eps, ActType type, cudaStream_t stream,
                    Fp8Rows out8) {
  if (n_tokens == 0) return;
  if (e.table == nullptr || norm_w == nullptr) {
    fail(ErrorCode::kInvalidArgument, "CUDA embedding_norm: no embedding table or norm weights");
  }
  const NormRowsArgs args{x,   nullptr,  e,      Delta{}, nullptr, norm_w,
                          out, n_tokens, hidden, eps,     out8};
  norm_rows_of("embedding_norm", args, type, stream);
}

void gather_rms_norm(const float* x, const int32_t* rows, int32_t n_rows, int64_t hidden,
                     const float* w, float eps, void* out, ActType type, cudaStream_t stream) {
  if (n_rows == 0) return;
  // Without a delta the kernel only reads x.
  const NormRowsArgs args{
      const_cast<float*>(x), rows, {}, Delta{}, nullptr, w, out, n_rows, hidden, eps, Fp8Rows{}};
  norm_rows_of("gather_rms_norm", args, type, stream);
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
  // The vector kernel: head_dim 64 or 128, whole vectors aligned, NeoX partners whole lanes apart.
  const int per_lane = layout.head_dim / 32;
  const bool vector = (layout.head_dim == 64 || layout.head_dim == 128) &&
                      (layout.interleaved || (layout.rotary_dim / 2) % per_lane == 0) &&
                      aligned_to(qkv, 16) && aligned_to(q, 16) && aligned_to(kv.k, 16) &&
                      aligned_to(kv.v, 16) && aligned_to(q_norm, 16) && aligned_to(k_norm, 16);
  const auto launch = [&](auto element) {
    using T = decltype(element);
    const auto kernel = !vector         ? qkv_norm_rope_kernel<T>
                        : per_lane == 4 ? qkv_norm_rope_vec_kernel<T, 4>
                                        : qkv_norm_rope_vec_kernel<T, 2>;
    launch_dependent("qkv_norm_rope", kernel, grid, 32 * kQkvWarps, 0, stream,
                     static_cast<const T*>(qkv), positions, layout, q_norm, k_norm, eps, rope_cos,
                     rope_sin, static_cast<T*>(q), kv);
  };
  type == ActType::kBF16 ? launch(__nv_bfloat16{}) : launch(__half{});
  check_launch("qkv_norm_rope");
}

void silu_mul(const void* gate_up, int32_t n_tokens, int64_t inter, void* out, ActType type,
              cudaStream_t stream) {
  if (n_tokens == 0 || inter == 0) return;
  if (type == ActType::kBF16) {
    silu_mul_of(static_cast<const __nv_bfloat16*>(gate_up), n_tokens, inter,
                static_cast<__nv_bfloat16*>(out), stream);
  } else {
    silu_mul_of(static_cast<const __half*>(gate_up), n_tokens, inter, static_cast<__half*>(out),
                stream);
  }
  check_launch("silu_mul");
}

void quantize_rows_e4m3(const void* src, DType src_type, int64_t rows, int64_t cols, void* dst,
                        float* scales, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  if (rows > INT32_MAX) {
    fail(ErrorCode::kUnsupported, "CUDA quantize_rows_e4m3: " + std::to_string(rows) + " rows");
  }
  const auto launch = [&](auto element) {
    using T = decltype(element);
    constexpr int kVec = 16 / sizeof(T);
    const bool vector = cols % kVec == 0 && aligned_to(src, 16) && aligned_to(dst, kVec);
    launch_dependent(
        "quantize_rows_e4m3", vector ? quantize_rows_kernel<T, kVec> : quantize_rows_kernel<T, 1>,
        dim3(static_cast<unsigned>(rows)), kQuantThreads, 0, stream, static_cast<const T*>(src),
        cols, static_cast<__nv_fp8_storage_t*>(dst), scales);
  };
  switch (src_type) {
    case DType::kBF16:
      launch(__nv_bfloat16{});
      break;
    case DType::kF16:
      launch(__half{});
      break;
    case DType::kF32:
      launch(float{});
      break;
    default:
      fail(ErrorCode::kUnsupported, "CUDA quantize_rows_e4m3: source type " +
                                        std::string(dtype_name(src_type)) + " not supported");
  }
  check_launch("quantize_rows_e4m3");
}

}  // namespace autoglm::cuda
