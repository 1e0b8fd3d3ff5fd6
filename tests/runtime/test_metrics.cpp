// Engine metrics: histogram bucket placement at the bounds (le semantics), sum and count,
// vLLM's bucket sets, the engine's recording calls, and snapshots that stay independent of
// later updates.
// Thread ownership: test thread, plus one reader thread in the publish test.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "core/error.h"
#include "runtime/metrics.h"

namespace autoglm {
namespace {

TEST(Histogram, AValueOnABoundLandsInThatBucket) {
  Histogram h({1.0, 2.0, 5.0});
  h.observe(1.0);   // == first bound
  h.observe(1.5);   // between
  h.observe(2.0);   // == second bound
  h.observe(5.0);   // == last bound
  h.observe(5.01);  // above every bound: +Inf only
  h.observe(-3.0);  // below every bound: first bucket
  EXPECT_EQ(h.cumulative_counts(), (std::vector<uint64_t>{2, 4, 5, 6}));
  EXPECT_EQ(h.cumulative_count(0), 2u);
  EXPECT_EQ(h.cumulative_count(3), h.count());
  EXPECT_EQ(h.count(), 6u);
  EXPECT_DOUBLE_EQ(h.sum(), 1.0 + 1.5 + 2.0 + 5.0 + 5.01 - 3.0);
  EXPECT_THROW(h.cumulative_count(4), Error);
}

TEST(Histogram, JustAboveABoundGoesToTheNextBucket) {
  Histogram h(time_to_first_token_buckets_seconds());
  h.observe(0.1);
  h.observe(std::nextafter(0.1, 1.0));
  const auto counts = h.cumulative_counts();
  const auto bounds = h.upper_bounds();
  const size_t at =
      static_cast<size_t>(std::find(bounds.begin(), bounds.end(), 0.1) - bounds.begin());
  ASSERT_LT(at, bounds.size());
  EXPECT_EQ(counts[at], 1u);
  EXPECT_EQ(counts[at + 1], 2u);
  EXPECT_EQ(at > 0 ? counts[at - 1] : 0u, 0u);
}

TEST(Histogram, NanCountsOnlyInTheInfBucket) {
  Histogram h({1.0});
  h.observe(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(h.cumulative_counts(), (std::vector<uint64_t>{0, 1}));
  EXPECT_TRUE(std::isnan(h.sum()));
}

TEST(Histogram, RejectsBoundsThatAreNotStrictlyIncreasingAndFinite) {
  EXPECT_THROW(Histogram({1.0, 1.0}), Error);
  EXPECT_THROW(Histogram({2.0, 1.0}), Error);
  EXPECT_THROW(Histogram({1.0, std::numeric_limits<double>::infinity()}), Error);
  EXPECT_NO_THROW(Histogram({}));  // only +Inf: a plain counter with a sum
}

TEST(VllmBuckets, MatchTheirPublishedSets) {
  const auto ttft = time_to_first_token_buckets_seconds();
  ASSERT_EQ(ttft.size(), 22u);
  EXPECT_EQ(ttft.front(), 0.001);
  EXPECT_EQ(ttft[8], 0.25);
  EXPECT_EQ(ttft.back(), 2560.0);
  const auto itl = inter_token_latency_buckets_seconds();
  ASSERT_EQ(itl.size(), 19u);
  EXPECT_EQ(itl.front(), 0.01);
  EXPECT_EQ(itl.back(), 80.0);
  const auto request = request_latency_buckets_seconds();
  ASSERT_EQ(request.size(), 21u);
  EXPECT_EQ(request.front(), 0.3);
  EXPECT_EQ(request[14], 60.0);
  EXPECT_EQ(request.back(), 7680.0);
  EXPECT_EQ(iteration_tokens_buckets(),
            (std::vector<double>{1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384}));
  EXPECT_EQ(build_1_2_5_buckets(100), (std::vector<double>{1, 2, 5, 10, 20, 50, 100}));
  EXPECT_EQ(build_1_2_5_buckets(40), (std::vector<double>{1, 2, 5, 10, 20}));
  EXPECT_TRUE(build_1_2_5_buckets(0).empty());
  // Every set is a valid histogram (strictly increasing and finite).
  for (const auto& set : {ttft, itl, request, iteration_tokens_buckets()}) {
    EXPECT_NO_THROW(Histogram{set});
  }
}

TEST(EngineMetrics, RecordsIntoTheRightSeries) {
  EngineMetrics metrics;
  metrics.set_queue_lengths(3, 7);
  KvCacheStats kv;
  kv.total_blocks = 64;
  kv.used_blocks = 10;
  kv.prefix_queries = 100;
  kv.prefix_hits = 48;
  metrics.set_kv_cache(kv);
  metrics.add_preemptions(2);
  metrics.add_prompt_tokens(100);
  metrics.add_generation_tokens(5);
  metrics.add_finished_requests(1);
  metrics.observe_queue_time(0.3);
  metrics.observe_time_to_first_token(0.02);
  metrics.observe_inter_token_latency(0.05);
  metrics.observe_e2e_latency(1.0);
  metrics.observe_request_prefill_time(0.5);
  metrics.observe_request_decode_time(0.8);
  metrics.observe_step(0.004, /*had_prefill=*/true, 3, 120);
  metrics.observe_step(0.002, /*had_prefill=*/false, 3, 3);

  const EngineMetricsSnapshot& m = metrics.working();
  EXPECT_EQ(m.requests_running, 3);
  EXPECT_EQ(m.requests_waiting, 7);
  EXPECT_EQ(m.kv_blocks_used, 10);
  EXPECT_EQ(m.kv_blocks_total, 64);
  EXPECT_EQ(m.prefix_cache_queries, 100u);
  EXPECT_EQ(m.prefix_cache_hits, 48u);
  EXPECT_EQ(m.preemptions, 2u);
  EXPECT_EQ(m.prompt_tokens, 100u);
  EXPECT_EQ(m.generation_tokens, 5u);
  EXPECT_EQ(m.requests_finished, 1u);
  EXPECT_EQ(m.queue_time_seconds.cumulative_count(0), 1u);           // 0.3 == the first bound
  EXPECT_EQ(m.time_to_first_token_seconds.cumulative_count(3), 1u);  // 0.02 == bound 3
  EXPECT_EQ(m.inter_token_latency_seconds.cumulative_count(2), 1u);  // 0.05 == bound 2
  EXPECT_EQ(m.e2e_request_latency_seconds.cumulative_count(3), 1u);  // 1.0 == bound 3
  EXPECT_EQ(m.request_prefill_time_seconds.count(), 1u);
  EXPECT_EQ(m.request_decode_time_seconds.cumulative_count(2), 1u);  // 0.8 == bound 2
  EXPECT_EQ(m.prefill_step_seconds.count(), 1u);
  EXPECT_EQ(m.decode_step_seconds.count(), 1u);
  EXPECT_DOUBLE_EQ(m.decode_step_seconds.sum(), 0.002);
  EXPECT_EQ(m.batch_size.count(), 2u);
  EXPECT_EQ(m.batch_size.cumulative_count(1), 0u);  // 3 sequences: above 2
  EXPECT_EQ(m.batch_size.cumulative_count(2), 2u);  // ... and <= 5
  EXPECT_DOUBLE_EQ(m.iteration_tokens.sum(), 123.0);
  EXPECT_EQ(m.iteration_tokens.cumulative_count(1), 1u);  // 3 tokens <= 8
  EXPECT_EQ(m.iteration_tokens.cumulative_count(4), 1u);  // 120 > 64 ...
  EXPECT_EQ(m.iteration_tokens.cumulative_count(5), 2u);  // ... and <= 128
}

TEST(EngineMetrics, SnapshotsStayIndependentOfLaterUpdates) {
  EngineMetrics metrics;
  EXPECT_EQ(metrics.latest()->time_to_first_token_seconds.count(), 0u);  // before any publish
  metrics.observe_time_to_first_token(0.5);
  metrics.add_generation_tokens(1);
  EXPECT_EQ(metrics.latest()->generation_tokens, 0u);  // not published yet
  metrics.publish();
  const auto first = metrics.latest();
  EngineMetricsSnapshot copy = *first;

  metrics.observe_time_to_first_token(0.7);
  metrics.add_generation_tokens(4);
  metrics.publish();
  copy.time_to_first_token_seconds.observe(100.0);  // a reader's copy is its own

  EXPECT_EQ(first->time_to_first_token_seconds.count(), 1u);
  EXPECT_EQ(first->generation_tokens, 1u);
  EXPECT_EQ(metrics.latest()->time_to_first_token_seconds.count(), 2u);
  EXPECT_EQ(metrics.latest()->generation_tokens, 5u);
  EXPECT_EQ(metrics.working().time_to_first_token_seconds.count(), 2u);
  EXPECT_EQ(copy.time_to_first_token_seconds.count(), 2u);
  EXPECT_DOUBLE_EQ(copy.time_to_first_token_seconds.sum(), 100.5);
}

TEST(EngineMetrics, ReadersSeeWholeSnapshotsWhileTheEnginePublishes) {
  EngineMetrics metrics;
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    while (!done.load()) {
      const auto snapshot = metrics.latest();
      // The engine updates both series together before each publish.
      if (snapshot->generation_tokens != snapshot->inter_token_latency_seconds.count()) ++torn;
    }
  });
  for (int i = 0; i < 2000; ++i) {
    metrics.add_generation_tokens(1);
    metrics.observe_inter_token_latency(0.01);
    metrics.publish();
  }
  done = true;
  reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(metrics.latest()->generation_tokens, 2000u);
}

}  // namespace
}  // namespace autoglm
