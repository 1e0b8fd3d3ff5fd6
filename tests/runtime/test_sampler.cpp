// Statistical tests of Sampler::draw on fixed logits: 20k seeded draws per case, compared with
// the distribution each rule must produce (computed here independently of the sampler) by a
// chi-square statistic, plus exact checks that truncated tokens are never drawn.
// Thread ownership: test thread only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "runtime/sampler.h"

namespace autoglm {
namespace {

constexpr int kDraws = 20000;

std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> out;
  for (const double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

std::vector<double> softmax(const std::vector<float>& logits, double temperature) {
  std::vector<double> p;
  double max = *std::max_element(logits.begin(), logits.end());
  for (const float l : logits) p.push_back(std::exp((l - max) / temperature));
  const double total = std::accumulate(p.begin(), p.end(), 0.0);
  for (double& x : p) x /= total;
  return p;
}

std::vector<int> histogram(const SamplingParams& params, const std::vector<float>& logits) {
  Sampler sampler(params, static_cast<int64_t>(logits.size()));
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < kDraws; ++i) ++counts[static_cast<size_t>(sampler.draw(logits))];
  return counts;
}

// Chi-square over the tokens with expected probability > 0; tokens with expected 0 must never
// be drawn. The bound df + 6 * sqrt(2 df) is about the 1e-4 tail for these small df, so a
// correct sampler passes while a distribution off by a few percent fails.
void expect_distribution(const std::vector<int>& counts, const std::vector<double>& expected) {
  double chi2 = 0.0;
  int df = -1;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (expected[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " must be truncated";
      continue;
    }
    const double e = expected[i] * kDraws;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    ++df;
  }
  if (df > 0) {
    EXPECT_LT(chi2, df + 6.0 * std::sqrt(2.0 * df)) << "chi-square with df " << df;
  }
}

std::vector<double> renormalised(std::vector<double> p, const std::vector<bool>& keep) {
  double total = 0.0;
  for (size_t i = 0; i < p.size(); ++i) total += keep[i] ? p[i] : 0.0;
  for (size_t i = 0; i < p.size(); ++i) p[i] = keep[i] ? p[i] / total : 0.0;
  return p;
}

SamplingParams seeded(float temperature) {
  SamplingParams p;
  p.temperature = temperature;
  p.seed = 1234;
  return p;
}

const std::vector<float> kLogits = {2.0f, 1.5f, 1.0f, 0.5f, 0.0f, -1.0f};

TEST(Sampler, TemperatureOneMatchesSoftmax) {
  expect_distribution(histogram(seeded(1.0f), kLogits), softmax(kLogits, 1.0));
}

TEST(Sampler, TemperatureScalesLogits) {
  expect_distribution(histogram(seeded(0.5f), kLogits), softmax(kLogits, 0.5));
  expect_distribution(histogram(seeded(3.0f), kLogits), softmax(kLogits, 3.0));
}

TEST(Sampler, TopKKeepsExactlyK) {
  SamplingParams p = seeded(1.0f);
  p.top_k = 3;
  const std::vector<bool> keep = {true, true, true, false, false, false};
  const std::vector<int> counts = histogram(p, kLogits);
  expect_distribution(counts, renormalised(softmax(kLogits, 1.0), keep));
  for (int i = 0; i < 3; ++i) EXPECT_GT(counts[i], 0);
}

TEST(Sampler, TopKLargerThanVocabOrOffKeepsAll) {
  for (const int32_t k : {0, -1, 6, 100}) {
    SamplingParams p = seeded(1.0f);
    p.top_k = k;
    expect_distribution(histogram(p, kLogits), softmax(kLogits, 1.0));
  }
}

TEST(Sampler, TopPKeepsSmallestNucleus) {
  const std::vector<float> logits = logits_of({0.2, 0.5, 0.3});  // sorted: 1, 2, 0
  SamplingParams p = seeded(1.0f);
  p.top_p = 0.75f;  // 0.5 < 0.75 <= 0.8: tokens 1 and 2
  expect_distribution(histogram(p, logits), {0.0, 0.5 / 0.8, 0.3 / 0.8});
  p.top_p = 0.4f;  // the top token alone already reaches it
  expect_distribution(histogram(p, logits), {0.0, 1.0, 0.0});
  p.top_p = 0.85f;  // needs all three
  expect_distribution(histogram(p, logits), {0.2, 0.5, 0.3});
}

TEST(Sampler, TopPAppliesAfterTopK) {
  // Top-2 renormalised: 0.5/0.8 = 0.625 and 0.375; top_p 0.6 then keeps token 1 only.
  const std::vector<float> logits = logits_of({0.2, 0.5, 0.3});
  SamplingParams p = seeded(1.0f);
  p.top_k = 2;
  p.top_p = 0.6f;
  expect_distribution(histogram(p, logits), {0.0, 1.0, 0.0});
}

TEST(Sampler, MinPThresholdIsRelativeToTopToken) {
  const std::vector<float> logits = logits_of({0.5, 0.3, 0.15, 0.05});
  SamplingParams p = seeded(1.0f);
  p.min_p = 0.5f;  // threshold 0.25: tokens 0 and 1
  expect_distribution(histogram(p, logits), {0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0});
  p.min_p = 0.2f;  // threshold 0.1: tokens 0, 1, 2
  expect_distribution(histogram(p, logits), {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0});
}

TEST(Sampler, MinPUsesTemperatureScaledProbabilities) {
  // At T = 2 the probabilities are proportional to sqrt(p): 0.707, 0.548, 0.387, 0.224, so
  // min_p 0.5 keeps tokens 0, 1 and 2 (it would keep only 0 and 1 at T = 1).
  const std::vector<float> logits = logits_of({0.5, 0.3, 0.15, 0.05});
  SamplingParams p = seeded(2.0f);
  p.min_p = 0.5f;
  std::vector<double> expected = softmax(logits, 2.0);
  expect_distribution(histogram(p, logits), renormalised(expected, {true, true, true, false}));
}

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
  Sampler sampler(seeded(0.0f), 5);
  const std::vector<float> logits = {0.0f, 3.0f, -1.0f, 3.0f, 2.0f};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(sampler.draw(logits), 1);
}

TEST(Sampler, SameSeedReproducesDrawsAndOtherSeedsDiffer) {
  const auto draws = [](uint64_t seed) {
    SamplingParams p;
    p.temperature = 1.0f;
    p.top_p = 0.95f;
    p.seed = seed;
    Sampler sampler(p, static_cast<int64_t>(kLogits.size()));
    std::vector<int32_t> out;
    for (int i = 0; i < 200; ++i) out.push_back(sampler.draw(kLogits));
    return out;
  };
  EXPECT_EQ(draws(7), draws(7));
  EXPECT_NE(draws(7), draws(8));
}

TEST(Sampler, SampleAppliesPenaltiesFromItsOwnHistory) {
  // Greedy over equal logits with a frequency penalty: each drawn token is penalised, so the
  // argmax walks through the vocabulary instead of repeating token 0.
  SamplingParams p = seeded(0.0f);
  p.frequency_penalty = 1.0f;
  Sampler sampler(p, 4);
  std::vector<int32_t> drawn;
  for (int i = 0; i < 4; ++i) {
    std::vector<float> logits(4, 0.0f);
    drawn.push_back(sampler.sample(logits).id);
  }
  EXPECT_EQ(drawn, (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST(Sampler, RepetitionPenaltyCountsThePrompt) {
  SamplingParams p = seeded(0.0f);
  p.repetition_penalty = 2.0f;
  Sampler sampler(p, 3);
  const int32_t prompt[] = {0};
  sampler.add_prompt(prompt);
  std::vector<float> logits = {1.0f, 0.6f, 0.1f};  // token 0 becomes 0.5 < 0.6
  EXPECT_EQ(sampler.sample(logits).id, 1);
}

TEST(Sampler, RejectsLogitsOfTheWrongSize) {
  Sampler sampler(seeded(1.0f), 4);
  std::vector<float> logits(3, 0.0f);
  EXPECT_THROW(sampler.sample(logits), Error);
}

}  // namespace
}  // namespace autoglm
