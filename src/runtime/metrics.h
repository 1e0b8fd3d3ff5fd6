// Engine metrics: fixed-bucket histograms (Prometheus semantics: a value lands in every bucket
// whose upper bound is >= it, plus sum and count), the bucket sets vLLM uses for its request
// and iteration histograms, the engine's counters and gauges, and the snapshot that other
// threads (the HTTP /metrics handler, logging) read.
// Thread ownership: EngineMetrics is written by the engine thread only; `publish` hands a
// finished copy to readers, and `latest` may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "runtime/kv_cache.h"

namespace autoglm {

class Histogram {
 public:
  // `upper_bounds` must be finite and strictly increasing; an implicit +Inf bucket follows
  // them. Throws Error(kInvalidArgument) otherwise.
  explicit Histogram(std::vector<double> upper_bounds);

  // Counts `value` in the first bucket whose bound is >= value (le semantics). NaN goes to
  // the +Inf bucket only, as Prometheus clients do.
  void observe(double value);

  std::span<const double> upper_bounds() const { return bounds_; }
  // Observations <= upper_bounds()[i]; i == upper_bounds().size() is the +Inf bucket (count()).
  uint64_t cumulative_count(size_t bucket) const;
  std::vector<uint64_t> cumulative_counts() const;  // upper_bounds().size() + 1 entries
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> bucket_counts_;  // per bucket, not cumulative; last is +Inf
  uint64_t count_ = 0;
  double sum_ = 0;
};

// vLLM's bucket sets (vllm/v1/metrics/loggers.py), in their own units.
std::vector<double> time_to_first_token_buckets_seconds();  // 0.001 .. 2560
std::vector<double> inter_token_latency_buckets_seconds();  // 0.01 .. 80
std::vector<double> request_latency_buckets_seconds();      // 0.3 .. 7680: e2e, queue, phases
std::vector<double> iteration_tokens_buckets();             // 1, 8, 16, .. 16384 tokens
// 1, 2, 5, 10, 20, 50, ... up to and including `max_value` (vLLM's build_1_2_5_buckets).
std::vector<double> build_1_2_5_buckets(int64_t max_value);

// Everything the engine reports, as plain copyable data.
struct EngineMetricsSnapshot {
  // Gauges: the state after the last step.
  int32_t requests_running = 0;
  int32_t requests_waiting = 0;
  int32_t kv_blocks_used = 0;
  int32_t kv_blocks_total = 0;
  // Counters since the engine started.
  uint64_t prefix_cache_queries = 0;  // prompt tokens looked up in the prefix cache
  uint64_t prefix_cache_hits = 0;     // of those, tokens found cached
  uint64_t preemptions = 0;
  uint64_t prompt_tokens = 0;      // tokens in
  uint64_t generation_tokens = 0;  // tokens out
  uint64_t requests_finished = 0;
  // Per request (vLLM's request_* histograms and bucket sets), seconds.
  Histogram queue_time_seconds{request_latency_buckets_seconds()};  // arrival -> scheduled
  Histogram time_to_first_token_seconds{time_to_first_token_buckets_seconds()};
  Histogram inter_token_latency_seconds{inter_token_latency_buckets_seconds()};
  Histogram e2e_request_latency_seconds{request_latency_buckets_seconds()};
  Histogram request_prefill_time_seconds{request_latency_buckets_seconds()};  // scheduled -> 1st
  Histogram request_decode_time_seconds{request_latency_buckets_seconds()};   // 1st -> last
  // Per engine step. vLLM has no step-time histogram; the TTFT set spans 1 ms (a tiny model's
  // CPU step) to minutes (a long prefill), so both step times use it.
  Histogram prefill_step_seconds{time_to_first_token_buckets_seconds()};
  Histogram decode_step_seconds{time_to_first_token_buckets_seconds()};
  Histogram iteration_tokens{iteration_tokens_buckets()};  // tokens computed per step
  Histogram batch_size{build_1_2_5_buckets(1000)};         // sequences per step
};

class EngineMetrics {
 public:
  EngineMetrics();

  // Engine thread only: gauges, counters and observations go into the working copy.
  void set_queue_lengths(int32_t running, int32_t waiting);
  // Block usage and the cache's cumulative prefix counters.
  void set_kv_cache(const KvCacheStats& stats);
  void add_preemptions(uint64_t count) { working_.preemptions += count; }
  void add_prompt_tokens(uint64_t count) { working_.prompt_tokens += count; }
  void add_generation_tokens(uint64_t count) { working_.generation_tokens += count; }
  void add_finished_requests(uint64_t count) { working_.requests_finished += count; }
  void observe_queue_time(double seconds) { working_.queue_time_seconds.observe(seconds); }
  void observe_time_to_first_token(double seconds);
  void observe_inter_token_latency(double seconds);
  void observe_e2e_latency(double seconds) {
    working_.e2e_request_latency_seconds.observe(seconds);
  }
  void observe_request_prefill_time(double seconds);
  void observe_request_decode_time(double seconds);
  // One engine step: its duration, whether it ran any prefill, and its batch.
  void observe_step(double seconds, bool had_prefill, int32_t sequences, int32_t tokens);
  const EngineMetricsSnapshot& working() const { return working_; }

  // Engine thread: makes the current state visible to readers (one copy, one pointer swap).
  void publish();
  // Any thread: the last published state; never null (empty before the first publish).
  std::shared_ptr<const EngineMetricsSnapshot> latest() const;

 private:
  EngineMetricsSnapshot working_;
  mutable std::mutex published_mutex_;  // guards only the pointer, never held while copying
  std::shared_ptr<const EngineMetricsSnapshot> published_;
};

}  // namespace autoglm
