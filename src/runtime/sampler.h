// Token selection for one request: it owns the request's seeded generator and token history,
// and turns its SamplingParams into the per-step RowSamplingParams + LogitAdjustments that the
// backend samples with (backend/row_sampler.h is the definition: logit_bias and penalties,
// logprobs, temperature, top-k, top-p, min-p, one draw). Truncation follows HF's warper order.
// A per-request seed reproduces the draws exactly on any platform: the generator is mt19937_64
// (fully specified) and the uniform variate is built from its top 53 bits by hand, not by
// std::uniform_real_distribution (implementation-defined). The variate is drawn only for
// non-greedy rows, so greedy requests never advance it.
// Thread ownership: a Sampler belongs to one request and is used by one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "backend/row_sampling.h"
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

  // Processes `logits` in place (bias, penalties), selects a token, records it as generated:
  // prepare() + sample_row() + accept() on the host.
  SampledToken sample(std::span<float> logits);

  // The truncation and draw alone, on already-processed logits (temperature .. min-p).
  int32_t draw(std::span<const float> logits);

  // For a backend that samples: appends this step's adjustments to `adjustments` (their range
  // goes into the returned params) and draws the step's uniform variate.
  RowSamplingParams prepare(std::vector<LogitAdjustment>& adjustments);
  // Takes the backend's choice for the row prepare() described: records it in the history and
  // returns it with its logprobs (when asked).
  SampledToken accept(const RowSample& row);

  const SamplingParams& params() const { return params_; }

 private:
  double uniform01();              // [0, 1) from the top 53 bits of one engine output
  RowSamplingParams row_params();  // without adjustments; draws the variate when not greedy

  SamplingParams params_;
  int64_t vocab_size_;
  std::mt19937_64 rng_;
  TokenHistory history_;
  std::vector<LogitAdjustment> adjustments_;  // sample()'s scratch
  std::vector<float> draw_logits_;            // draw()'s scratch
};

}  // namespace autoglm
