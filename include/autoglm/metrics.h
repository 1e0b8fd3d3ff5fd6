// The public metrics types: fixed-bucket histograms (Prometheus semantics: a value lands in
// every bucket whose upper bound is >= it, plus sum and count), the bucket sets vLLM uses, and
// EngineMetricsSnapshot, the plain copyable state Engine::metrics() returns. The engine thread
// fills them (runtime/metrics.h); readers on any thread get immutable snapshots.
// Thread ownership: value types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

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
std::vector<double> host_gap_buckets_seconds();             // 10 us .. 1 s
// 1, 2, 5, 10, 20, 50, ... up to and including `max_value` (vLLM's build_1_2_5_buckets).
std::vector<double> build_1_2_5_buckets(int64_t max_value);

// Everything the engine reports, as plain copyable data.
struct EngineMetricsSnapshot {
  // Gauges: the state after the last step.
  int32_t requests_running = 0;
  int32_t requests_waiting = 0;
  int32_t kv_blocks_used = 0;
  int32_t kv_blocks_total = 0;
  int32_t sessions_active = 0;        // sessions holding pinned KV or with a turn in flight
  int32_t session_pinned_blocks = 0;  // KV block references the sessions hold
  // Counters since the engine started.
  uint64_t prefix_cache_queries = 0;  // prompt tokens looked up in the prefix cache
  uint64_t prefix_cache_hits = 0;     // of those, tokens found cached
  uint64_t preemptions = 0;
  uint64_t prompt_tokens = 0;      // tokens in
  uint64_t generation_tokens = 0;  // tokens out
  uint64_t requests_finished = 0;
  // Failures, which the server's circuit breaker reads. A step fails when the backend throws,
  // a logits row is not finite (NaN/Inf; only that row's request ends), or the step itself
  // fails unexpectedly.
  uint64_t failed_steps = 0;
  uint64_t nonfinite_logits_requests = 0;  // requests ended because their logits were not finite
  int32_t consecutive_failed_steps = 0;    // gauge: failed steps since the last good one
  std::string last_step_failure;           // why the latest failed step failed
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
  // Host time between the end of one backend step and the call that submits the next while
  // requests are pending: scheduling, sampling bookkeeping, detokenising and streaming. Without
  // overlapped scheduling the device idles through it; with it, the next step is already queued.
  Histogram host_gap_seconds{host_gap_buckets_seconds()};
  // What the device itself sat idle between two consecutive steps, timed on the device (the
  // CUDA backend; empty on the CPU): the gap overlapped scheduling exists to close.
  Histogram device_idle_gap_seconds{host_gap_buckets_seconds()};
};

}  // namespace autoglm
