// The circuit breaker's state machine, the engine failure feed and the breaker's Prometheus
// lines (see circuit_breaker.h). Every transition is logged as one JSON line.
// Thread ownership: see circuit_breaker.h.
#include "server/circuit_breaker.h"

#include <algorithm>

#include <fmt/format.h>

#include "server/json_log.h"

namespace autoglm::server {

using std::chrono::milliseconds;

std::string_view breaker_state_name(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

CircuitBreaker::CircuitBreaker(CircuitBreakerOptions options, Clock clock)
    : options_(options), clock_(std::move(clock)), cooldown_(options.cooldown) {}

void CircuitBreaker::record_success() {
  std::lock_guard lock(mutex_);
  if (state_ == BreakerState::kClosed) consecutive_ = 0;
}

void CircuitBreaker::record_failure(std::string_view reason) {
  std::lock_guard lock(mutex_);
  const TimePoint now = clock_();
  if (state_ == BreakerState::kHalfOpen) {
    open_locked(now, reason, doubled_cooldown_locked());
    return;
  }
  if (state_ != BreakerState::kClosed) return;
  if (consecutive_ > 0 && now - last_failure_ > options_.failure_window) consecutive_ = 0;
  ++consecutive_;
  last_failure_ = now;
  if (options_.failure_threshold > 0 && consecutive_ >= options_.failure_threshold) {
    open_locked(now,
                fmt::format("{} failed engine steps in a row, the last: {}", consecutive_, reason),
                options_.cooldown);
  }
}

void CircuitBreaker::trip(std::string_view reason) {
  std::lock_guard lock(mutex_);
  if (state_ == BreakerState::kOpen || options_.failure_threshold <= 0) return;  // off: 0
  open_locked(clock_(), reason,
              state_ == BreakerState::kHalfOpen ? doubled_cooldown_locked() : options_.cooldown);
}

std::optional<CircuitBreaker::Refusal> CircuitBreaker::refusal() const {
  std::lock_guard lock(mutex_);
  if (state_ == BreakerState::kClosed) return std::nullopt;
  return Refusal{reason_, retry_after_locked(clock_())};
}

std::optional<uint64_t> CircuitBreaker::begin_probe() {
  std::lock_guard lock(mutex_);
  const TimePoint now = clock_();
  if (state_ == BreakerState::kHalfOpen && now - probe_started_ > options_.probe_timeout) {
    open_locked(now, "the half-open probe got no answer in time", doubled_cooldown_locked());
    return std::nullopt;
  }
  if (state_ != BreakerState::kOpen || now - opened_at_ < cooldown_) return std::nullopt;
  state_ = BreakerState::kHalfOpen;
  probe_started_ = now;
  ++probe_ticket_;
  log_json(LogLevel::kWarn, "circuit breaker half-open: probing the engine",
           {{"breaker", "half_open"}, {"ticket", probe_ticket_}});
  return probe_ticket_;
}

void CircuitBreaker::end_probe(uint64_t ticket, bool succeeded, std::string_view reason) {
  std::lock_guard lock(mutex_);
  if (state_ != BreakerState::kHalfOpen || ticket != probe_ticket_) return;
  if (succeeded) {
    close_locked();
  } else {
    open_locked(clock_(), fmt::format("the half-open probe failed: {}", reason),
                doubled_cooldown_locked());
  }
}

CircuitBreaker::Snapshot CircuitBreaker::snapshot() const {
  std::lock_guard lock(mutex_);
  Snapshot s;
  s.state = state_;
  s.openings = openings_;
  s.consecutive_failures = consecutive_;
  s.reason = reason_;
  s.cooldown = cooldown_;
  if (state_ != BreakerState::kClosed) s.retry_after = retry_after_locked(clock_());
  return s;
}

void CircuitBreaker::open_locked(TimePoint now, std::string_view reason, milliseconds cooldown) {
  const BreakerState from = state_;
  state_ = BreakerState::kOpen;
  opened_at_ = now;
  cooldown_ = cooldown;
  reason_ = std::string(reason);
  consecutive_ = 0;
  ++openings_;
  ++probe_ticket_;  // a probe still running for the old half-open no longer counts
  log_json(LogLevel::kError, "circuit breaker open: refusing inference",
           {{"breaker", "open"},
            {"from", breaker_state_name(from)},
            {"reason", reason_},
            {"cooldown_s", static_cast<double>(cooldown.count()) / 1000.0}});
}

void CircuitBreaker::close_locked() {
  state_ = BreakerState::kClosed;
  consecutive_ = 0;
  cooldown_ = options_.cooldown;
  ++probe_ticket_;
  log_json(LogLevel::kInfo, "circuit breaker closed: the probe succeeded", {{"breaker", "closed"}});
}

// A failed probe (or a stall while half-open) means the engine is still broken: wait longer.
milliseconds CircuitBreaker::doubled_cooldown_locked() const {
  return std::min(cooldown_ * 2, std::max(options_.max_cooldown, cooldown_));
}

milliseconds CircuitBreaker::retry_after_locked(TimePoint now) const {
  if (state_ == BreakerState::kHalfOpen) return milliseconds(1000);  // the probe's turn
  const auto left = std::chrono::duration_cast<milliseconds>(opened_at_ + cooldown_ - now);
  return std::max(left, milliseconds(0));
}

void EngineFailureFeed::observe(const EngineMetricsSnapshot& metrics, CircuitBreaker& breaker) {
  std::lock_guard lock(mutex_);
  if (metrics.failed_steps < failed_steps_) {  // a different engine (reloaded): start over
    failed_steps_ = 0;
    consecutive_ = 0;
  }
  const auto new_failures = static_cast<int64_t>(metrics.failed_steps - failed_steps_);
  // Without a good step in between, the engine's streak grows by exactly the new failures.
  const bool succeeded_between = metrics.consecutive_failed_steps < consecutive_ + new_failures;
  int64_t failures = new_failures;
  if (succeeded_between) {
    breaker.record_success();
    failures = metrics.consecutive_failed_steps;
  }
  for (int64_t i = 0; i < failures; ++i) breaker.record_failure(metrics.last_step_failure);
  failed_steps_ = metrics.failed_steps;
  consecutive_ = metrics.consecutive_failed_steps;
}

GenerationRequest probe_request() {
  GenerationRequest request;
  request.prompt_ids = {0};
  request.sampling.temperature = 0.0f;
  request.stop.max_tokens = 1;
  request.stop.ignore_eos = true;
  return request;
}

std::string render_breaker_metrics(const CircuitBreaker::Snapshot& breaker,
                                   const EngineMetricsSnapshot* engine, std::string_view labels) {
  std::string out;
  const auto metric = [&](std::string_view name, std::string_view type, std::string_view help,
                          double value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{}{{{}}} {}\n", name, help, name, type, name,
                       labels, value);
  };
  metric("autoglm:circuit_breaker_state", "gauge",
         "Engine circuit breaker: 0 closed, 1 open, 2 half-open.",
         static_cast<double>(static_cast<int>(breaker.state)));
  metric("autoglm:circuit_breaker_openings_total", "counter",
         "Times the engine circuit breaker opened.", static_cast<double>(breaker.openings));
  if (engine != nullptr) {
    metric("autoglm:engine_failed_steps_total", "counter",
           "Engine steps that failed (backend error, non-finite logits).",
           static_cast<double>(engine->failed_steps));
    metric("autoglm:nonfinite_logits_requests_total", "counter",
           "Requests failed because their logits were NaN or Inf.",
           static_cast<double>(engine->nonfinite_logits_requests));
  }
  return out;
}

}  // namespace autoglm::server
