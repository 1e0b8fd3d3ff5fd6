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

// Descending logit or weight; ties by ascending id, so the order (and the draw) is deterministic.
bool heavier(const std::pair<double, int32_t>& a, const std::pair<double, int32_t>& b) {
  return a.first != b.first ? a.first > b.first : a.second < b.second;
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
  candidates_.clear();
  candidates_.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    candidates_.emplace_back(logits[i], static_cast<int32_t>(i));
  }
  size_t sorted = 0;  // candidates_[0, sorted) are in final order
  double max_logit = 0.0;
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < candidates_.size()) {
    // Top-k on the logits first, so only k weights need an exp.
    sorted = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(),
                      candidates_.begin() + static_cast<std::ptrdiff_t>(sorted), candidates_.end(),
                      heavier);
    candidates_.resize(sorted);
    max_logit = candidates_.front().first;
  } else {
    max_logit = *std::max_element(logits.begin(), logits.end());
  }
  // Weights exp((logit - max) / T): the top token weighs exactly 1, nothing overflows, and the
  // order of a sorted prefix is kept (exp is monotonic).
  const double inv_temperature = 1.0 / params_.temperature;
  double total = 0.0;
  for (auto& c : candidates_) {
    c.first = std::exp((c.first - max_logit) * inv_temperature);
    total += c.first;
  }
  size_t cut = candidates_.size();
  double kept_mass = total;
  if (params_.top_p < 1.0f || params_.min_p > 0.0f) {
    cut = nucleus_size(total, sorted, &kept_mass);
  }
  const double r = uniform01() * kept_mass;
  double acc = 0.0;
  for (size_t i = 0; i < cut; ++i) {
    acc += candidates_[i].first;
    if (r < acc) return candidates_[i].second;
  }
  return candidates_[cut - 1].second;  // rounding: r landed on the very end of the mass
}

size_t Sampler::nucleus_size(double total, size_t sorted, double* kept_mass) {
  // The smallest prefix (by descending weight) whose probability reaches top_p, cut further
  // where a weight drops below min_p (the top weighs 1). The prefix is sorted lazily in
  // growing steps: a nucleus is usually a few dozen tokens of a 150k vocabulary, and
  // partial_sort of the rest yields exactly the order a full sort would.
  const double min_weight = params_.min_p;
  double cumulative = 0.0;
  size_t cut = 0;
  while (cut < candidates_.size()) {
    if (cut == sorted) {
      const size_t grown = std::min(candidates_.size(), std::max<size_t>(64, 2 * sorted));
      std::partial_sort(candidates_.begin() + static_cast<std::ptrdiff_t>(sorted),
                        candidates_.begin() + static_cast<std::ptrdiff_t>(grown), candidates_.end(),
                        heavier);
      sorted = grown;
    }
    if (cut > 0 && (cumulative / total >= params_.top_p || candidates_[cut].first < min_weight)) {
      break;
    }
    cumulative += candidates_[cut].first;
    ++cut;
  }
  *kept_mass = cumulative;
  return cut;
}

}  // namespace autoglm
