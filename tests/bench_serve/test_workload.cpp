// Tests for the random dataset (lengths within the range ratio, ids within the vocabulary,
// text prompts that re-encode to their recorded length, reproducible by seed), the Poisson
// arrival schedule's statistics (seeded, so deterministic), and base-URL parsing.
// Thread ownership: test main thread.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "bench_serve/server_address.h"
#include "bench_serve/workload.h"
#include "core/error.h"

namespace autoglm::bench {
namespace {

TEST(LengthRange, FollowsTheRatio) {
  EXPECT_EQ(length_range(100, 0.0).low, 100);
  EXPECT_EQ(length_range(100, 0.0).high, 100);
  EXPECT_EQ(length_range(100, 0.25).low, 75);
  EXPECT_EQ(length_range(100, 0.25).high, 125);
  EXPECT_EQ(length_range(1, 0.9).low, 1);  // never below one token
}

TEST(RandomTokenPrompts, LengthsAndIdsInRange) {
  RandomDatasetOptions o;
  o.num_prompts = 400;
  o.input_len = 64;
  o.output_len = 32;
  o.range_ratio = 0.5;
  o.vocab_size = 500;
  o.seed = 3;
  const auto prompts = random_token_prompts(o);
  ASSERT_EQ(prompts.size(), 400u);
  int32_t min_in = 1 << 30, max_in = 0, min_out = 1 << 30, max_out = 0;
  for (const BenchPrompt& p : prompts) {
    ASSERT_EQ(static_cast<int32_t>(p.token_ids.size()), p.input_tokens);
    for (int32_t id : p.token_ids) ASSERT_TRUE(id >= 0 && id < 500) << id;
    min_in = std::min(min_in, p.input_tokens);
    max_in = std::max(max_in, p.input_tokens);
    min_out = std::min(min_out, p.output_tokens);
    max_out = std::max(max_out, p.output_tokens);
  }
  EXPECT_GE(min_in, 32);
  EXPECT_LE(max_in, 96);
  EXPECT_GE(min_out, 16);
  EXPECT_LE(max_out, 48);
  // 400 uniform draws over 65 values reach near both ends.
  EXPECT_LE(min_in, 36);
  EXPECT_GE(max_in, 92);
}

TEST(RandomTokenPrompts, SameSeedSamePromptsOtherSeedOthers) {
  RandomDatasetOptions o;
  o.num_prompts = 5;
  o.input_len = 16;
  o.vocab_size = 1000;
  o.seed = 11;
  const auto a = random_token_prompts(o);
  const auto b = random_token_prompts(o);
  o.seed = 12;
  const auto c = random_token_prompts(o);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].token_ids, b[i].token_ids);
    EXPECT_NE(a[i].token_ids, c[i].token_ids);
    EXPECT_EQ(a[i].input_tokens, 16);  // range ratio 0: exact
  }
}

TEST(RandomTokenPrompts, RejectsBadOptions) {
  RandomDatasetOptions o;
  o.vocab_size = 0;
  EXPECT_THROW(random_token_prompts(o), Error);
  o.vocab_size = 10;
  o.range_ratio = 1.0;
  EXPECT_THROW(random_token_prompts(o), Error);
  o.range_ratio = 0;
  o.num_prompts = 0;
  EXPECT_THROW(random_token_prompts(o), Error);
}

class RandomTextPrompts : public ::testing::TestWithParam<const char*> {};

TEST_P(RandomTextPrompts, ReencodeToExactlyTheDrawnLength) {
  const Tokenizer tok = Tokenizer::load(std::string(AUTOGLM_FIXTURES_DIR "/models/") + GetParam());
  RandomDatasetOptions o;
  o.num_prompts = 20;
  o.input_len = 48;
  o.output_len = 8;
  o.range_ratio = 0.5;
  o.seed = 5;
  const auto prompts = random_text_prompts(o, tok);
  ASSERT_EQ(prompts.size(), 20u);
  const auto ids_only = random_token_prompts([&] {
    RandomDatasetOptions same = o;
    same.vocab_size = 10;
    return same;
  }());
  for (size_t i = 0; i < prompts.size(); ++i) {
    const BenchPrompt& p = prompts[i];
    EXPECT_TRUE(p.token_ids.empty());
    ASSERT_FALSE(p.text.empty());
    // The lengths drawn are the same as for token-id prompts of the same seed.
    EXPECT_EQ(p.input_tokens, ids_only[i].input_tokens);
    EXPECT_EQ(p.output_tokens, ids_only[i].output_tokens);
    EXPECT_EQ(static_cast<int32_t>(tok.encode(p.text).size()), p.input_tokens) << p.text;
  }
  EXPECT_NE(prompts[0].text, prompts[1].text);
}

INSTANTIATE_TEST_SUITE_P(FixtureTokenizers, RandomTextPrompts,
                         ::testing::Values("glm4-tiny", "qwen3-tiny", "llama-tiny"));

double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// Gaps between consecutive arrivals.
std::vector<double> gaps(const std::vector<double>& times) {
  std::vector<double> g;
  for (size_t i = 1; i < times.size(); ++i) g.push_back(times[i] - times[i - 1]);
  return g;
}

double coefficient_of_variation(const std::vector<double>& v) {
  const double m = mean(v);
  double var = 0;
  for (double x : v) var += (x - m) * (x - m);
  return std::sqrt(var / static_cast<double>(v.size())) / m;
}

TEST(ArrivalSchedule, PoissonGapsHaveTheRateAndExponentialSpread) {
  const auto times = arrival_schedule(20001, 8.0, 1.0, 42);
  ASSERT_EQ(times.size(), 20001u);
  EXPECT_EQ(times[0], 0.0);
  EXPECT_TRUE(std::is_sorted(times.begin(), times.end()));
  const auto g = gaps(times);
  EXPECT_NEAR(mean(g), 1.0 / 8.0, 0.125 * 0.03);
  EXPECT_NEAR(coefficient_of_variation(g), 1.0, 0.03);  // exponential: std == mean
  // Counts in 1-second windows are Poisson(8): variance close to the mean.
  std::vector<double> counts(static_cast<size_t>(times.back()) + 1, 0.0);
  for (double t : times) counts[static_cast<size_t>(t)] += 1;
  counts.pop_back();  // the last window is partial
  const double m = mean(counts);
  double var = 0;
  for (double c : counts) var += (c - m) * (c - m);
  var /= static_cast<double>(counts.size());
  EXPECT_NEAR(m, 8.0, 0.3);
  EXPECT_NEAR(var / m, 1.0, 0.15);
}

TEST(ArrivalSchedule, BurstinessChangesSpreadNotRate) {
  const auto g = gaps(arrival_schedule(20001, 4.0, 0.25, 7));
  EXPECT_NEAR(mean(g), 0.25, 0.25 * 0.05);
  EXPECT_NEAR(coefficient_of_variation(g), 2.0, 0.1);  // gamma: cv = 1 / sqrt(shape)
}

TEST(ArrivalSchedule, SeededAndInfiniteRate) {
  EXPECT_EQ(arrival_schedule(50, 3.0, 1.0, 9), arrival_schedule(50, 3.0, 1.0, 9));
  EXPECT_NE(arrival_schedule(50, 3.0, 1.0, 9), arrival_schedule(50, 3.0, 1.0, 10));
  const auto all_at_once = arrival_schedule(10, INFINITY, 1.0, 9);
  EXPECT_EQ(all_at_once, std::vector<double>(10, 0.0));
}

TEST(ParseBaseUrl, Forms) {
  ServerAddress a = parse_base_url("http://127.0.0.1:8080");
  EXPECT_FALSE(a.tls);
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, "8080");
  EXPECT_EQ(a.base_path, "");
  a = parse_base_url("https://example.com/prefix/");
  EXPECT_TRUE(a.tls);
  EXPECT_EQ(a.host, "example.com");
  EXPECT_EQ(a.port, "443");
  EXPECT_EQ(a.base_path, "/prefix");
  a = parse_base_url("http://[::1]:9000");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, "9000");
  EXPECT_THROW(parse_base_url("ftp://x"), Error);
  EXPECT_THROW(parse_base_url("http://:80"), Error);
  EXPECT_THROW(parse_base_url("http://host:port"), Error);
}

}  // namespace
}  // namespace autoglm::bench
