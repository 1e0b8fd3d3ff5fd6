// Engine metrics: the engine thread's working copy of the counters, gauges and histograms
// (the types are public, in include/autoglm/metrics.h) and the published snapshot that other
// threads (the HTTP /metrics handler, logging) read.
// Thread ownership: EngineMetrics is written by the engine thread only; `publish` hands a
// finished copy to readers, and `latest` may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "autoglm/metrics.h"  // Histogram, the bucket sets, EngineMetricsSnapshot (public types)
#include "runtime/kv_cache.h"

namespace autoglm {

class EngineMetrics {
 public:
  EngineMetrics();

  // Engine thread only: gauges, counters and observations go into the working copy.
  void set_queue_lengths(int32_t running, int32_t waiting);
  // Block usage and the cache's cumulative prefix counters.
  void set_kv_cache(const KvCacheStats& stats);
  void set_sessions(int32_t active, int32_t pinned_blocks) {
    working_.sessions_active = active;
    working_.session_pinned_blocks = pinned_blocks;
  }
  void add_preemptions(uint64_t count) { working_.preemptions += count; }
  void add_prompt_tokens(uint64_t count) { working_.prompt_tokens += count; }
  void add_generation_tokens(uint64_t count) { working_.generation_tokens += count; }
  void add_finished_requests(uint64_t count) { working_.requests_finished += count; }
  // A failed step (see EngineMetricsSnapshot::failed_steps) and a step that went through.
  void note_step_failure(std::string what);
  void note_step_success() { working_.consecutive_failed_steps = 0; }
  void add_nonfinite_logits_requests(uint64_t count) {
    working_.nonfinite_logits_requests += count;
  }
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
  void observe_host_gap(double seconds) { working_.host_gap_seconds.observe(seconds); }
  void observe_device_idle_gap(double seconds) {
    working_.device_idle_gap_seconds.observe(seconds);
  }
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
