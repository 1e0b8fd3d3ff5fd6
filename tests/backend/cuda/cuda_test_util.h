// Helpers for the CUDA tests: skipping cleanly without a GPU, moving arrays to and from the
// device in BF16/FP16/fp32, poisoning outputs with NaN before a kernel runs, and the relative
// error metric the tolerances are stated in.
// Thread ownership: the test (or program) main thread only.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"

namespace autoglm::cuda::test {

// In a TEST body or SetUp: skips with the reason when there is no usable GPU.
#define AUTOGLM_SKIP_WITHOUT_GPU()                                         \
  do {                                                                     \
    std::string autoglm_why;                                               \
    if (!::autoglm::cuda_available(&autoglm_why)) {                        \
      GTEST_SKIP() << "CUDA test skipped, no usable GPU: " << autoglm_why; \
    }                                                                      \
  } while (0)

size_t act_size(ActType t);   // 2
double tolerance(ActType t);  // 1e-2 (BF16), 1e-3 (FP16)
const char* act_name(ActType t);

// Host values rounded to `t` (what the device will hold), as fp32.
std::vector<float> round_to(const std::vector<float>& v, ActType t);

// A device array; upload() converts fp32 host values to the element type.
class DeviceArray {
 public:
  DeviceArray(size_t count, size_t elem_bytes);
  static DeviceArray of_act(const std::vector<float>& host, ActType t);
  static DeviceArray of_f32(const std::vector<float>& host);
  static DeviceArray of_i32(const std::vector<int32_t>& host);
  void* get() const { return buf_.get(); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(buf_.get());
  }
  void poison();  // every byte 0xFF: NaN in fp32, BF16 and FP16
  std::vector<float> read_act(ActType t) const;
  std::vector<float> read_f32() const;
  std::vector<uint8_t> read_bytes() const;  // an array of one-byte elements (an FP8 pool)

 private:
  size_t count_;
  DeviceBuffer buf_;
};

std::vector<float> random_vector(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f);

// ||a - ref|| / ||ref|| over every element; infinity when `a` has a NaN/Inf or sizes differ.
double rel_error(const std::vector<float>& a, const std::vector<float>& ref);

void sync();  // cudaDeviceSynchronize, checked

}  // namespace autoglm::cuda::test
