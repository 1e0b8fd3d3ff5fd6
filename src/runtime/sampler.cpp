// See sampler.h.
#include "runtime/sampler.h"

#include <string>
#include <utility>

#include "backend/row_sampler.h"
#include "core/error.h"

namespace autoglm {
namespace {

uint64_t seed_or_random(const std::optional<uint64_t>& seed) {
  if (seed) return *seed;
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, int64_t vocab_size)
    : params_(params), vocab_size_(vocab_size), rng_(seed_or_random(params.seed)) {
  validate(params_, vocab_size_);
}

double Sampler::uniform01() {
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

RowSamplingParams Sampler::row_params() {
  RowSamplingParams row;
  row.temperature = params_.temperature;
  row.top_k = params_.top_k;
  row.top_p = params_.top_p;
  row.min_p = params_.min_p;
  row.repetition_penalty = params_.repetition_penalty;
  row.presence_penalty = params_.presence_penalty;
  row.frequency_penalty = params_.frequency_penalty;
  row.top_logprobs = params_.logprobs ? params_.top_logprobs : -1;
  if (params_.temperature != 0.0f) row.uniform = uniform01();
  return row;
}

RowSamplingParams Sampler::prepare(std::vector<LogitAdjustment>& adjustments) {
  RowSamplingParams row = row_params();
  row.adjust_begin = static_cast<int32_t>(adjustments.size());
  append_logit_adjustments(params_, history_, adjustments);
  row.adjust_end = static_cast<int32_t>(adjustments.size());
  return row;
}

SampledToken Sampler::accept(const RowSample& row) {
  if (row.token < 0 || row.token >= vocab_size_) {
    fail(ErrorCode::kInternal, "sampler: the backend chose token " + std::to_string(row.token) +
                                   " of a vocabulary of " + std::to_string(vocab_size_));
  }
  SampledToken out;
  out.id = row.token;
  if (params_.logprobs) {
    Logprobs lp;
    lp.chosen = {row.token, row.logprob};
    for (int32_t i = 0; i < row.n_top; ++i) lp.top.push_back({row.top_ids[i], row.top_logprobs[i]});
    out.logprobs = std::move(lp);
  }
  history_.add_generated(out.id);
  return out;
}

SampledToken Sampler::sample(std::span<float> logits) {
  if (static_cast<int64_t>(logits.size()) != vocab_size_) {
    fail(ErrorCode::kInternal, "sampler: got " + std::to_string(logits.size()) +
                                   " logits for a vocabulary of " + std::to_string(vocab_size_));
  }
  adjustments_.clear();
  const RowSamplingParams row = prepare(adjustments_);
  return accept(sample_row(logits, row, adjustments_));
}

int32_t Sampler::draw(std::span<const float> logits) {
  RowSamplingParams row = row_params();
  row.top_logprobs = -1;
  draw_logits_.assign(logits.begin(), logits.end());
  return sample_row(draw_logits_, row, {}).token;
}

}  // namespace autoglm
