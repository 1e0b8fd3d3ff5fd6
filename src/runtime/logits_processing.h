// The deterministic logit transforms that run before sampling, and logprobs.
// Order (vLLM v1's): logit_bias, then repetition penalty (HF: over tokens in prompt + output),
// then frequency and presence penalties (OpenAI: over generated tokens only). Logprobs are the
// log-softmax of the logits AFTER these transforms and BEFORE temperature and truncation: they
// describe what the request asked the model to prefer, independent of how it then draws.
// (vLLM returns raw model logprobs by default; we chose the processed ones, so a banned token
// via logit_bias shows as unlikely.)
// Thread ownership: a TokenHistory belongs to one request; the functions are pure.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "autoglm/logprobs.h"     // TokenLogprob, Logprobs (public types)
#include "backend/row_sampler.h"  // compute_logprobs, apply_logit_adjustments
#include "runtime/sampling_params.h"

namespace autoglm {

// Which tokens a request has seen: in the prompt, and how often each was generated.
class TokenHistory {
 public:
  void add_prompt(std::span<const int32_t> ids);
  void add_generated(int32_t id);
  void clear() { seen_.clear(); }

  struct Seen {
    bool in_prompt = false;
    int32_t generated = 0;  // occurrences in the output so far
  };
  const std::unordered_map<int32_t, Seen>& seen() const { return seen_; }

 private:
  std::unordered_map<int32_t, Seen> seen_;
};

// Whether a step's adjustments depend on the token history: a repetition, presence or frequency
// penalty is on (overlapped scheduling must then wait for the previous step's token).
bool reads_token_history(const SamplingParams& params);

// This request's adjustments for one step, one entry per token (row_sampling.h): its
// logit_bias, and its history when a penalty is on. Appends to `out`.
void append_logit_adjustments(const SamplingParams& params, const TokenHistory& history,
                              std::vector<LogitAdjustment>& out);

// Applies logit_bias and the three penalties to `logits` in place (no-op when all are off).
void apply_logits_processing(const SamplingParams& params, const TokenHistory& history,
                             std::span<float> logits);

}  // namespace autoglm
