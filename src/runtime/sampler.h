// Token selection for one request: logits processing (logit_bias, penalties; see
// logits_processing.h), logprobs, then temperature, top-k, top-p and min-p, then one seeded
// draw. Truncation follows HF's warper order: top-k, then top-p on the top-k-renormalised
// distribution, then min-p (its threshold is relative to the top token, so it is the same on
// any renormalisation). A per-request seed reproduces the draws exactly on any platform: the
// generator is mt19937_64 (fully specified) and the uniform variate is built from its top 53
// bits by hand, not by std::uniform_real_distribution (implementation-defined).
// Thread ownership: a Sampler belongs to one request and is used by one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "runtime/logits_processing.h"
#include "runtime/sampling_params.h"

namespace autoglm {

struct SampledToken {
  int32_t id = 0;
  std::optional<Logprobs> logprobs;  // when params.logprobs
};

class Sampler {
 public:
  // Validates `params` against `vocab_size` (throws Error(kInvalidArgument)).
  Sampler(const SamplingParams& params, int64_t vocab_size);

  // Records prompt tokens for the repetition penalty. Call before the first sample().
  void add_prompt(std::span<const int32_t> ids) { history_.add_prompt(ids); }
  // Forgets the prompt and output history (a new conversation turn re-adds its prompt).
  void reset_history() { history_.clear(); }

  // Processes `logits` in place (bias, penalties), selects a token, records it as generated.
  SampledToken sample(std::span<float> logits);

  // The truncation and draw alone, on already-processed logits (temperature .. min-p).
  int32_t draw(std::span<const float> logits);

  const SamplingParams& params() const { return params_; }

 private:
  double uniform01();  // [0, 1) from the top 53 bits of one engine output
  // Tokens kept by top-p and min-p at the front of candidates_, whose first `sorted` entries
  // are already in order; writes their total weight to `kept_mass`.
  size_t nucleus_size(double total, size_t sorted, double* kept_mass);

  SamplingParams params_;
  int64_t vocab_size_;
  std::mt19937_64 rng_;
  TokenHistory history_;
  std::vector<std::pair<double, int32_t>> candidates_;  // (logit, then weight; token id)
};

}  // namespace autoglm
