// Engine metrics (see metrics.h): histogram bucketing, vLLM's bucket sets, and the engine's
// working copy published to readers by a pointer swap.
// Thread ownership: EngineMetrics is written by the engine thread; `latest` is for any thread.
#include "runtime/metrics.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "core/error.h"

namespace autoglm {

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1])) {
      fail(ErrorCode::kInvalidArgument, "histogram: bucket bound " + std::to_string(i) + " (" +
                                            std::to_string(bounds_[i]) +
                                            ") is not finite and above the previous one");
    }
  }
  bucket_counts_.assign(bounds_.size() + 1, 0);
}

void Histogram::observe(double value) {
  // lower_bound finds the first bound >= value: a value equal to a bound belongs to it.
  const size_t bucket =
      std::isnan(value)
          ? bounds_.size()
          : static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                bounds_.begin());
  ++bucket_counts_[bucket];
  ++count_;
  sum_ += value;
}

uint64_t Histogram::cumulative_count(size_t bucket) const {
  if (bucket > bounds_.size()) {
    fail(ErrorCode::kInvalidArgument, "histogram: bucket " + std::to_string(bucket) + " of " +
                                          std::to_string(bounds_.size() + 1));
  }
  uint64_t total = 0;
  for (size_t i = 0; i <= bucket; ++i) total += bucket_counts_[i];
  return total;
}

std::vector<uint64_t> Histogram::cumulative_counts() const {
  std::vector<uint64_t> out(bucket_counts_.size());
  uint64_t total = 0;
  for (size_t i = 0; i < bucket_counts_.size(); ++i) out[i] = total += bucket_counts_[i];
  return out;
}

std::vector<double> time_to_first_token_buckets_seconds() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}

std::vector<double> inter_token_latency_buckets_seconds() {
  return {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
          0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
}

std::vector<double> request_latency_buckets_seconds() {
  return {0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}

std::vector<double> iteration_tokens_buckets() {
  return {1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
}

std::vector<double> host_gap_buckets_seconds() {
  return {1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 1.0};
}

std::vector<double> build_1_2_5_buckets(int64_t max_value) {
  std::vector<double> out;
  for (int64_t scale = 1; scale <= max_value; scale *= 10) {
    for (const int64_t mantissa : {1, 2, 5}) {
      if (mantissa * scale > max_value) return out;
      out.push_back(static_cast<double>(mantissa * scale));
    }
  }
  return out;
}

EngineMetrics::EngineMetrics() : published_(std::make_shared<const EngineMetricsSnapshot>()) {}

void EngineMetrics::set_queue_lengths(int32_t running, int32_t waiting) {
  working_.requests_running = running;
  working_.requests_waiting = waiting;
}

void EngineMetrics::set_kv_cache(const KvCacheStats& stats) {
  working_.kv_blocks_used = stats.used_blocks;
  working_.kv_blocks_total = stats.total_blocks;
  working_.prefix_cache_queries = stats.prefix_queries;
  working_.prefix_cache_hits = stats.prefix_hits;
}

void EngineMetrics::observe_time_to_first_token(double seconds) {
  working_.time_to_first_token_seconds.observe(seconds);
}

void EngineMetrics::observe_inter_token_latency(double seconds) {
  working_.inter_token_latency_seconds.observe(seconds);
}

void EngineMetrics::observe_request_prefill_time(double seconds) {
  working_.request_prefill_time_seconds.observe(seconds);
}

void EngineMetrics::observe_request_decode_time(double seconds) {
  working_.request_decode_time_seconds.observe(seconds);
}

void EngineMetrics::observe_step(double seconds, bool had_prefill, int32_t sequences,
                                 int32_t tokens) {
  (had_prefill ? working_.prefill_step_seconds : working_.decode_step_seconds).observe(seconds);
  working_.batch_size.observe(sequences);
  working_.iteration_tokens.observe(tokens);
}

void EngineMetrics::publish() {
  auto copy = std::make_shared<const EngineMetricsSnapshot>(working_);
  std::shared_ptr<const EngineMetricsSnapshot> previous;
  {
    const std::lock_guard lock(published_mutex_);
    previous = std::exchange(published_, std::move(copy));
  }
  // `previous` is destroyed here, outside the lock, if no reader still holds it.
}

std::shared_ptr<const EngineMetricsSnapshot> EngineMetrics::latest() const {
  const std::lock_guard lock(published_mutex_);
  return published_;
}

void EngineMetrics::note_step_failure(std::string what) {
  working_.failed_steps += 1;
  working_.consecutive_failed_steps += 1;
  working_.last_step_failure = std::move(what);
}

}  // namespace autoglm
