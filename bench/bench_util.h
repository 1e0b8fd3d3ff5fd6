// Small helpers shared by the engine benchmarks (engine_bench, scheduler_bench): summary
// statistics of timing samples and reproducible random prompts. Not a test; header-only.
// Thread ownership: plain functions and values; owned by the benchmark thread (enginebench).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

namespace autoglm::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

struct Summary {
  size_t count = 0;
  double mean = 0.0, p50 = 0.0, p99 = 0.0, max = 0.0;
};

// Nearest-rank percentiles (p99 of fewer than 100 samples is the maximum).
inline Summary summarize(std::vector<double> samples) {
  Summary s;
  s.count = samples.size();
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  const auto rank = [&](double p) {
    const auto k = static_cast<size_t>(std::ceil(p * static_cast<double>(samples.size())));
    return samples[std::clamp<size_t>(k, 1, samples.size()) - 1];
  };
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(s.count);
  s.p50 = rank(0.50);
  s.p99 = rank(0.99);
  s.max = samples.back();
  return s;
}

// `count` token ids drawn uniformly from [vocab / 16, vocab): random prompts never share a
// prefix beyond chance, so they measure computation, not the prefix cache. The low ids are
// left out because tokenizers keep their special tokens there (1000..1010 in the bench model).
inline std::vector<int32_t> random_tokens(std::mt19937& rng, size_t count, int64_t vocab) {
  std::uniform_int_distribution<int32_t> pick(static_cast<int32_t>(vocab / 16),
                                              static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> ids(count);
  for (int32_t& id : ids) id = pick(rng);
  return ids;
}

}  // namespace autoglm::bench
