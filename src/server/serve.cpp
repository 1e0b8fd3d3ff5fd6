// The serve lifecycle (see serve.h): HTTP up first so that /health and /ready answer while the
// model loads; then engine, API routes, warm-up, ready; then the drain on a signal.
// Thread ownership: main thread; a small thread waits for signals (asio::signal_set).
#include "server/serve.h"

#include <utility>  // before asio: Boost 1.74 needs std::exchange declared
// clang-format off
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
// clang-format on

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <thread>

#include "core/error.h"
#include "security/audit_log.h"
#include "security/audit_policy.h"
#include "security/signing_gate.h"
#include "server/admin_routes.h"
#include "server/auth_middleware.h"
#include "server/cache/response_cache.h"
#include "server/error_response.h"
#include "server/http_server.h"
#include "server/json_log.h"
#include "server/ops_routes.h"
#include "server/quota_gate.h"
#include "server/router.h"
#include "server/server_state.h"

namespace autoglm::server {

std::string served_model_name(const ServeConfig& config) {
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

// A model load or unload: no client, the model's public name as the resource.
void audit_model_event(const ServerState& state, const ServeConfig& config, std::string action,
                       std::string status, std::string detail) {
  security::AuditSink* sink = state.audit_sink();
  if (sink == nullptr) return;
  security::AuditEvent event;
  event.action = std::move(action);
  event.user_id = "autoglm";
  event.resource = served_model_name(config);
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

// The response cache (docs/OPERATIONS.md "Response cache"), or null when `cache` is off. Its
// Redis connections are made by its own worker, so this never waits for Redis.
std::shared_ptr<cache::ResponseCache> open_cache(const ServeConfig& config) {
  std::shared_ptr<cache::ResponseCache> opened = cache::open_response_cache(
      config.cache, served_model_name(config), config.engine.model_path,
      std::getenv("AUTOGLM_CACHE_KEY"), [](std::string_view message, std::string_view detail) {
        log_json(LogLevel::kWarn, message, {{"detail", std::string(detail)}});
      });
  if (opened) {
    log_json(LogLevel::kInfo, "response cache on",
             {{"l1_bytes", static_cast<int64_t>(config.cache.l1_bytes)},
              {"redis", config.cache.redis},
              {"revision", opened->revision()}});
  }
  return opened;
}

void warm_up(Engine& engine) {
  engine.generate(probe_request());  // the same one short generation the breaker probes with
}

// Model integrity (issue 8): throws, after a log line and an audit record, unless the model
// directory matched its signed manifest. The server then stays not ready with the reason.
void require_intact_model(const security::VerificationReport& report, const ServeConfig& config,
                          ServerState& state) {
  if (report.ok()) {
    log_json(LogLevel::kInfo, "model integrity verified",
             {{"model", config.engine.model_path},
              {"signer", report.signer},
              {"bytes", report.bytes_hashed},
              {"hash_s", report.hash_seconds}});
    return;
  }
  nlohmann::json problems = nlohmann::json::array();
  for (const security::IntegrityProblem& problem : report.problems) {
    problems.push_back({{"kind", security::integrity_problem_name(problem.kind)},
                        {"path", problem.path},
                        {"message", problem.message}});
  }
  log_json(LogLevel::kError, "model integrity check failed: refusing to serve",
           {{"model", config.engine.model_path}, {"problems", problems}});
  if (security::AuditSink* sink = state.audit_sink()) {
    security::AuditEvent event;
    event.action = "integrity_failure";
    event.user_id = "system";
    event.resource = served_model_name(config);
    event.status = "denied";
    event.detail = std::string(security::integrity_problem_name(report.problems.front().kind));
    sink->record(event);
  }
  fail(ErrorCode::kInvalidModel, "model integrity: " + report.summary());
}

// With require_signed_models, starts verifying the model directory: a missing or badly signed
// manifest is refused here, before any loading; the hashing then runs beside the load.
std::future<security::VerificationReport> start_integrity_check(const ServeConfig& config,
                                                                ServerState& state) {
  if (!config.require_signed_models) return {};
  auto keys = security::load_trusted_keys(security::split_key_list(config.trusted_keys));
  auto verification = security::start_model_verification(config.engine.model_path, keys);
  if (verification.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    require_intact_model(verification.get(), config, state);
  }
  return verification;
}

// Loads the model and makes the server ready; on failure logs it and marks the state failed.
std::shared_ptr<Engine> load_and_warm_up(const ServeConfig& config, ServerState& state,
                                         Router& router,
                                         const ApiRouteInstaller& install_api_routes) {
  try {
    auto started = std::chrono::steady_clock::now();
    auto integrity = start_integrity_check(config, state);
    auto engine = std::make_shared<Engine>(config.engine);
    // The loaded model is committed only once its files matched the signed manifest.
    if (integrity.valid()) require_intact_model(integrity.get(), config, state);
    state.set_engine(engine);
    if (install_api_routes) install_api_routes(router, config, state);
    state.set_phase(ServerPhase::kWarmingUp);
    if (config.warmup) warm_up(*engine);
    double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    audit_model_event(state, config, "model_load", "ok", "");
    state.set_phase(ServerPhase::kReady);
    log_json(LogLevel::kInfo, "ready", {{"model", config.engine.model_path}, {"load_s", load_s}});
    return engine;
  } catch (const std::exception& error) {
    log_json(LogLevel::kError, "model failed to load",
             {{"model", config.engine.model_path}, {"error", error.what()}});
    state.set_failure(error.what());
    // The message may name files: the audit record carries the error's category only.
    const auto* typed = dynamic_cast<const Error*>(&error);
    audit_model_event(state, config, "model_load", "error",
                      typed ? std::string(error_code_name(typed->code())) : "load failed");
    return nullptr;
  }
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
  state.set_response_cache(open_cache(config));
  SignalWaiter signals(state.reload_registry());
  CircuitBreakerOptions breaker = config.breaker;
  breaker.probe_timeout = config.watchdog_stall;  // a probe slower than a stall has failed
  state.set_breaker_options(breaker);
  Router router;
  const GpuMonitor gpus;
  OpsContext ops{&state, nullptr, served_model_name(config), gpus.available() ? &gpus : nullptr};
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

  std::shared_ptr<Engine> engine = load_and_warm_up(config, state, router, install_api_routes);
  int signal_number = signals.wait();
  log_json(LogLevel::kInfo, "signal received", {{"signal", signal_number}});
  drain(server, state, config.drain_timeout);
  // The I/O threads stop first, so no disconnect callback can reach the engine once it is gone;
  // the engine's last (cancelled) deltas then post into a stopped io_context and are dropped.
  server.stop();
  state.set_engine(nullptr);
  if (engine != nullptr) audit_model_event(state, config, "model_unload", "ok", "drained");
  engine.reset();
  log_json(LogLevel::kInfo, "stopped", {});
  return state.failure().empty() ? 0 : 1;
}

}  // namespace autoglm::server
