// The engine circuit breaker: closed (serving) -> open after `failure_threshold` consecutive
// engine failures (failed steps: backend errors, non-finite logits) or at once when the
// watchdog declares a stall -> half-open after the cool-down, when exactly one probe
// generation runs -> closed when it succeeds, open again (cool-down doubled, capped) when it
// fails. While not closed, /ready is 503 and inference is refused fast without touching the
// engine, so a load balancer moves traffic elsewhere instead of feeding a failing engine.
// Also: EngineFailureFeed, which turns the engine's failure counters into breaker events, and
// the breaker's Prometheus lines.
// Thread ownership: CircuitBreaker and EngineFailureFeed are safe from any thread (one mutex
// each, never held while calling out, except to the injected clock).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "autoglm/engine.h"
#include "autoglm/metrics.h"

namespace autoglm::server {

enum class BreakerState { kClosed = 0, kOpen = 1, kHalfOpen = 2 };  // the values /metrics shows
std::string_view breaker_state_name(BreakerState state);            // "closed", "open", "half_open"

struct CircuitBreakerOptions {
  int32_t failure_threshold = 5;  // consecutive failures that open it; 0: the breaker is off
  // Failures further apart than this do not add up (a rare blip every hour is not a streak).
  std::chrono::milliseconds failure_window{60'000};
  std::chrono::milliseconds cooldown{30'000};  // open -> half-open
  // Each failed probe doubles the cool-down, up to this (at most `cooldown` means no doubling).
  std::chrono::milliseconds max_cooldown{300'000};
  std::chrono::milliseconds probe_timeout{30'000};  // a probe unanswered this long has failed
};

class CircuitBreaker {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Clock = std::function<TimePoint()>;

  explicit CircuitBreaker(CircuitBreakerOptions options = {},
                          Clock clock = &std::chrono::steady_clock::now);

  // Engine outcomes while closed. A success ends the streak; the threshold-th failure in a row
  // (each within failure_window of the one before) opens the breaker. Half-open: a failure
  // re-opens it (only the probe's success closes it). Open: ignored.
  void record_success();
  void record_failure(std::string_view reason);
  // Opens now whatever the count (the watchdog's stall verdict); re-opens a half-open breaker.
  // A no-op when the breaker is off (failure_threshold 0).
  void trip(std::string_view reason);

  struct Refusal {
    std::string reason;                     // why it opened
    std::chrono::milliseconds retry_after;  // cool-down left (half-open: the probe's turn)
  };
  // nullopt while closed: inference may reach the engine.
  std::optional<Refusal> refusal() const;

  // Open with the cool-down over: goes half-open and returns a ticket, once, for the caller to
  // run one probe generation and report with end_probe(). Half-open with the probe unanswered
  // past probe_timeout: the probe has failed (re-opens). Otherwise nullopt.
  std::optional<uint64_t> begin_probe();
  // The probe's outcome; a stale ticket (the breaker moved on) is ignored.
  void end_probe(uint64_t ticket, bool succeeded, std::string_view reason);

  struct Snapshot {
    BreakerState state = BreakerState::kClosed;
    uint64_t openings = 0;                     // closed/half-open -> open transitions since start
    int32_t consecutive_failures = 0;          // the current streak (closed)
    std::string reason;                        // why it last opened (empty if never)
    std::chrono::milliseconds cooldown{0};     // the current cool-down
    std::chrono::milliseconds retry_after{0};  // as in refusal(); 0 when closed
  };
  Snapshot snapshot() const;

 private:
  void open_locked(TimePoint now, std::string_view reason, std::chrono::milliseconds cooldown);
  void close_locked();
  std::chrono::milliseconds retry_after_locked(TimePoint now) const;
  std::chrono::milliseconds doubled_cooldown_locked() const;

  const CircuitBreakerOptions options_;
  const Clock clock_;
  mutable std::mutex mutex_;
  BreakerState state_ = BreakerState::kClosed;
  int32_t consecutive_ = 0;
  TimePoint last_failure_{};
  TimePoint opened_at_{};
  std::chrono::milliseconds cooldown_;
  TimePoint probe_started_{};
  uint64_t probe_ticket_ = 0;  // the half-open probe's ticket; bumped on every transition
  uint64_t openings_ = 0;
  std::string reason_;
};

// Feeds a breaker from successive engine metrics snapshots: failed steps since the last look
// become failures, and a successful step in between (the engine's consecutive-failure gauge
// fell) a success first. Polling is exact for the streak the breaker cares about.
class EngineFailureFeed {
 public:
  void observe(const EngineMetricsSnapshot& metrics, CircuitBreaker& breaker);

 private:
  std::mutex mutex_;
  uint64_t failed_steps_ = 0;
  int32_t consecutive_ = 0;
};

// The one short generation the server runs to warm up and to probe a half-open breaker.
GenerationRequest probe_request();

// Prometheus lines: autoglm:circuit_breaker_state (0 closed, 1 open, 2 half-open),
// autoglm:circuit_breaker_openings_total, and the engine's failure counters
// (autoglm:engine_failed_steps_total, autoglm:nonfinite_logits_requests_total) when `engine`
// is set. `labels` is the label set without braces (e.g. model_name="...").
std::string render_breaker_metrics(const CircuitBreaker::Snapshot& breaker,
                                   const EngineMetricsSnapshot* engine, std::string_view labels);

}  // namespace autoglm::server
