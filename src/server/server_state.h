// The serving lifecycle every route consults: the phase (loading -> warming up -> ready ->
// draining, or failed), the engine once loaded, the progress monitor behind /health, and the
// engine circuit breaker behind /ready and inference admission.
// Thread ownership: ServerState is safe from any thread (atomics and a mutex). ProgressMonitor
// is a plain value driven by the watchdog thread; EngineWatchdog owns that thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "autoglm/engine.h"
#include "security/audit_sink.h"
#include "server/circuit_breaker.h"
#include "server/http_types.h"
#include "server/reload.h"

namespace autoglm::server {

class QuotaGate;
namespace cache {
class ResponseCache;
}
namespace models {
class ModelRegistry;
}

enum class ServerPhase { kLoading, kWarmingUp, kReady, kDraining, kFailed };
std::string_view phase_name(ServerPhase phase);  // "loading", "warming_up", ...

// Decides liveness from what the watchdog sees each tick: the engine thread is alive, and
// engine steps keep completing while requests are pending.
class ProgressMonitor {
 public:
  explicit ProgressMonitor(std::chrono::milliseconds stall_limit) : stall_limit_(stall_limit) {}
  void observe(std::chrono::steady_clock::time_point now, bool thread_alive, uint64_t steps,
               int64_t pending);
  bool healthy() const { return reason_.empty(); }
  const std::string& reason() const { return reason_; }  // empty when healthy

 private:
  std::chrono::milliseconds stall_limit_;
  std::optional<uint64_t> last_steps_;
  std::chrono::steady_clock::time_point last_progress_{};
  std::string reason_;
};

class ServerState {
 public:
  ServerPhase phase() const { return phase_.load(); }
  void set_phase(ServerPhase phase) {
    phase_.store(phase);
    ready_.store(phase == ServerPhase::kReady);
  }
  // True exactly while the phase is kReady (for handlers that take an atomic flag).
  const std::atomic<bool>* ready_flag() const { return &ready_; }
  void set_failure(std::string message);  // phase kFailed with a message for /ready
  std::string failure() const;

  // The per-caller rate limits the inference routes apply (quota_gate.h); null: none.
  // Set once at start-up, before the API routes are installed.
  void set_quota_gate(std::shared_ptr<QuotaGate> gate) { quota_gate_ = std::move(gate); }
  QuotaGate* quota_gate() const { return quota_gate_.get(); }

  // The engines to supervise: every model loaded in the registry when one is set (serve with
  // server/models/), else the one set_engine gave (tests), named by `fallback_name`.
  using NamedEngines = std::vector<std::pair<std::string, std::shared_ptr<Engine>>>;
  NamedEngines engines(const std::string& fallback_name = "") const;
  std::shared_ptr<Engine> engine() const;  // the first of engines(); null: none loaded
  void set_engine(std::shared_ptr<Engine> engine);
  // The model registry (not owned); set before the server accepts requests, cleared (null)
  // before the registry is destroyed.
  void set_models(models::ModelRegistry* registry);
  models::ModelRegistry* models() const;

  // The audit log every producer writes to (auth, handlers, admin routes, model loads); null
  // when auditing is off. Set once at start-up, before the server accepts requests.
  void set_audit_sink(std::shared_ptr<security::AuditSink> sink) { audit_sink_ = std::move(sink); }
  security::AuditSink* audit_sink() const { return audit_sink_.get(); }
  std::shared_ptr<security::AuditSink> shared_audit_sink() const { return audit_sink_; }

  // The response cache (server/cache/response_cache.h); null when off. Set once at start-up,
  // before the server accepts requests; /metrics renders its metrics.
  void set_response_cache(std::shared_ptr<cache::ResponseCache> cache) {
    response_cache_ = std::move(cache);
  }
  cache::ResponseCache* response_cache() const { return response_cache_.get(); }

  // The hot-reload registry run_server owns through its ServerState: components register their
  // reloaders at start-up (API keys, JWT keys, rate limits, log level); SIGHUP and
  // POST /admin/reload call reload_all().
  ReloadRegistry& reload_registry() { return reload_registry_; }

  // The watchdog's latest verdict (healthy until it says otherwise).
  void set_health(bool healthy, std::string reason);
  std::pair<bool, std::string> health() const;

  // The engine circuit breaker (circuit_breaker.h). Set its options once at start-up, before
  // the server accepts requests.
  void set_breaker_options(CircuitBreakerOptions options,
                           CircuitBreaker::Clock clock = &std::chrono::steady_clock::now) {
    breaker_ = std::make_shared<CircuitBreaker>(options, std::move(clock));
  }
  CircuitBreaker& breaker() const { return *breaker_; }
  // Feeds the breaker the engine's latest failure counters and, once the cool-down is over,
  // starts the one half-open probe generation (asynchronously; its result closes or re-opens
  // the breaker). The watchdog calls it every tick; /ready and inference admission call it too,
  // so that the breaker acts on the newest counters without waiting for a tick.
  void supervise_breaker();

 private:
  std::atomic<ServerPhase> phase_{ServerPhase::kLoading};
  std::atomic<bool> ready_{false};
  mutable std::mutex mutex_;
  std::shared_ptr<Engine> engine_;
  models::ModelRegistry* models_ = nullptr;
  std::shared_ptr<QuotaGate> quota_gate_;
  std::string failure_;
  bool healthy_ = true;
  std::string health_reason_;
  std::shared_ptr<security::AuditSink> audit_sink_;
  std::shared_ptr<cache::ResponseCache> response_cache_;
  ReloadRegistry reload_registry_;
  std::shared_ptr<CircuitBreaker> breaker_ = std::make_shared<CircuitBreaker>();
  EngineFailureFeed failure_feed_;
};

// A thread that checks every loaded engine every `interval` and records the verdict in the
// state: unhealthy when any engine's thread stopped or stalled with work pending.
class EngineWatchdog {
 public:
  EngineWatchdog(ServerState& state, std::chrono::milliseconds stall_limit,
                 std::chrono::milliseconds interval);
  ~EngineWatchdog();  // stops and joins
  EngineWatchdog(const EngineWatchdog&) = delete;
  EngineWatchdog& operator=(const EngineWatchdog&) = delete;

 private:
  void loop();
  ServerState& state_;
  std::chrono::milliseconds stall_limit_;
  std::map<const Engine*, ProgressMonitor> monitors_;  // per engine, dropped once it unloads
  bool healthy_ = true;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

// The 503 that non-operational routes get while the phase is not kReady, and that inference
// routes (/v1/* but /v1/models) get while the circuit breaker is not closed, with Retry-After
// the cool-down left (nullopt otherwise, and always for /health, /ready, /metrics and
// /openapi.json).
std::optional<HttpResponse> admission_refusal(ServerState& state, std::string_view route_label);

}  // namespace autoglm::server
