// Lifecycle state, liveness decisions and the watchdog thread (see server_state.h).
// Thread ownership: see server_state.h.
#include "server/server_state.h"

#include <cmath>

#include <fmt/format.h>

#include "server/error_response.h"
#include "server/json_log.h"
#include "server/models/model_registry.h"

namespace autoglm::server {

std::string_view phase_name(ServerPhase phase) {
  switch (phase) {
    case ServerPhase::kLoading:
      return "loading";
    case ServerPhase::kWarmingUp:
      return "warming_up";
    case ServerPhase::kReady:
      return "ready";
    case ServerPhase::kDraining:
      return "draining";
    case ServerPhase::kFailed:
      return "failed";
  }
  return "unknown";
}

void ProgressMonitor::observe(std::chrono::steady_clock::time_point now, bool thread_alive,
                              uint64_t steps, int64_t pending) {
  if (!thread_alive) {
    reason_ = "the engine thread has stopped";
    return;
  }
  // Progress: a step finished since the last look, or nothing is waiting for one.
  if (!last_steps_ || steps != *last_steps_ || pending <= 0) {
    last_steps_ = steps;
    last_progress_ = now;
    reason_.clear();
    return;
  }
  auto stalled = std::chrono::duration_cast<std::chrono::milliseconds>(now - last_progress_);
  if (stalled > stall_limit_) {
    reason_ = fmt::format("no engine step for {:.1f} s with {} requests pending",
                          static_cast<double>(stalled.count()) / 1000.0, pending);
  }
}

void ServerState::set_failure(std::string message) {
  std::lock_guard lock(mutex_);
  failure_ = std::move(message);
  set_phase(ServerPhase::kFailed);
}

std::string ServerState::failure() const {
  std::lock_guard lock(mutex_);
  return failure_;
}

ServerState::NamedEngines ServerState::engines(const std::string& fallback_name) const {
  // Under the lock: set_models(nullptr) then waits for a watchdog tick that read the pointer.
  std::lock_guard lock(mutex_);
  if (models_ != nullptr) return models_->loaded_engines();
  if (engine_ == nullptr) return {};
  return {{fallback_name, engine_}};
}

std::shared_ptr<Engine> ServerState::engine() const {
  NamedEngines all = engines();
  return all.empty() ? nullptr : all.front().second;
}

void ServerState::set_models(models::ModelRegistry* registry) {
  std::lock_guard lock(mutex_);
  models_ = registry;
}

models::ModelRegistry* ServerState::models() const {
  std::lock_guard lock(mutex_);
  return models_;
}

void ServerState::set_engine(std::shared_ptr<Engine> engine) {
  std::lock_guard lock(mutex_);
  engine_ = std::move(engine);
}

void ServerState::set_health(bool healthy, std::string reason) {
  std::lock_guard lock(mutex_);
  healthy_ = healthy;
  health_reason_ = std::move(reason);
}

std::pair<bool, std::string> ServerState::health() const {
  std::lock_guard lock(mutex_);
  return {healthy_, health_reason_};
}

namespace {

// What the probe's last delta says: nullopt when it generated its token, else why not.
std::optional<std::string> probe_failure(const StreamDelta& last) {
  if (*last.finish == FinishCause::kStop || *last.finish == FinishCause::kLength) {
    return std::nullopt;
  }
  if (!last.error.empty()) return last.error;
  return "it ended with " + std::string(finish_cause_name(*last.finish));
}

// The failure counters of every loaded engine as one: the breaker guards the server as a whole.
// A sum that drops (an engine unloaded) makes the feed start over, as after a reload.
EngineMetricsSnapshot combined_failures(const ServerState::NamedEngines& engines) {
  EngineMetricsSnapshot combined;
  for (const auto& [name, engine] : engines) {
    const std::shared_ptr<const EngineMetricsSnapshot> metrics = engine->metrics();
    combined.failed_steps += metrics->failed_steps;
    combined.nonfinite_logits_requests += metrics->nonfinite_logits_requests;
    combined.consecutive_failed_steps += metrics->consecutive_failed_steps;
    if (!metrics->last_step_failure.empty())
      combined.last_step_failure = metrics->last_step_failure;
  }
  return combined;
}

}  // namespace

void ServerState::supervise_breaker() {
  const NamedEngines all = engines();
  if (all.empty()) return;
  failure_feed_.observe(combined_failures(all), *breaker_);
  // The half-open probe runs on the first loaded engine.
  const std::shared_ptr<Engine>& engine = all.front().second;
  const std::optional<uint64_t> ticket = breaker_->begin_probe();
  if (!ticket) return;
  // The probe reports on the engine thread; the weak pointer keeps a late answer harmless.
  std::weak_ptr<CircuitBreaker> weak = breaker_;
  const uint64_t id = *ticket;
  try {
    engine->submit(probe_request(), [weak, id](StreamDelta delta) {
      if (!delta.finish) return;
      const std::optional<std::string> failure = probe_failure(delta);
      if (std::shared_ptr<CircuitBreaker> breaker = weak.lock()) {
        breaker->end_probe(id, !failure, failure.value_or(""));
      }
    });
  } catch (const std::exception& e) {
    breaker_->end_probe(id, false, e.what());
  }
}

EngineWatchdog::EngineWatchdog(ServerState& state, std::chrono::milliseconds stall_limit,
                               std::chrono::milliseconds interval)
    : state_(state), stall_limit_(stall_limit), interval_(interval), thread_([this] { loop(); }) {}

EngineWatchdog::~EngineWatchdog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void EngineWatchdog::loop() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval_, [this] { return stop_; })) {
    const ServerState::NamedEngines engines = state_.engines();
    if (engines.empty()) continue;  // loading: the process is alive, no engine yet
    std::map<const Engine*, ProgressMonitor> monitors;
    std::string reason;
    const auto now = std::chrono::steady_clock::now();
    for (const auto& [name, engine] : engines) {
      auto previous = monitors_.find(engine.get());
      ProgressMonitor monitor =
          previous != monitors_.end() ? previous->second : ProgressMonitor(stall_limit_);
      auto metrics = engine->metrics();
      uint64_t steps = metrics->prefill_step_seconds.count() + metrics->decode_step_seconds.count();
      int64_t pending = int64_t{metrics->requests_running} + metrics->requests_waiting;
      monitor.observe(now, engine->engine_thread_alive(), steps, pending);
      if (!monitor.healthy() && reason.empty()) {
        reason = name.empty() ? monitor.reason() : "model '" + name + "': " + monitor.reason();
      }
      monitors.emplace(engine.get(), std::move(monitor));
    }
    monitors_ = std::move(monitors);  // engines unloaded since the last tick are forgotten
    if (healthy_ && !reason.empty()) {
      log_json(LogLevel::kError, "engine unhealthy", {{"reason", reason}});
      state_.breaker().trip("watchdog: " + reason);
    }
    healthy_ = reason.empty();
    state_.set_health(healthy_, reason);
    state_.supervise_breaker();
  }
}

namespace {

bool is_inference_route(std::string_view route_label) {
  return route_label.starts_with("/v1/") && route_label != "/v1/models";
}

// Inference is refused without touching the engine; the reason (internal error text) stays in
// /ready and the log, the client learns only when to come back.
std::optional<HttpResponse> breaker_refusal(ServerState& state) {
  state.supervise_breaker();
  const std::optional<CircuitBreaker::Refusal> refusal = state.breaker().refusal();
  if (!refusal) return std::nullopt;
  const auto seconds =
      static_cast<int64_t>(std::ceil(static_cast<double>(refusal->retry_after.count()) / 1000.0));
  HttpResponse response = error_response(
      503, "the engine is unavailable after repeated failures (circuit breaker open); retry later");
  response.headers.emplace_back("retry-after", std::to_string(std::max<int64_t>(seconds, 1)));
  return response;
}

}  // namespace

std::optional<HttpResponse> admission_refusal(ServerState& state, std::string_view route_label) {
  if (route_label == "/health" || route_label == "/ready" || route_label == "/metrics" ||
      route_label == "/openapi.json") {
    return std::nullopt;
  }
  ServerPhase phase = state.phase();
  if (phase == ServerPhase::kReady) {
    return is_inference_route(route_label) ? breaker_refusal(state) : std::nullopt;
  }
  // Until ready, an unknown path gets 503 too: the API routes are added once the model loads.
  std::string message = phase == ServerPhase::kDraining ? "the server is shutting down"
                        : phase == ServerPhase::kFailed ? "the model failed to load"
                                                        : "the model is still loading";
  HttpResponse response = error_response(503, message);
  if (phase != ServerPhase::kDraining) response.headers.emplace_back("retry-after", "5");
  return response;
}

}  // namespace autoglm::server
