// /health, /ready, /metrics and /openapi.json (see ops_routes.h).
// Thread ownership: I/O threads; everything read here is thread-safe.
#include "server/ops_routes.h"

#include <nlohmann/json.hpp>

#include "server/cache/response_cache.h"
#include "server/circuit_breaker.h"
#include "server/prometheus.h"

namespace autoglm::server {

extern const char kOpenApiJson[];  // openapi_document.cpp, generated from openapi.json

std::string_view openapi_document() {
  return kOpenApiJson;
}

namespace {

HttpResponse json_response(int status, const nlohmann::json& body) {
  HttpResponse response;
  response.status = status;
  response.body = body.dump();
  return response;
}

void handle_health(const OpsContext& context, std::shared_ptr<Responder> responder) {
  auto [healthy, reason] = context.state->health();
  if (healthy) {
    responder->respond(json_response(200, {{"status", "ok"}}));
  } else {
    responder->respond(json_response(503, {{"status", "unhealthy"}, {"reason", reason}}));
  }
}

// Ready means the phase is kReady and the circuit breaker is closed; an open breaker says
// why and when it will probe the engine again.
void handle_ready(const OpsContext& context, std::shared_ptr<Responder> responder) {
  ServerPhase phase = context.state->phase();
  nlohmann::json body = {{"status", std::string(phase_name(phase))}};
  if (phase == ServerPhase::kFailed) body["error"] = context.state->failure();
  if (phase != ServerPhase::kReady) {
    responder->respond(json_response(503, body));
    return;
  }
  context.state->supervise_breaker();
  const CircuitBreaker::Snapshot breaker = context.state->breaker().snapshot();
  if (breaker.state == BreakerState::kClosed) {
    responder->respond(json_response(200, body));
    return;
  }
  body["status"] = "circuit_" + std::string(breaker_state_name(breaker.state));
  body["reason"] = breaker.reason;
  body["retry_after_s"] = static_cast<double>(breaker.retry_after.count()) / 1000.0;
  responder->respond(json_response(503, body));
}

void handle_metrics(const OpsContext& context, std::shared_ptr<Responder> responder) {
  PrometheusInputs inputs;
  inputs.model_name = context.model_name;
  std::shared_ptr<Engine> engine = context.state->engine();
  std::shared_ptr<const EngineMetricsSnapshot> snapshot;
  if (engine) {
    snapshot = engine->metrics();
    inputs.engine = snapshot.get();
  }
  if (context.server != nullptr) {
    inputs.http_requests = context.server->request_counters().snapshot();
    inputs.open_connections = context.server->open_connections();
    inputs.requests_in_flight = context.server->requests_in_flight();
  }
  inputs.memory = read_process_memory();
  if (context.gpus != nullptr) inputs.gpus = context.gpus->sample();
  HttpResponse response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = render_prometheus(inputs);
  response.body +=
      render_breaker_metrics(context.state->breaker().snapshot(), inputs.engine,
                             "model_name=\"" + escape_label_value(context.model_name) + "\"");
  if (const cache::ResponseCache* cache = context.state->response_cache()) {
    response.body +=
        cache->render_metrics("model_name=\"" + escape_label_value(context.model_name) + "\"");
  }
  responder->respond(std::move(response));
}

}  // namespace

void register_ops_routes(Router& router, const OpsContext& context) {
  const OpsContext* ctx = &context;
  router.add(
      "GET", "/health",
      [ctx](const HttpRequest&, std::shared_ptr<Responder> r) { handle_health(*ctx, r); },
      "/health");
  router.add(
      "GET", "/ready",
      [ctx](const HttpRequest&, std::shared_ptr<Responder> r) { handle_ready(*ctx, r); }, "/ready");
  router.add(
      "GET", "/metrics",
      [ctx](const HttpRequest&, std::shared_ptr<Responder> r) { handle_metrics(*ctx, r); },
      "/metrics");
  router.add(
      "GET", "/openapi.json",
      [](const HttpRequest&, std::shared_ptr<Responder> r) {
        HttpResponse response;
        response.body = std::string(openapi_document());
        r->respond(std::move(response));
      },
      "/openapi.json");
}

}  // namespace autoglm::server
