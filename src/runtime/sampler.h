// Token sampling from one row of logits: greedy, temperature, top-k, top-p and min-p, with a
// per-request seed for reproducible draws. Parameters are validated up front with clear errors.
// Thread ownership: a Sampler belongs to one request and is used by one thread at a time.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace autoglm {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  uint64_t seed = 0;
};

// Throws Error(kInvalidArgument) naming the parameter for NaN, infinite or out-of-range values.
void validate(const SamplingParams& params);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int32_t sample(std::span<const float> logits);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

}  // namespace autoglm
