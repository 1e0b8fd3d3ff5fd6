// Tests for percentiles (numpy's linear interpolation, as vLLM reports them) and the
// benchmark summary (throughputs over successful requests, failures counted apart).
// Thread ownership: test main thread.
#include <gtest/gtest.h>

#include <vector>

#include "bench_serve/statistics.h"

namespace autoglm::bench {
namespace {

TEST(Percentile, MatchesNumpyLinear) {
  // numpy.percentile([4, 1, 3, 2], q) for q = 0, 50, 90, 99, 100.
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile(v, 90), 3.7);
  EXPECT_DOUBLE_EQ(percentile(v, 99), 3.97);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 4.0);
}

TEST(Percentile, HundredValues) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);
  EXPECT_DOUBLE_EQ(percentile(v, 50), 50.5);
  EXPECT_NEAR(percentile(v, 90), 90.1, 1e-9);
  EXPECT_NEAR(percentile(v, 99), 99.01, 1e-9);
}

TEST(Percentile, EdgeCases) {
  EXPECT_EQ(percentile(std::vector<double>{}, 50), 0.0);
  EXPECT_EQ(percentile(std::vector<double>{7.5}, 99), 7.5);
}

TEST(SummarizeLatency, MillisecondsAndMean) {
  const LatencySummary s = summarize_latency({0.001, 0.002, 0.003, 0.010});
  EXPECT_EQ(s.samples, 4u);
  EXPECT_NEAR(s.mean_ms, 4.0, 1e-9);
  EXPECT_NEAR(s.p50_ms, 2.5, 1e-9);
  EXPECT_NEAR(s.p99_ms, 9.79, 1e-9);
}

RequestRecord ok(int32_t in, int32_t out, double ttft, double e2e, std::vector<double> itl) {
  RequestRecord r;
  r.success = true;
  r.usage_prompt_tokens = in;
  r.usage_completion_tokens = out;
  r.content_chunks = out;
  r.ttft_s = ttft;
  r.e2e_s = e2e;
  r.itl_s = std::move(itl);
  return r;
}

TEST(Summarize, ThroughputAndLatencies) {
  std::vector<RequestRecord> records = {ok(100, 11, 0.2, 1.2, {0.1, 0.1}),
                                        ok(300, 21, 0.4, 2.4, {0.05, 0.15, 0.3})};
  RequestRecord failed;
  failed.error = "HTTP 429: busy";
  failed.planned_input_tokens = 1000;
  records.push_back(failed);
  records.push_back(failed);
  const BenchmarkSummary s = summarize(records, 4.0, 3);
  EXPECT_EQ(s.completed, 2);
  EXPECT_EQ(s.failed, 2);
  EXPECT_EQ(s.total_input_tokens, 400);  // failed requests do not count
  EXPECT_EQ(s.total_output_tokens, 32);
  EXPECT_DOUBLE_EQ(s.request_throughput, 0.5);
  EXPECT_DOUBLE_EQ(s.input_throughput, 100.0);
  EXPECT_DOUBLE_EQ(s.output_throughput, 8.0);
  EXPECT_DOUBLE_EQ(s.total_token_throughput, 108.0);
  EXPECT_EQ(s.peak_concurrency, 3);
  EXPECT_NEAR(s.ttft.mean_ms, 300.0, 1e-9);
  EXPECT_NEAR(s.e2e.mean_ms, 1800.0, 1e-9);
  // TPOT per request: (1.2 - 0.2) / 10 = 0.1 and (2.4 - 0.4) / 20 = 0.1.
  EXPECT_NEAR(s.tpot.mean_ms, 100.0, 1e-9);
  EXPECT_EQ(s.itl.samples, 5u);  // every gap of every request
  EXPECT_NEAR(s.itl.mean_ms, 140.0, 1e-9);
  ASSERT_EQ(s.errors.size(), 1u);  // distinct messages only
  EXPECT_EQ(s.errors[0], "HTTP 429: busy");
}

TEST(Summarize, SingleTokenRequestsHaveNoTpot) {
  const std::vector<RequestRecord> records = {ok(10, 1, 0.2, 0.2, {})};
  const BenchmarkSummary s = summarize(records, 1.0, 1);
  EXPECT_EQ(s.tpot.samples, 0u);
  EXPECT_EQ(s.ttft.samples, 1u);
}

TEST(Summarize, AllFailed) {
  RequestRecord failed;
  failed.error = "connect: refused";
  const std::vector<RequestRecord> records = {failed};
  const BenchmarkSummary s = summarize(records, 0.0, 1);
  EXPECT_EQ(s.completed, 0);
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.request_throughput, 0.0);
}

}  // namespace
}  // namespace autoglm::bench
