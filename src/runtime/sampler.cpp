// See sampler.h.
#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace autoglm {
namespace {

uint64_t seed_or_random(const std::optional<uint64_t>& seed) {
  if (seed) return *seed;
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

int32_t argmax(std::span<const float> logits) {
  // max_element returns the first maximum: ties go to the lowest id.
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, int64_t vocab_size)
    : params_(params), vocab_size_(vocab_size), rng_(seed_or_random(params.seed)) {
  validate(params_, vocab_size_);
}

double Sampler::uniform01() {
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

SampledToken Sampler::sample(std::span<float> logits) {
  if (static_cast<int64_t>(logits.size()) != vocab_size_) {
    fail(ErrorCode::kInternal, "sampler: got " + std::to_string(logits.size()) +
                                   " logits for a vocabulary of " + std::to_string(vocab_size_));
  }
  apply_logits_processing(params_, history_, logits);
  SampledToken out;
  out.id = draw(logits);
  if (params_.logprobs) out.logprobs = compute_logprobs(logits, out.id, params_.top_logprobs);
  history_.add_generated(out.id);
  return out;
}

int32_t Sampler::draw(std::span<const float> logits) {
  if (params_.temperature == 0.0f) return argmax(logits);
  const double inv_temperature = 1.0 / params_.temperature;
  candidates_.clear();
  candidates_.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    candidates_.emplace_back(logits[i] * inv_temperature, static_cast<int32_t>(i));
  }
  // Descending by logit; ties by ascending id so the order (and the draw) is deterministic.
  const auto before = [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  size_t keep = candidates_.size();
  const bool top_k = params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep;
  if (top_k) keep = static_cast<size_t>(params_.top_k);
  const bool truncates = top_k || params_.top_p < 1.0f || params_.min_p > 0.0f;
  if (truncates) {
    const auto mid = candidates_.begin() + static_cast<std::ptrdiff_t>(keep);
    std::partial_sort(candidates_.begin(), mid, candidates_.end(), before);
    candidates_.resize(keep);
  }
  double max_scaled = candidates_.front().first;
  if (!truncates) {
    for (const auto& c : candidates_) max_scaled = std::max(max_scaled, c.first);
  }
  double total = 0.0;
  for (auto& c : candidates_) {
    c.first = std::exp(c.first - max_scaled);  // the top token weighs 1 when sorted
    total += c.first;
  }
  size_t cut = candidates_.size();
  double kept_mass = total;
  if (truncates) {
    // Smallest prefix whose probability reaches top_p, then drop tokens below min_p * p_top.
    const double min_weight = params_.min_p * candidates_.front().first;
    double cumulative = 0.0;
    cut = 0;
    while (cut < candidates_.size()) {
      if (cut > 0 && (cumulative / total >= params_.top_p)) break;
      if (cut > 0 && candidates_[cut].first < min_weight) break;
      cumulative += candidates_[cut].first;
      ++cut;
    }
    kept_mass = cumulative;
  }
  const double r = uniform01() * kept_mass;
  double acc = 0.0;
  for (size_t i = 0; i < cut; ++i) {
    acc += candidates_[i].first;
    if (r < acc) return candidates_[i].second;
  }
  return candidates_[cut - 1].second;  // rounding: r landed on the very end of the mass
}

}  // namespace autoglm
