// See cuda_test_util.h.
#include "cuda_test_util.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <limits>

namespace autoglm::cuda::test {
namespace {

uint16_t bits_of(float f, ActType t) {
  if (t == ActType::kBF16) {
    const __nv_bfloat16_raw raw = __float2bfloat16_rn(f);
    return raw.x;
  }
  const __half_raw raw = __float2half_rn(f);
  return raw.x;
}

float value_of(uint16_t bits, ActType t) {
  if (t == ActType::kBF16) {
    __nv_bfloat16_raw raw;
    raw.x = bits;
    return __bfloat162float(__nv_bfloat16(raw));
  }
  __half_raw raw;
  raw.x = bits;
  return __half2float(__half(raw));
}

}  // namespace

size_t act_size(ActType) {
  return 2;
}
double tolerance(ActType t) {
  return t == ActType::kBF16 ? 1e-2 : 1e-3;
}
const char* act_name(ActType t) {
  return t == ActType::kBF16 ? "BF16" : "FP16";
}

std::vector<float> round_to(const std::vector<float>& v, ActType t) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = value_of(bits_of(v[i], t), t);
  return out;
}

DeviceArray::DeviceArray(size_t count, size_t elem_bytes)
    : count_(count), buf_(std::max<size_t>(count * elem_bytes, 1), "test array") {}

DeviceArray DeviceArray::of_act(const std::vector<float>& host, ActType t) {
  DeviceArray a(host.size(), 2);
  std::vector<uint16_t> bits(host.size());
  for (size_t i = 0; i < host.size(); ++i) bits[i] = bits_of(host[i], t);
  AUTOGLM_CUDA_CHECK(cudaMemcpy(a.get(), bits.data(), bits.size() * 2, cudaMemcpyHostToDevice));
  return a;
}

DeviceArray DeviceArray::of_f32(const std::vector<float>& host) {
  DeviceArray a(host.size(), 4);
  AUTOGLM_CUDA_CHECK(cudaMemcpy(a.get(), host.data(), host.size() * 4, cudaMemcpyHostToDevice));
  return a;
}

DeviceArray DeviceArray::of_i32(const std::vector<int32_t>& host) {
  DeviceArray a(host.size(), 4);
  AUTOGLM_CUDA_CHECK(cudaMemcpy(a.get(), host.data(), host.size() * 4, cudaMemcpyHostToDevice));
  return a;
}

void DeviceArray::poison() {
  AUTOGLM_CUDA_CHECK(cudaMemset(buf_.get(), 0xFF, buf_.bytes()));
}

std::vector<float> DeviceArray::read_act(ActType t) const {
  sync();
  std::vector<uint16_t> bits(count_);
  AUTOGLM_CUDA_CHECK(cudaMemcpy(bits.data(), get(), count_ * 2, cudaMemcpyDeviceToHost));
  std::vector<float> out(count_);
  for (size_t i = 0; i < count_; ++i) out[i] = value_of(bits[i], t);
  return out;
}

std::vector<uint8_t> DeviceArray::read_bytes() const {
  sync();
  std::vector<uint8_t> out(count_);
  AUTOGLM_CUDA_CHECK(cudaMemcpy(out.data(), get(), count_, cudaMemcpyDeviceToHost));
  return out;
}

std::vector<float> DeviceArray::read_f32() const {
  sync();
  std::vector<float> out(count_);
  AUTOGLM_CUDA_CHECK(cudaMemcpy(out.data(), get(), count_ * 4, cudaMemcpyDeviceToHost));
  return out;
}

std::vector<float> random_vector(size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = d(rng);
  return v;
}

double rel_error(const std::vector<float>& a, const std::vector<float>& ref) {
  if (a.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
    const double d = static_cast<double>(a[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

void sync() {
  AUTOGLM_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace autoglm::cuda::test
