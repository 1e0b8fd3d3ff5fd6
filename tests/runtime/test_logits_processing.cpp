// Exact effect of logit_bias and the repetition / presence / frequency penalties on logits, and
// logprobs against a direct log-softmax (after bias and penalties, before temperature).
// Thread ownership: test thread only.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "runtime/logits_processing.h"
#include "runtime/sampler.h"

namespace autoglm {
namespace {

std::vector<double> log_softmax(const std::vector<float>& logits) {
  double max = logits[0];
  for (const float l : logits) max = std::max(max, static_cast<double>(l));
  double total = 0.0;
  for (const float l : logits) total += std::exp(l - max);
  std::vector<double> out;
  for (const float l : logits) out.push_back(l - max - std::log(total));
  return out;
}

TEST(LogitsProcessing, BiasThenRepetitionThenFrequencyAndPresence) {
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  p.logit_bias = {{4, 1.5f}, {2, -100.0f}};
  TokenHistory history;
  const int32_t prompt[] = {0, 1};
  history.add_prompt(prompt);
  for (const int32_t id : {1, 3, 3}) history.add_generated(id);
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f};
  apply_logits_processing(p, history, logits);
  EXPECT_FLOAT_EQ(logits[0], 1.0f);    // prompt only: 2 / 2, no output penalties
  EXPECT_FLOAT_EQ(logits[1], -2.75f);  // -1 * 2, then -(1 * 0.25 + 0.5)
  EXPECT_FLOAT_EQ(logits[2], -99.5f);  // unseen: bias only
  EXPECT_FLOAT_EQ(logits[3], 0.5f);    // 3 / 2, then -(2 * 0.25 + 0.5)
  EXPECT_FLOAT_EQ(logits[4], -0.5f);   // unseen: -2 + 1.5
}

TEST(LogitsProcessing, RepetitionPenaltyAppliesToBiasedLogit) {
  // The bias comes first: a positive logit pushed negative is multiplied, not divided.
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  p.logit_bias = {{0, -3.0f}};
  TokenHistory history;
  history.add_generated(0);
  std::vector<float> logits = {1.0f, 0.0f};
  apply_logits_processing(p, history, logits);
  EXPECT_FLOAT_EQ(logits[0], -4.0f);
  EXPECT_FLOAT_EQ(logits[1], 0.0f);
}

TEST(LogitsProcessing, NegativePenaltiesEncourageRepeats) {
  SamplingParams p;
  p.presence_penalty = -1.0f;
  p.frequency_penalty = -0.5f;
  TokenHistory history;
  const int32_t prompt[] = {1};  // prompt tokens are not output: no OpenAI penalty
  history.add_prompt(prompt);
  history.add_generated(0);
  history.add_generated(0);
  std::vector<float> logits = {0.0f, 0.0f};
  apply_logits_processing(p, history, logits);
  EXPECT_FLOAT_EQ(logits[0], 2.0f);
  EXPECT_FLOAT_EQ(logits[1], 0.0f);
}

TEST(LogitsProcessing, DefaultsLeaveLogitsUntouched) {
  SamplingParams p;
  TokenHistory history;
  history.add_generated(0);
  std::vector<float> logits = {0.25f, -7.0f};
  apply_logits_processing(p, history, logits);
  EXPECT_EQ(logits, (std::vector<float>{0.25f, -7.0f}));
}

TEST(Logprobs, MatchDirectLogSoftmaxAndRankAlternatives) {
  const std::vector<float> logits = {0.3f, 2.5f, -1.0f, 2.5f, 1.0f, -30.0f};
  const std::vector<double> expected = log_softmax(logits);
  const Logprobs lp = compute_logprobs(logits, 4, 3);
  EXPECT_EQ(lp.chosen.id, 4);
  EXPECT_NEAR(lp.chosen.logprob, expected[4], 1e-6);
  ASSERT_EQ(lp.top.size(), 3u);
  EXPECT_EQ(lp.top[0].id, 1);  // tie with 3: lowest id first
  EXPECT_EQ(lp.top[1].id, 3);
  EXPECT_EQ(lp.top[2].id, 4);
  for (const TokenLogprob& t : lp.top) EXPECT_NEAR(t.logprob, expected[t.id], 1e-6);
  EXPECT_NEAR(compute_logprobs(logits, 5, 0).chosen.logprob, expected[5], 1e-5);
  EXPECT_TRUE(compute_logprobs(logits, 5, 0).top.empty());
  EXPECT_EQ(compute_logprobs(logits, 0, 20).top.size(), logits.size());
}

TEST(Logprobs, LargeVocabularyMatchesDirectFormula) {
  std::vector<float> logits(150000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>((i * 37) % 101) / 7;
  const std::vector<double> expected = log_softmax(logits);
  for (const int32_t id : {0, 77, 149999}) {
    const Logprobs lp = compute_logprobs(logits, id, 20);
    EXPECT_NEAR(lp.chosen.logprob, expected[static_cast<size_t>(id)], 1e-5);
    ASSERT_EQ(lp.top.size(), 20u);
    for (size_t i = 1; i < lp.top.size(); ++i) EXPECT_GE(lp.top[i - 1].logprob, lp.top[i].logprob);
    EXPECT_FLOAT_EQ(logits[static_cast<size_t>(lp.top[0].id)], 100.0f / 7);  // the maximum
    EXPECT_NEAR(lp.top[0].logprob, expected[static_cast<size_t>(lp.top[0].id)], 1e-5);
  }
}

TEST(Logprobs, SamplerReportsProcessedLogprobsBeforeTemperature) {
  const std::vector<float> raw = {1.0f, 2.0f, 0.0f};
  SamplingParams p;
  p.temperature = 2.0f;
  p.top_k = 1;  // truncation must not change the reported logprobs either
  p.logit_bias = {{0, 1.0f}};
  p.logprobs = true;
  p.top_logprobs = 2;
  p.seed = 3;
  Sampler sampler(p, 3);
  std::vector<float> logits = raw;
  const SampledToken t = sampler.sample(logits);
  ASSERT_TRUE(t.logprobs.has_value());
  const std::vector<double> expected = log_softmax({2.0f, 2.0f, 0.0f});  // after the bias
  EXPECT_EQ(t.id, 0);  // top_k 1 over the biased logits: 0 and 1 tie, lowest id wins
  EXPECT_NEAR(t.logprobs->chosen.logprob, expected[0], 1e-6);
  ASSERT_EQ(t.logprobs->top.size(), 2u);
  EXPECT_NEAR(t.logprobs->top[1].logprob, expected[1], 1e-6);
}

TEST(Logprobs, AbsentUnlessRequested) {
  SamplingParams p;
  p.seed = 1;
  Sampler sampler(p, 2);
  std::vector<float> logits = {0.0f, 1.0f};
  EXPECT_FALSE(sampler.sample(logits).logprobs.has_value());
}

}  // namespace
}  // namespace autoglm
