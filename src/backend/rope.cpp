// See rope.h. The formulas follow transformers' rope initialisation functions (default, linear,
// llama3) so that fp32 angles agree with the reference to the last bits that matter.
#include "backend/rope.h"

#include <cmath>
#include <numbers>

namespace autoglm {
namespace {

std::vector<float> llama3_scaled(const std::vector<float>& inv_freq, const RopeScaling& s) {
  const double old_ctx = static_cast<double>(s.original_max_position_embeddings);
  const double low_wavelen = old_ctx / s.low_freq_factor;
  const double high_wavelen = old_ctx / s.high_freq_factor;
  std::vector<float> out(inv_freq.size());
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    const float f = inv_freq[i];
    const double wavelen = 2.0 * std::numbers::pi / f;
    if (wavelen > low_wavelen) {
      out[i] = static_cast<float>(f / s.factor);  // long wavelengths: fully scaled
    } else if (wavelen < high_wavelen) {
      out[i] = f;  // short wavelengths: unchanged
    } else {       // in between: blend the two
      const double smooth =
          (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      out[i] = static_cast<float>((1.0 - smooth) * f / s.factor + smooth * f);
    }
  }
  return out;
}

}  // namespace

RopeTable::RopeTable(const ModelConfig& config)
    : rotary_dim_(static_cast<int32_t>(config.rotary_dim)) {
  const int32_t half = rotary_dim_ / 2;
  inv_freq_.resize(half);
  for (int32_t i = 0; i < half; ++i) {
    // transformers: 1 / base ** (arange(0, dim, 2).float() / dim), in fp32.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(rotary_dim_);
    inv_freq_[i] = 1.0f / std::pow(static_cast<float>(config.rope_theta), exponent);
  }
  const RopeScaling& s = config.rope_scaling;
  if (s.type == RopeScalingType::kLlama3) inv_freq_ = llama3_scaled(inv_freq_, s);
  if (s.type == RopeScalingType::kLinear) {
    for (float& f : inv_freq_) f = static_cast<float>(f / s.factor);
  }
}

void RopeTable::angles(int32_t pos, float* cos, float* sin) const {
  const float p = static_cast<float>(pos);
  for (size_t i = 0; i < inv_freq_.size(); ++i) {
    const float a = inv_freq_[i] * p;
    cos[i] = std::cos(a);
    sin[i] = std::sin(a);
  }
}

}  // namespace autoglm
