// See logits_processing.h.
#include "runtime/logits_processing.h"

namespace autoglm {

void TokenHistory::add_prompt(std::span<const int32_t> ids) {
  for (const int32_t id : ids) seen_[id].in_prompt = true;
}

void TokenHistory::add_generated(int32_t id) {
  ++seen_[id].generated;
}

bool reads_token_history(const SamplingParams& p) {
  return p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
}

void append_logit_adjustments(const SamplingParams& p, const TokenHistory& history,
                              std::vector<LogitAdjustment>& out) {
  const size_t first = out.size();
  if (reads_token_history(p)) {
    for (const auto& [id, seen] : history.seen()) out.push_back({id, 0.0f, seen.generated, 1});
  }
  if (p.logit_bias.empty()) return;
  // Each token appears once: a biased token that is also in the history shares its entry.
  std::unordered_map<int32_t, size_t> index;
  for (size_t i = first; i < out.size(); ++i) index.emplace(out[i].token, i);
  for (const auto& [id, bias] : p.logit_bias) {
    const auto [it, inserted] = index.emplace(id, out.size());
    if (inserted) out.push_back({id, 0.0f, 0, 0});
    out[it->second].bias += bias;
  }
}

void apply_logits_processing(const SamplingParams& p, const TokenHistory& history,
                             std::span<float> logits) {
  std::vector<LogitAdjustment> adjustments;
  append_logit_adjustments(p, history, adjustments);
  RowSamplingParams row;
  row.repetition_penalty = p.repetition_penalty;
  row.presence_penalty = p.presence_penalty;
  row.frequency_penalty = p.frequency_penalty;
  apply_logit_adjustments(row, adjustments, logits);
}

}  // namespace autoglm
