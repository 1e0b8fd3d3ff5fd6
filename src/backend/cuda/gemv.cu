// See gemv.h. Work split: a block of 256 threads owns kRowsPerBlock consecutive rows of W, and
// its threads sweep K together in 16-byte chunks (8 elements), thread t taking chunks t,
// t + 256, ... of every owned row, so that each warp load is 512 contiguous bytes of one row.
// The chunk of x at the same position is loaded once per chunk and reused for all the owned rows,
// which keeps x's traffic (from L1: it is small and every block reads all of it) at m / 4 of W's.
// W is read with L1::no_allocate so that streaming it does not evict x. Each thread issues
// kRowsPerBlock * kChunksInFlight 16-byte loads of W before it uses any of them. At the end,
// every (x row, W row) partial sum is reduced over the warp by shuffles, then over the 8 warps in
// shared memory, and one thread per output adds the bias and stores it.
// The grid has one block per kRowsPerBlock rows: 1,024 blocks for a 4096-row matrix, ~7.8 per
// SM of an H200's 132, so every SM has several blocks' loads in flight from the start and the
// last wave is short (a block lives for about one or two memory round trips at K = 4096).
// Thread ownership: see gemv.h.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <limits>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/element_convert.cuh"
#include "backend/cuda/gemv.h"
#include "backend/cuda/pdl.cuh"
#include "core/error.h"

namespace autoglm::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kRowsPerBlock = 4;
constexpr int kChunksInFlight = 2;  // per row and thread, loaded before the first is used
constexpr int kChunkElems = 8;      // one 16-byte load of BF16/FP16

// Two packed 16-bit values to fp32; the low half is the element at the lower address. x and W
// are unpacked the same way, so products always pair elements of the same index.
template <typename T>
__device__ __forceinline__ float2 unpack2(uint32_t v);
template <>
__device__ __forceinline__ float2 unpack2<__nv_bfloat16>(uint32_t v) {
  return make_float2(__uint_as_float(v << 16), __uint_as_float(v & 0xffff0000u));
}
template <>
__device__ __forceinline__ float2 unpack2<__half>(uint32_t v) {
  return make_float2(__half2float(__ushort_as_half(static_cast<unsigned short>(v & 0xffffu))),
                     __half2float(__ushort_as_half(static_cast<unsigned short>(v >> 16))));
}

template <typename T>
__device__ __forceinline__ void unpack8(const uint4& v, float (&out)[kChunkElems]) {
  const float2 a = unpack2<T>(v.x), b = unpack2<T>(v.y), c = unpack2<T>(v.z), d = unpack2<T>(v.w);
  out[0] = a.x, out[1] = a.y, out[2] = b.x, out[3] = b.y;
  out[4] = c.x, out[5] = c.y, out[6] = d.x, out[7] = d.y;
}

// W: read once, so it bypasses L1 (keeping L1 for x). W is never written during the kernel.
// volatile keeps the loads where they are written (all issued before the first use).
__device__ __forceinline__ uint4 load_streaming(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// x: read by every block, so it goes through the read-only L1 path.
__device__ __forceinline__ uint4 load_cached(const void* p) {
  return __ldg(static_cast<const uint4*>(p));
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

template <typename T, typename OutT>
struct GemvArgs {
  const T* x;
  const T* w;
  const OutT* bias;  // nullptr: no bias
  OutT* y;
  int64_t n;
  int64_t k;
  bool vectorised;  // k % 8 == 0 and x, w 16-byte aligned
};

template <int M>
using Partials = float[M][kRowsPerBlock];  // [x row][owned W row]

// The 16-byte path over chunks [0, chunks) of each row (chunks = k / 8).
template <typename T, int M>
__device__ __forceinline__ void accumulate_vectorised(const T* x, const T* const* rows, int64_t k,
                                                      Partials<M>& acc) {
  const int64_t chunks = k / kChunkElems;
  for (int64_t base = threadIdx.x; base < chunks; base += kThreads * kChunksInFlight) {
    // Every load is issued, unconditionally, before any is used: a chunk past the end re-reads
    // the last one (valid memory, an L2 hit) and is skipped below. Unconditional volatile loads
    // cannot be sunk into the conditional blocks that use them, which would serialise them.
    uint4 wv[kChunksInFlight][kRowsPerBlock];
#pragma unroll
    for (int u = 0; u < kChunksInFlight; ++u) {
      const int64_t c = base + u * kThreads < chunks ? base + u * kThreads : chunks - 1;
#pragma unroll
      for (int r = 0; r < kRowsPerBlock; ++r) wv[u][r] = load_streaming(rows[r] + c * kChunkElems);
    }
#pragma unroll
    for (int u = 0; u < kChunksInFlight; ++u) {
      const int64_t c = base + u * kThreads;
      if (c >= chunks) continue;
      float wf[kRowsPerBlock][kChunkElems];
#pragma unroll
      for (int r = 0; r < kRowsPerBlock; ++r) unpack8<T>(wv[u][r], wf[r]);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        float xf[kChunkElems];
        unpack8<T>(load_cached(x + m * k + c * kChunkElems), xf);
#pragma unroll
        for (int r = 0; r < kRowsPerBlock; ++r) {
#pragma unroll
          for (int i = 0; i < kChunkElems; ++i) acc[m][r] = fmaf(xf[i], wf[r][i], acc[m][r]);
        }
      }
    }
  }
}

// The element-wise path over [begin, k): K not a multiple of 8, or unaligned x/W.
template <typename T, int M>
__device__ __forceinline__ void accumulate_scalar(const T* x, const T* const* rows, int64_t k,
                                                  int64_t begin, Partials<M>& acc) {
  for (int64_t i = begin + threadIdx.x; i < k; i += kThreads) {
    float wf[kRowsPerBlock];
#pragma unroll
    for (int r = 0; r < kRowsPerBlock; ++r) wf[r] = to_f32(rows[r][i]);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const float xv = to_f32(x[m * k + i]);
#pragma unroll
      for (int r = 0; r < kRowsPerBlock; ++r) acc[m][r] = fmaf(xv, wf[r], acc[m][r]);
    }
  }
}

template <typename T, typename OutT, int M>
__global__ void __launch_bounds__(kThreads, 2) gemv_kernel(GemvArgs<T, OutT> a) {
  wait_for_previous_kernel();
  static_assert(M * kRowsPerBlock <= kThreads, "one thread per output in the final step");
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock;
  // Rows past the end of W re-read its last row (valid memory); their sums are never stored.
  const T* rows[kRowsPerBlock];
#pragma unroll
  for (int r = 0; r < kRowsPerBlock; ++r) {
    rows[r] = a.w + (row0 + r < a.n ? row0 + r : a.n - 1) * a.k;
  }
  Partials<M> acc;
#pragma unroll
  for (int m = 0; m < M; ++m) {
#pragma unroll
    for (int r = 0; r < kRowsPerBlock; ++r) acc[m][r] = 0.0f;
  }
  int64_t scalar_begin = 0;
  if (a.vectorised) {
    accumulate_vectorised<T, M>(a.x, rows, a.k, acc);
    scalar_begin = a.k / kChunkElems * kChunkElems;  // == k today; kept general
  }
  accumulate_scalar<T, M>(a.x, rows, a.k, scalar_begin, acc);

  __shared__ float partial[kWarps][M * kRowsPerBlock];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
#pragma unroll
  for (int m = 0; m < M; ++m) {
#pragma unroll
    for (int r = 0; r < kRowsPerBlock; ++r) {
      const float s = warp_sum(acc[m][r]);
      if (lane == 0) partial[warp][m * kRowsPerBlock + r] = s;
    }
  }
  __syncthreads();
  const int slot = threadIdx.x;  // one output (x row m, W row row0 + r) per thread
  if (slot >= M * kRowsPerBlock) return;
  const int m = slot / kRowsPerBlock;
  const int64_t row = row0 + slot % kRowsPerBlock;
  if (row >= a.n) return;
  float sum = 0.0f;
#pragma unroll
  for (int wi = 0; wi < kWarps; ++wi) sum += partial[wi][slot];
  if (a.bias != nullptr) sum += to_f32(a.bias[row]);
  a.y[m * a.n + row] = from_f32<OutT>(sum);
}

// Picks the instantiation for m among M, M + 1, ..., kGemvMaxRows (the caller checked the range).
template <typename T, typename OutT, int M = 1>
void launch_rows(const GemvArgs<T, OutT>& a, int64_t m, unsigned blocks, cudaStream_t stream) {
  if (m == M) {
    launch_dependent("gemv", gemv_kernel<T, OutT, M>, blocks, kThreads, 0, stream, a);
    return;
  }
  if constexpr (M < kGemvMaxRows) launch_rows<T, OutT, M + 1>(a, m, blocks, stream);
}

template <typename T, typename OutT>
void launch_typed(const void* x, const void* w, const void* bias, void* y, int64_t m, int64_t n,
                  int64_t k, bool vectorised, unsigned blocks, cudaStream_t stream) {
  const GemvArgs<T, OutT> a{static_cast<const T*>(x),
                            static_cast<const T*>(w),
                            static_cast<const OutT*>(bias),
                            static_cast<OutT*>(y),
                            n,
                            k,
                            vectorised};
  launch_rows<T, OutT>(a, m, blocks, stream);
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

}  // namespace

void gemv(const void* x, const void* w, const void* bias, void* y, int64_t m, int64_t n, int64_t k,
          ActType type, bool out_f32, cudaStream_t stream) {
  if (m < 0 || m > kGemvMaxRows || n < 0 || k < 0) {
    fail(ErrorCode::kInvalidArgument, "CUDA gemv: m " + std::to_string(m) + ", n " +
                                          std::to_string(n) + ", k " + std::to_string(k) +
                                          " (m must be 0.." + std::to_string(kGemvMaxRows) + ")");
  }
  if (m == 0 || n == 0) return;
  const int64_t blocks = (n + kRowsPerBlock - 1) / kRowsPerBlock;
  if (blocks > std::numeric_limits<int32_t>::max()) {
    fail(ErrorCode::kUnsupported, "CUDA gemv: " + std::to_string(n) + " rows is too many");
  }
  const bool vectorised = k % kChunkElems == 0 && aligned16(x) && aligned16(w);
  const auto grid = static_cast<unsigned>(blocks);
  if (type == ActType::kBF16) {
    if (out_f32) {
      launch_typed<__nv_bfloat16, float>(x, w, bias, y, m, n, k, vectorised, grid, stream);
    } else {
      launch_typed<__nv_bfloat16, __nv_bfloat16>(x, w, bias, y, m, n, k, vectorised, grid, stream);
    }
  } else {
    if (out_f32) {
      launch_typed<__half, float>(x, w, bias, y, m, n, k, vectorised, grid, stream);
    } else {
      launch_typed<__half, __half>(x, w, bias, y, m, n, k, vectorised, grid, stream);
    }
  }
  check_launch("gemv");
}

}  // namespace autoglm::cuda
