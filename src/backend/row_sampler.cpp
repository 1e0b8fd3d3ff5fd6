// See row_sampler.h.
#include "backend/row_sampler.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>
#include <utility>
#include <vector>

namespace autoglm {
namespace {

using Candidate = std::pair<double, int32_t>;  // (logit, then weight; token id)

// Descending logit or weight; ties by ascending id: the order truncation is defined in.
bool heavier(const Candidate& a, const Candidate& b) {
  return a.first != b.first ? a.first > b.first : a.second < b.second;
}

// Exponent bits all ones is NaN or +-Inf. A branch-free OR over the bits vectorises (an
// early-exit std::isfinite loop does not): ~3x faster on a 151,552-entry row.
bool all_finite(std::span<const float> logits) {
  uint32_t non_finite = 0;
  for (const float x : logits) {
    non_finite |= static_cast<uint32_t>((std::bit_cast<uint32_t>(x) & 0x7f800000u) == 0x7f800000u);
  }
  return non_finite == 0;
}

// The smallest prefix (by descending weight) whose probability reaches top_p, cut further where
// a weight drops below min_p (the top weighs 1). The prefix is sorted lazily in growing steps:
// a nucleus is usually a few dozen tokens of a 150k vocabulary, and partial_sort of the rest
// yields exactly the order a full sort would. Returns the prefix length and its mass.
std::pair<size_t, double> nucleus(std::vector<Candidate>& candidates, size_t sorted, double total,
                                  const RowSamplingParams& p) {
  const double min_weight = p.min_p;
  double cumulative = 0.0;
  size_t cut = 0;
  while (cut < candidates.size()) {
    if (cut == sorted) {
      const size_t grown = std::min(candidates.size(), std::max<size_t>(64, 2 * sorted));
      std::partial_sort(candidates.begin() + static_cast<std::ptrdiff_t>(sorted),
                        candidates.begin() + static_cast<std::ptrdiff_t>(grown), candidates.end(),
                        heavier);
      sorted = grown;
    }
    if (cut > 0 && (cumulative / total >= p.top_p || candidates[cut].first < min_weight)) break;
    cumulative += candidates[cut].first;
    ++cut;
  }
  return {cut, cumulative};
}

int32_t draw(std::span<const float> logits, const RowSamplingParams& p) {
  std::vector<Candidate> candidates;
  candidates.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    candidates.emplace_back(logits[i], static_cast<int32_t>(i));
  }
  size_t sorted = 0;  // candidates[0, sorted) are in final order
  double max_logit = 0.0;
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < candidates.size()) {
    sorted = static_cast<size_t>(p.top_k);  // top-k on the logits first: only k need an exp
    std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(sorted),
                      candidates.end(), heavier);
    candidates.resize(sorted);
    max_logit = candidates.front().first;
  } else {
    max_logit = *std::max_element(logits.begin(), logits.end());
  }
  // Weights exp((logit - max) / T): the top token weighs exactly 1 and nothing overflows.
  const double inv_temperature = 1.0 / p.temperature;
  double total = 0.0;
  for (auto& c : candidates) {
    c.first = std::exp((c.first - max_logit) * inv_temperature);
    total += c.first;
  }
  size_t cut = candidates.size();
  double kept_mass = total;
  if (p.top_p < 1.0f || p.min_p > 0.0f)
    std::tie(cut, kept_mass) = nucleus(candidates, sorted, total, p);
  candidates.resize(cut);
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) { return a.second < b.second; });
  const double r = p.uniform * kept_mass;
  double acc = 0.0;
  for (const Candidate& c : candidates) {
    acc += c.first;
    if (r < acc) return c.second;
  }
  return candidates.back().second;  // rounding: r landed on the very end of the mass
}

}  // namespace

void apply_logit_adjustments(const RowSamplingParams& p,
                             std::span<const LogitAdjustment> adjustments,
                             std::span<float> logits) {
  const bool repetition = p.repetition_penalty != 1.0f;
  for (const LogitAdjustment& a : adjustments) {
    if (a.token < 0 || static_cast<size_t>(a.token) >= logits.size()) continue;
    float& logit = logits[static_cast<size_t>(a.token)];
    logit += a.bias;
    // HF RepetitionPenaltyLogitsProcessor: divide positive logits, multiply negative ones, so
    // a penalty > 1 always makes the token less likely.
    if (repetition && a.seen != 0) {
      logit = logit > 0.0f ? logit / p.repetition_penalty : logit * p.repetition_penalty;
    }
    if (a.generated > 0) {
      logit -= static_cast<float>(a.generated) * p.frequency_penalty + p.presence_penalty;
    }
  }
}

RowSample sample_row(std::span<float> logits, const RowSamplingParams& p,
                     std::span<const LogitAdjustment> adjustments) {
  apply_logit_adjustments(p, adjustments, logits);
  RowSample out;
  if (!all_finite(logits)) out.flags |= kRowNonFiniteLogits;
  if (p.temperature == 0.0f) {
    // max_element returns the first maximum: ties go to the lowest id.
    out.token =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  } else {
    out.token = draw(logits, p);
  }
  if (p.top_logprobs >= 0) {
    const Logprobs lp =
        compute_logprobs(logits, out.token, std::min(p.top_logprobs, kMaxRowTopLogprobs));
    out.logprob = lp.chosen.logprob;
    out.n_top = static_cast<int32_t>(lp.top.size());
    for (size_t i = 0; i < lp.top.size(); ++i) {
      out.top_ids[i] = lp.top[i].id;
      out.top_logprobs[i] = lp.top[i].logprob;
    }
  }
  return out;
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
