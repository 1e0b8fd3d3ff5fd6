// See logits_processing.h.
#include "runtime/logits_processing.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace autoglm {

void TokenHistory::add_prompt(std::span<const int32_t> ids) {
  for (const int32_t id : ids) seen_[id].in_prompt = true;
}

void TokenHistory::add_generated(int32_t id) {
  ++seen_[id].generated;
}

void apply_logits_processing(const SamplingParams& p, const TokenHistory& history,
                             std::span<float> logits) {
  for (const auto& [id, bias] : p.logit_bias) logits[static_cast<size_t>(id)] += bias;
  const bool repetition = p.repetition_penalty != 1.0f;
  const bool additive = p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
  if (!repetition && !additive) return;
  for (const auto& [id, seen] : history.seen()) {
    if (id < 0 || static_cast<size_t>(id) >= logits.size()) continue;
    float& logit = logits[static_cast<size_t>(id)];
    // HF RepetitionPenaltyLogitsProcessor: divide positive logits, multiply negative ones, so
    // a penalty > 1 always makes the token less likely.
    if (repetition)
      logit = logit > 0.0f ? logit / p.repetition_penalty : logit * p.repetition_penalty;
    if (seen.generated > 0) {
      logit -= static_cast<float>(seen.generated) * p.frequency_penalty + p.presence_penalty;
    }
  }
}

Logprobs compute_logprobs(std::span<const float> logits, int32_t chosen, int32_t top_n) {
  float max_logit = -std::numeric_limits<float>::infinity();
  for (const float l : logits) max_logit = std::max(max_logit, l);
  double sum = 0.0;
  for (const float l : logits) sum += std::exp(static_cast<double>(l) - max_logit);
  const double log_z = static_cast<double>(max_logit) + std::log(sum);
  const auto logprob = [&](int32_t id) {
    return static_cast<float>(static_cast<double>(logits[static_cast<size_t>(id)]) - log_z);
  };
  Logprobs out;
  out.chosen = {chosen, logprob(chosen)};
  const size_t n = std::min(static_cast<size_t>(std::max(top_n, 0)), logits.size());
  if (n == 0) return out;
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n), ids.end(),
                    [&](int32_t a, int32_t b) {
                      const float la = logits[static_cast<size_t>(a)];
                      const float lb = logits[static_cast<size_t>(b)];
                      return la != lb ? la > lb : a < b;
                    });
  out.top.reserve(n);
  for (size_t i = 0; i < n; ++i) out.top.push_back({ids[i], logprob(ids[i])});
  return out;
}

}  // namespace autoglm
