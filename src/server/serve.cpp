// The serve lifecycle (see serve.h): HTTP up first so that /health and /ready answer while the
// models load; then the model registry (server/models/), API and admin routes, the preloaded
// models' loads (each with its warm-up), ready; then the drain on a signal.
// Thread ownership: main thread; a small thread waits for signals (asio::signal_set).
#include "server/serve.h"

#include <utility>  // before asio: Boost 1.74 needs std::exchange declared
// clang-format off
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
// clang-format on

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <thread>

#include "core/error.h"
#include "security/audit_log.h"
#include "security/audit_policy.h"
#include "server/admin_routes.h"
#include "server/auth_middleware.h"
#include "server/cache/response_cache.h"
#include "server/error_response.h"
#include "server/http_server.h"
#include "server/json_log.h"
#include "server/models/model_admin_routes.h"
#include "server/models/model_loader.h"
#include "server/models/model_registry.h"
#include "server/ops_routes.h"
#include "server/quota_gate.h"
#include "server/router.h"
#include "server/server_state.h"

namespace autoglm::server {

std::string served_model_name(const ServeConfig& config) {
  if (!config.models.empty()) return config.models.front().name;
  if (!config.served_model_name.empty()) return config.served_model_name;
  std::filesystem::path path(config.engine.model_path);
  if (!path.has_filename()) path = path.parent_path();
  return path.filename().string();
}

namespace {

// Waits for SIGTERM or SIGINT on its own thread; `signalled` becomes ready with the signal.
// SIGHUP runs the hot reloaders (ReloadRegistry) on that thread and keeps waiting.
class SignalWaiter {
 public:
  explicit SignalWaiter(ReloadRegistry& reloads)
      : signals_(io_, SIGINT, SIGTERM), hangup_(io_, SIGHUP), reloads_(reloads) {
    signals_.async_wait([this](const boost::system::error_code& ec, int signal_number) {
      if (!ec) promise_.set_value(signal_number);
    });
    wait_for_hangup();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~SignalWaiter() {
    io_.stop();
    thread_.join();
  }
  int wait() { return promise_.get_future().get(); }

 private:
  void wait_for_hangup() {
    hangup_.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      for (const ReloadOutcome& outcome : reloads_.reload_all()) {
        log_json(outcome.ok ? LogLevel::kInfo : LogLevel::kError, "reload on SIGHUP",
                 {{"component", outcome.component}, {"ok", outcome.ok}, {"error", outcome.error}});
      }
      wait_for_hangup();
    });
  }

  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  boost::asio::signal_set hangup_;
  ReloadRegistry& reloads_;
  std::promise<int> promise_;
  std::thread thread_;
};

// ---- audit wiring (docs/SECURITY.md "Audit log") ----

// The audit log when `audit_log` is set, else null. Opened before the server accepts anything.
std::shared_ptr<security::AuditSink> open_audit_log(const ServeConfig& config) {
  if (config.audit.path.empty()) return nullptr;
  auto log = std::make_shared<security::AuditLog>(config.audit);
  log_json(LogLevel::kInfo, "audit log open",
           {{"path", config.audit.path},
            {"last_seq", static_cast<int64_t>(log->last_seq())},
            {"fsync", std::string(security::audit_fsync_name(config.audit.fsync))},
            {"failure_policy",
             std::string(security::audit_failure_policy_name(config.audit_failure_policy))}});
  return log;
}

// A model load, unload or eviction: no client, the model's public name as the resource.
void audit_model_event(const ServerState& state, const std::string& model, std::string action,
                       std::string status, std::string detail) {
  security::AuditSink* sink = state.audit_sink();
  if (sink == nullptr) return;
  security::AuditEvent event;
  event.action = std::move(action);
  event.user_id = "autoglm";
  event.resource = model;
  event.status = std::move(status);
  event.detail = std::move(detail);
  if (!sink->record(event)) {
    log_json(LogLevel::kError, "audit record lost", {{"action", event.action}});
  }
}

// Admin routes fail closed: the action is audited before it runs, and when the record cannot
// be written the answer is 503 and the action does not run. Paths under /admin/ that no route
// serves are left to the router's 404.
std::optional<HttpResponse> admin_audit_refusal(const ServerState& state,
                                                const HttpRequest& request,
                                                std::string_view route) {
  if (!request.path.starts_with("/admin/") || route == "unmatched") return std::nullopt;
  security::AuditEvent event;
  event.action = std::string(security::kActionAdmin);
  event.user_id = request.principal ? request.principal->id : "anonymous";
  event.resource = request.method + " " + request.path;
  event.client_ip = request.client_ip;
  event.status = "ok";
  event.trace_id = request.trace_id;
  event.detail = "recorded before the action runs";
  if (security::audit_admin_action(state.audit_sink(), event)) return std::nullopt;
  log_json(LogLevel::kError, "admin action refused: audit log unavailable",
           {{"path", request.path}, {"trace_id", request.trace_id}});
  return error_response(503, "the audit log is unavailable; admin actions are refused");
}

// ---- end of audit wiring ----

// A model's response cache (docs/OPERATIONS.md "Response cache"), or null when `cache` is off.
// Its Redis connections are made by its own worker, so this never waits for Redis.
std::shared_ptr<cache::ResponseCache> open_cache(const ServeConfig& config,
                                                 const models::ModelSpec& spec) {
  std::shared_ptr<cache::ResponseCache> opened = cache::open_response_cache(
      config.cache, spec.name, spec.dir, std::getenv("AUTOGLM_CACHE_KEY"),
      [](std::string_view message, std::string_view detail) {
        log_json(LogLevel::kWarn, message, {{"detail", std::string(detail)}});
      });
  if (opened) {
    log_json(LogLevel::kInfo, "response cache on",
             {{"model_name", spec.name},
              {"l1_bytes", static_cast<int64_t>(config.cache.l1_bytes)},
              {"redis", config.cache.redis},
              {"revision", opened->revision()}});
  }
  return opened;
}

// On a GPU one engine takes its memory fraction of the device at once (EngineOptions), so that
// is each model's size there; 0 on the CPU backend.
uint64_t gpu_engine_bytes(const ServeConfig& config, const GpuMonitor& gpus) {
  const std::string& device = config.engine.device;
  const bool cuda = device.rfind("cuda", 0) == 0 || (device == "auto" && gpus.available());
  if (!cuda) return 0;
  size_t ordinal = 0;
  if (device.rfind("cuda:", 0) == 0) ordinal = std::strtoul(device.c_str() + 5, nullptr, 10);
  const std::vector<GpuStats> stats = gpus.sample();
  if (ordinal >= stats.size()) return 0;
  const double fraction =
      config.engine.memory_fraction > 0.0 ? config.engine.memory_fraction : 0.90;
  return static_cast<uint64_t>(static_cast<double>(stats[ordinal].memory_total_bytes) * fraction);
}

// model_memory_budget, or when 0: the GPU memory one engine takes (CUDA), else MemAvailable.
uint64_t memory_budget(const ServeConfig& config, uint64_t gpu_bytes) {
  if (config.model_memory_budget > 0) return config.model_memory_budget;
  return gpu_bytes > 0 ? gpu_bytes : models::host_memory_available();
}

// The registry's events: one log line each, and an audit record (the category, never a path).
models::ModelEventSink model_event_sink(ServerState& state) {
  return [&state](const models::ModelEvent& event) {
    const bool ok = event.status == "ok";
    log_json(ok ? LogLevel::kInfo : LogLevel::kError, event.action,
             {{"model_name", event.model},
              {"status", event.status},
              {"detail", event.detail},
              {"load_s", event.seconds}});
    audit_model_event(state, event.model, event.action, event.status, event.category);
  };
}

std::unique_ptr<models::ModelRegistry> make_registry(const ServeConfig& config, ServerState& state,
                                                     const GpuMonitor& gpus) {
  const uint64_t gpu_bytes = gpu_engine_bytes(config, gpus);
  const std::vector<std::string> pinned =
      models::resolve_model_list("pinned_models", config.pinned_models, config.models);
  std::vector<models::ModelConfigEntry> entries;
  for (const models::ModelSpec& spec : config.models) {
    models::ModelConfigEntry entry;
    entry.spec = spec;
    entry.pinned = std::find(pinned.begin(), pinned.end(), spec.name) != pinned.end();
    entry.estimated_bytes = models::estimate_model_bytes(spec.dir, config.engine, gpu_bytes);
    entry.response_cache = open_cache(config, spec);
    entries.push_back(std::move(entry));
  }
  models::LoaderSettings loader{config.engine, config.warmup, config.require_signed_models,
                                config.trusted_keys, state.shared_audit_sink()};
  const uint64_t budget = memory_budget(config, gpu_bytes);
  log_json(LogLevel::kInfo, "models",
           {{"models", static_cast<int64_t>(entries.size())},
            {"memory_budget_bytes", static_cast<int64_t>(budget)}});
  return std::make_unique<models::ModelRegistry>(std::move(entries), budget,
                                                 models::make_engine_loader(std::move(loader)),
                                                 model_event_sink(state));
}

// Loads the preloaded models (the registry's loader thread, one at a time) and makes the server
// ready, or failed naming the models that did not load.
void preload_models(const ServeConfig& config, models::ModelRegistry& registry,
                    ServerState& state) {
  const auto started = std::chrono::steady_clock::now();
  const std::vector<std::string> names =
      models::resolve_model_list("preload_models", config.preload_models, config.models);
  registry.start_loads(names);
  std::string failures;
  // A model that cannot fit even alone is a configuration error: fail at start-up, clearly.
  for (const models::ModelInfo& info : registry.list()) {
    if (registry.memory_budget() == 0 || info.bytes <= registry.memory_budget()) continue;
    if (std::find(names.begin(), names.end(), info.name) != names.end()) continue;  // below
    failures += (failures.empty() ? "" : "; ") + std::string("model '") + info.name + "' needs " +
                std::to_string(info.bytes) + " bytes, more than model_memory_budget (" +
                std::to_string(registry.memory_budget()) + " bytes)";
  }
  for (const std::string& name : names) {
    try {
      registry.load(name, std::chrono::steady_clock::now() + std::chrono::hours(24 * 365));
    } catch (const models::ModelError& error) {
      // One model: its error as it was (tests and operators read it); several: named.
      failures += (failures.empty() ? "" : "; ") +
                  (config.models.size() == 1 ? registry.info(name).error : error.what());
    }
  }
  if (!failures.empty()) {
    state.set_failure(failures);
    return;
  }
  state.set_phase(ServerPhase::kReady);
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  log_json(LogLevel::kInfo, "ready",
           {{"model", config.engine.model_path},
            {"preloaded", static_cast<int64_t>(names.size())},
            {"load_s", load_s}});
}

void drain(HttpServer& server, ServerState& state, std::chrono::milliseconds timeout) {
  state.set_phase(ServerPhase::kDraining);
  server.begin_drain();
  log_json(LogLevel::kInfo, "draining",
           {{"in_flight", server.requests_in_flight()},
            {"timeout_s", static_cast<double>(timeout.count()) / 1000.0}});
  if (!server.wait_until_idle(timeout)) {
    log_json(LogLevel::kWarn, "drain timeout: ending requests still in flight",
             {{"in_flight", server.requests_in_flight()}});
    server.abort_in_flight();
    server.wait_until_idle(std::chrono::seconds(2));
  }
}

// The rate-limit gate (always installed, so a reload can turn limits on), the reloaders of the
// serve settings, and POST /admin/reload.
void install_rate_limits_and_reload(const ServeConfig& config, ServerState& state, Router& router) {
  auto gate = std::make_shared<QuotaGate>(
      security::RateLimits{config.rate_limit_rpm, config.rate_limit_tpm},
      [&state] { return state.audit_sink(); });
  register_config_reloaders(state.reload_registry(), gate.get(), config.origin);
  state.set_quota_gate(std::move(gate));
  register_admin_routes(router, state);
}

}  // namespace

int run_server(const ServeConfig& config, const ApiRouteInstaller& install_api_routes) {
  init_json_logging(config.log_level);
  // Signals are caught before any thread starts, so none of them dies of SIGTERM.
  ServerState state;
  state.set_audit_sink(open_audit_log(config));
  SignalWaiter signals(state.reload_registry());
  CircuitBreakerOptions breaker = config.breaker;
  breaker.probe_timeout = config.watchdog_stall;  // a probe slower than a stall has failed
  state.set_breaker_options(breaker);
  Router router;
  const GpuMonitor gpus;
  OpsContext ops{
      &state, nullptr, served_model_name(config), gpus.available() ? &gpus : nullptr,
      models::resolve_model_list("preload_models", config.preload_models, config.models)};
  register_ops_routes(router, ops);
  HttpServerOptions http_options = config.http;
  // Authentication (auth_middleware.h): null when off; its reloaders are in the registry.
  if (auto authenticator = setup_authentication(config.auth, config.http.host, state)) {
    http_options.authenticate = [authenticator](HttpRequest& request) {
      return authenticator->authenticate(request);
    };
  }
  HttpServer server(
      http_options, router,
      [&state](const HttpRequest& request, std::string_view route) -> std::optional<HttpResponse> {
        if (auto refusal = admission_refusal(state, route)) return refusal;
        return admin_audit_refusal(state, request, route);
      });
  ops.server = &server;
  server.start();
  log_json(LogLevel::kInfo, "listening",
           {{"host", config.http.host}, {"port", server.port()}, {"tls", server.tls()}});
  EngineWatchdog watchdog(state, config.watchdog_stall, std::chrono::milliseconds(500));
  install_rate_limits_and_reload(config, state, router);  // before the API routes

  std::unique_ptr<models::ModelRegistry> registry = make_registry(config, state, gpus);
  state.set_models(registry.get());
  register_model_admin_routes(router, *registry, state, config.model_load_wait);
  // The API routes answer 503 until the phase is ready (admission_refusal).
  if (install_api_routes) install_api_routes(router, config, state);
  preload_models(config, *registry, state);
  int signal_number = signals.wait();
  log_json(LogLevel::kInfo, "signal received", {{"signal", signal_number}});
  drain(server, state, config.drain_timeout);
  // The I/O threads stop first, so no disconnect callback can reach an engine once it is gone;
  // the engines' last (cancelled) deltas then post into a stopped io_context and are dropped.
  server.stop();
  registry->unload_all("drained");
  state.set_models(nullptr);
  registry.reset();
  log_json(LogLevel::kInfo, "stopped", {});
  return state.failure().empty() ? 0 : 1;
}

}  // namespace autoglm::server
