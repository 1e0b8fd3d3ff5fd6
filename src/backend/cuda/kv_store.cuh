// Writing one element of a token's K or V row into the KV pool, in the pool's format: the
// activation type at row kv_row, or FP8 E4M3 (saturating, one rounding from fp32) with V
// transposed within its block (PagedKvLayer, attention.h). Shared by the two kernels that write
// the pool, qkv_norm_rope (kernels.cu) and the batch-1 QKV GEMV's epilogue (gemv.cu).
// Thread ownership: device functions, no state.
#pragma once

#include <cstdint>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_types.cuh"
#include "backend/cuda/element_convert.cuh"
#include "backend/cuda/kernels.h"

namespace autoglm::cuda {

// An FP8 pool's byte for a K or V value: E4M3, saturating, one rounding from fp32.
__device__ __forceinline__ __nv_fp8_storage_t to_kv_e4m3(float value) {
  return __nv_cvt_float_to_fp8(value, __NV_SATFINITE, __NV_E4M3);
}

// The byte of an FP8 pool's K or V that holds element `elem` = head * head_dim + d of pool row
// kv_row (attention.h's layout).
__device__ __forceinline__ int64_t fp8_kv_offset(const KvDestination& kv, bool is_k, int64_t kv_row,
                                                 int64_t kv_dim, int head_dim, int64_t elem) {
  const int64_t block = kv_row / kv.block_size;
  const int slot = static_cast<int>(kv_row - block * kv.block_size);
  if (!is_k) return (block * kv_dim + elem) * kv.block_size + slot;  // [block][kv_dim][bs]
  const int head = static_cast<int>(elem / head_dim);
  return fp8_k_offset(block, head, slot, static_cast<int>(elem - int64_t{head} * head_dim),
                      static_cast<int>(kv_dim / head_dim), head_dim, kv.block_size);
}

// `elem` is head * head_dim + d within the row of kv_dim = num_kv_heads * head_dim elements.
template <typename T>
__device__ __forceinline__ void store_kv_element(const KvDestination& kv, bool is_k, int64_t kv_row,
                                                 int64_t kv_dim, int head_dim, int64_t elem,
                                                 float value) {
  void* base = is_k ? kv.k : kv.v;
  if (!kv.fp8) {
    static_cast<T*>(base)[kv_row * kv_dim + elem] = from_f32<T>(value);
    return;
  }
  static_cast<__nv_fp8_storage_t*>(base)[fp8_kv_offset(kv, is_k, kv_row, kv_dim, head_dim, elem)] =
      to_kv_e4m3(value);
}

}  // namespace autoglm::cuda
