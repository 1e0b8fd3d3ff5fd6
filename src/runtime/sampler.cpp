// See sampler.h. Filtering order follows the common serving convention: temperature, then
// top-k, top-p and min-p on the softmax of the scaled logits, then one draw.
#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace autoglm {
namespace {

void check(bool ok, const char* name, const char* range) {
  if (!ok) fail(ErrorCode::kInvalidArgument, std::string(name) + " must be " + range);
}

}  // namespace

void validate(const SamplingParams& p) {
  check(std::isfinite(p.temperature) && p.temperature >= 0.0f && p.temperature <= 100.0f,
        "temperature", "a finite number in [0, 100]");
  check(p.top_k >= 0, "top_k", ">= 0 (0 disables it)");
  check(std::isfinite(p.top_p) && p.top_p > 0.0f && p.top_p <= 1.0f, "top_p", "in (0, 1]");
  check(std::isfinite(p.min_p) && p.min_p >= 0.0f && p.min_p <= 1.0f, "min_p", "in [0, 1]");
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  validate(params_);
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (params_.temperature == 0.0f) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  candidates_.clear();
  for (size_t i = 0; i < logits.size(); ++i) {
    candidates_.emplace_back(logits[i] / params_.temperature, static_cast<int32_t>(i));
  }
  const auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first; };
  size_t keep = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), by_logit);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
  candidates_.resize(keep);
  // Softmax over the survivors, in descending order.
  const float max_logit = candidates_.front().first;
  double total = 0.0;
  for (auto& c : candidates_) {
    c.first = std::exp(c.first - max_logit);
    total += c.first;
  }
  const double min_prob = params_.min_p * (candidates_.front().first / total);
  double cumulative = 0.0;
  size_t cut = 0;
  while (cut < candidates_.size()) {
    const double prob = candidates_[cut].first / total;
    if (cut > 0 && (prob < min_prob || cumulative >= params_.top_p)) break;
    cumulative += prob;
    ++cut;
  }
  std::uniform_real_distribution<double> uniform(0.0, cumulative);
  double r = uniform(rng_);
  for (size_t i = 0; i < cut; ++i) {
    r -= candidates_[i].first / total;
    if (r <= 0.0) return candidates_[i].second;
  }
  return candidates_[cut - 1].second;
}

}  // namespace autoglm
