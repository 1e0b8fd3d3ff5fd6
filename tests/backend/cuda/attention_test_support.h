// Small host-side helpers for the CUDA attention test (test_cuda_attention.cpp): GPU presence,
// the benchmark switch, bf16/fp16 bit conversions and an owning device buffer. Header-only so
// the test stays one CMake entry.
// Thread ownership: test main thread only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cuda/attention.h"

namespace autoglm::cuda::test {

inline bool has_gpu() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return n > 0;
}

inline bool bench_enabled() {
  const char* env = std::getenv("AUTOGLM_CUDA_BENCH");
  return env != nullptr && std::string(env) == "1";
}

inline void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

inline uint16_t to_bits(float x, ActType type) {
  if (type == ActType::kBF16) return __nv_bfloat16_raw(__float2bfloat16(x)).x;
  return __half_raw(__float2half(x)).x;
}

inline float to_float(uint16_t bits, ActType type) {
  if (type == ActType::kBF16) {
    __nv_bfloat16_raw raw;
    raw.x = bits;
    return __bfloat162float(__nv_bfloat16(raw));
  }
  __half_raw raw;
  raw.x = bits;
  return __half2float(__half(raw));
}

inline uint8_t to_fp8(uint16_t bits, ActType type) {
  return __nv_cvt_float_to_fp8(to_float(bits, type), __NV_SATFINITE, __NV_E4M3);
}

inline float fp8_to_float(uint8_t byte) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(byte, __NV_E4M3)));
}

// A pool of activation-type bits ([slots][row], row = kv_heads * head_dim) as the FP8 pool the
// kernels read (attention.h): E4M3 bytes, K per block and head with its rows' chunks permuted
// (fp8_k_offset), V (`transposed`) as [block][row][block_size]; NaN bits stay NaN (0x7F).
inline std::vector<uint8_t> fp8_pool(const std::vector<uint16_t>& pool, ActType type, int64_t row,
                                     int head_dim, int block_size, bool transposed) {
  std::vector<uint8_t> out(pool.size());
  for (size_t i = 0; i < pool.size(); ++i) {
    const float x = to_float(pool[i], type);
    const uint8_t byte = std::isnan(x) ? uint8_t{0x7F} : to_fp8(pool[i], type);
    const int64_t slot = static_cast<int64_t>(i) / row;
    const int64_t elem = static_cast<int64_t>(i) % row;
    const int64_t block = slot / block_size;
    const int in_block = static_cast<int>(slot % block_size);
    const int head = static_cast<int>(elem / head_dim);
    out[transposed ? (block * row + elem) * block_size + in_block
                   : fp8_k_offset(block, head, in_block, static_cast<int>(elem % head_dim),
                                  static_cast<int>(row / head_dim), head_dim, block_size)] = byte;
  }
  return out;
}

// The values an FP8 pool holds, back in activation-type bits (exact), NaN kept.
inline std::vector<uint16_t> fp8_values(const std::vector<uint16_t>& pool, ActType type) {
  std::vector<uint16_t> out(pool.size());
  for (size_t i = 0; i < pool.size(); ++i) {
    const float x = to_float(pool[i], type);
    out[i] = std::isnan(x) ? pool[i] : to_bits(fp8_to_float(to_fp8(pool[i], type)), type);
  }
  return out;
}

inline std::vector<float> to_floats(const std::vector<uint16_t>& bits, ActType type) {
  std::vector<float> out(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) out[i] = to_float(bits[i], type);
  return out;
}

// Owns one device allocation; uploads from / downloads to host vectors.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    cuda_check(cudaMalloc(&ptr_, std::max<size_t>(bytes, 1)), "cudaMalloc");
  }
  template <typename T>
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size() * sizeof(T)) {
    cuda_check(cudaMemcpy(ptr_, host.data(), bytes_, cudaMemcpyHostToDevice), "upload");
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { (void)cudaFree(ptr_); }
  void* data() const { return ptr_; }
  template <typename T>
  const T* as() const {
    return static_cast<const T*>(ptr_);
  }
  void fill_bytes(int value) { cuda_check(cudaMemset(ptr_, value, bytes_), "cudaMemset"); }
  void poison() { fill_bytes(0xFF); }  // NaN in fp32, bf16 and fp16
  template <typename T>
  std::vector<T> download() const {
    std::vector<T> host(bytes_ / sizeof(T));
    cuda_check(cudaMemcpy(host.data(), ptr_, bytes_, cudaMemcpyDeviceToHost), "download");
    return host;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

inline std::string describe(int heads, int kv_heads, int head_dim, int block_size) {
  return "heads " + std::to_string(heads) + " kv_heads " + std::to_string(kv_heads) + " head_dim " +
         std::to_string(head_dim) + " block_size " + std::to_string(block_size);
}

}  // namespace autoglm::cuda::test
