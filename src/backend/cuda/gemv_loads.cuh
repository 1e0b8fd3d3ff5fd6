// The GEMV kernels' loads and unpacking (gemv.cu, gemv_fp8.cu): W streamed past L1, x through
// the read-only cache, 16-bit pairs to fp32 in address order, and the warp sum.
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

}  // namespace autoglm::cuda
