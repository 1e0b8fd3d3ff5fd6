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
#include <filesystem>
#include <future>
#include <thread>

#include "server/http_server.h"
#include "server/json_log.h"
#include "server/ops_routes.h"
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
class SignalWaiter {
 public:
  SignalWaiter() : signals_(io_, SIGINT, SIGTERM) {
    signals_.async_wait([this](const boost::system::error_code& ec, int signal_number) {
      if (!ec) promise_.set_value(signal_number);
    });
    thread_ = std::thread([this] { io_.run(); });
  }
  ~SignalWaiter() {
    io_.stop();
    thread_.join();
  }
  int wait() { return promise_.get_future().get(); }

 private:
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  std::promise<int> promise_;
  std::thread thread_;
};

void warm_up(Engine& engine) {
  engine.generate(probe_request());  // the same one short generation the breaker probes with
}

// Loads the model and makes the server ready; on failure logs it and marks the state failed.
std::shared_ptr<Engine> load_and_warm_up(const ServeConfig& config, ServerState& state,
                                         Router& router,
                                         const ApiRouteInstaller& install_api_routes) {
  try {
    auto started = std::chrono::steady_clock::now();
    auto engine = std::make_shared<Engine>(config.engine);
    state.set_engine(engine);
    if (install_api_routes) install_api_routes(router, config, state);
    state.set_phase(ServerPhase::kWarmingUp);
    if (config.warmup) warm_up(*engine);
    double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    state.set_phase(ServerPhase::kReady);
    log_json(LogLevel::kInfo, "ready", {{"model", config.engine.model_path}, {"load_s", load_s}});
    return engine;
  } catch (const std::exception& error) {
    log_json(LogLevel::kError, "model failed to load",
             {{"model", config.engine.model_path}, {"error", error.what()}});
    state.set_failure(error.what());
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

}  // namespace

int run_server(const ServeConfig& config, const ApiRouteInstaller& install_api_routes) {
  init_json_logging(config.log_level);
  // Signals are caught before any thread starts, so none of them dies of SIGTERM.
  SignalWaiter signals;
  ServerState state;
  CircuitBreakerOptions breaker = config.breaker;
  breaker.probe_timeout = config.watchdog_stall;  // a probe slower than a stall has failed
  state.set_breaker_options(breaker);
  Router router;
  OpsContext ops{&state, nullptr, served_model_name(config)};
  register_ops_routes(router, ops);
  HttpServer server(config.http, router, [&state](const HttpRequest&, std::string_view route) {
    return admission_refusal(state, route);
  });
  ops.server = &server;
  server.start();
  log_json(LogLevel::kInfo, "listening",
           {{"host", config.http.host}, {"port", server.port()}, {"tls", server.tls()}});
  EngineWatchdog watchdog(state, config.watchdog_stall, std::chrono::milliseconds(500));

  std::shared_ptr<Engine> engine = load_and_warm_up(config, state, router, install_api_routes);
  int signal_number = signals.wait();
  log_json(LogLevel::kInfo, "signal received", {{"signal", signal_number}});
  drain(server, state, config.drain_timeout);
  // The I/O threads stop first, so no disconnect callback can reach the engine once it is gone;
  // the engine's last (cancelled) deltas then post into a stopped io_context and are dropped.
  server.stop();
  state.set_engine(nullptr);
  engine.reset();
  log_json(LogLevel::kInfo, "stopped", {});
  return state.failure().empty() ? 0 : 1;
}

}  // namespace autoglm::server
