// The GEMV kernels' shared pieces (gemv.cu, gemv_fp8.cu): W streamed past L1, x through the
// read-only cache, 16-bit pairs to fp32 in address order, the warp sum, and the tensor-core
// GEMVs' sum of their warps' D fragments.
// Thread ownership: device functions, no state.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace autoglm::cuda {

constexpr int kChunkElems = 8;  // one 16-byte load of BF16/FP16

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

// Where lane (g, c) of a tensor-core GEMV warp reads: rows g and g + 8 of the block's 16 rows of W
// (from row0; past the end of W its last row, re-read and never stored) and x's row g (row 0 past
// the m rows), each from element 16 c on.
template <typename E>
struct MmaLaneRows {
  const E* wa;
  const E* wb;
  const E* x;
};

template <typename E>
__device__ __forceinline__ MmaLaneRows<E> mma_lane_rows(const E* w, const E* x, int64_t row0,
                                                        int64_t n, int64_t k, int m) {
  const int lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int64_t ra = row0 + g < n ? row0 + g : n - 1;
  const int64_t rb = row0 + g + 8 < n ? row0 + g + 8 : n - 1;
  return {w + ra * k + 16 * c, w + rb * k + 16 * c,
          x + static_cast<int64_t>(g < m ? g : 0) * k + 16 * c};
}

// The end of a tensor-core GEMV block of `Warps` warps, each holding the m16n8 D fragment of the
// block's 16 rows of W (from row0) by up to 8 tokens over its share of K: sums the fragments
// over the warps through `sums` (the block's shared memory). Returns false in threads that
// finish no output; else sets the output's row and token, and its sum over the warps.
template <int Warps>
__device__ __forceinline__ bool sum_mma_fragments(const float (&acc)[4],
                                                  float (&sums)[Warps][32][4], int64_t row0, int m,
                                                  int64_t n, int64_t& row, int& token, float& sum) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
  for (int i = 0; i < 4; ++i) sums[warp][lane][i] = acc[i];
  __syncthreads();
  if (threadIdx.x >= 32 * 4) return false;
  // Thread (q, l): element q of lane l's D fragment: row l / 4 (+ 8 for q >= 2) of the block's
  // 16, column (token) 2 (l % 4) + q % 2.
  const int q = threadIdx.x / 32, l = threadIdx.x % 32;
  row = row0 + l / 4 + (q >= 2 ? 8 : 0);
  token = 2 * (l % 4) + q % 2;
  if (token >= m || row >= n) return false;
  sum = 0.0f;
#pragma unroll
  for (int wi = 0; wi < Warps; ++wi) sum += sums[wi][l][q];
  return true;
}

}  // namespace autoglm::cuda
