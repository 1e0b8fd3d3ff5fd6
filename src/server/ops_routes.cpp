// /health, /ready, /metrics and /openapi.json (see ops_routes.h).
// Thread ownership: I/O threads; everything read here is thread-safe.
#include "server/ops_routes.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "server/cache/response_cache.h"
#include "server/circuit_breaker.h"
#include "server/models/model_metrics.h"
#include "server/models/model_registry.h"
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

// The preloaded models that are not ready, each with its state (and error): empty when all are.
nlohmann::json preloaded_not_ready(const OpsContext& context) {
  nlohmann::json not_ready = nlohmann::json::array();
  const models::ModelRegistry* registry = context.state->models();
  if (registry == nullptr) return not_ready;
  for (const std::string& name : context.preloaded_models) {
    const models::ModelInfo info = registry->info(name);
    if (info.state == models::ModelState::kReady) continue;
    nlohmann::json entry{{"model", name},
                         {"state", std::string(models::model_state_name(info.state))}};
    if (!info.error.empty()) entry["error"] = info.error;
    not_ready.push_back(std::move(entry));
  }
  return not_ready;
}

// Ready means the phase is kReady, every preloaded model is ready and the circuit breaker is
// closed; otherwise 503 naming the models not ready, or why the breaker is open and when it
// will probe the engine again.
void handle_ready(const OpsContext& context, std::shared_ptr<Responder> responder) {
  ServerPhase phase = context.state->phase();
  nlohmann::json body = {{"status", std::string(phase_name(phase))}};
  if (phase == ServerPhase::kFailed) body["error"] = context.state->failure();
  nlohmann::json not_ready = preloaded_not_ready(context);
  if (!not_ready.empty()) body["models_not_ready"] = std::move(not_ready);
  if (phase != ServerPhase::kReady) {
    responder->respond(json_response(503, body));
    return;
  }
  if (body.contains("models_not_ready")) {
    body["status"] = "models_not_ready";
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

// One text per loaded engine (the first with the server-wide series), merged family by family
// (models/model_metrics.h); then the breaker (fed by every engine), the registry and the caches.
std::string render_engines(const OpsContext& context, PrometheusInputs inputs,
                           const ServerState::NamedEngines& engines) {
  const std::string server_wide = render_prometheus(PrometheusInputs{});
  std::vector<std::string> texts;
  std::vector<std::shared_ptr<const EngineMetricsSnapshot>> snapshots;
  for (size_t i = 0; i < std::max<size_t>(engines.size(), 1); ++i) {
    PrometheusInputs engine_inputs = i == 0 ? inputs : PrometheusInputs{};
    engine_inputs.model_name = context.model_name;
    if (i < engines.size()) {
      snapshots.push_back(engines[i].second->metrics());
      engine_inputs.engine = snapshots.back().get();
      if (!engines[i].first.empty()) engine_inputs.model_name = engines[i].first;
    }
    texts.push_back(render_prometheus(engine_inputs));
  }
  return models::merge_metric_families(texts, models::metric_family_names(server_wide));
}

void handle_metrics(const OpsContext& context, std::shared_ptr<Responder> responder) {
  PrometheusInputs inputs;
  if (context.server != nullptr) {
    inputs.http_requests = context.server->request_counters().snapshot();
    inputs.open_connections = context.server->open_connections();
    inputs.requests_in_flight = context.server->requests_in_flight();
  }
  inputs.memory = read_process_memory();
  if (context.gpus != nullptr) inputs.gpus = context.gpus->sample();
  const ServerState::NamedEngines engines = context.state->engines(context.model_name);
  HttpResponse response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = render_engines(context, std::move(inputs), engines);
  std::vector<std::string> extra;
  // The breaker is one for the server; its engine counters are the sum over the engines.
  std::vector<std::shared_ptr<const EngineMetricsSnapshot>> snapshots;
  EngineMetricsSnapshot failures;
  for (const auto& [name, engine] : engines) {
    snapshots.push_back(engine->metrics());
    failures.failed_steps += snapshots.back()->failed_steps;
    failures.nonfinite_logits_requests += snapshots.back()->nonfinite_logits_requests;
  }
  const std::string label = "model_name=\"" + escape_label_value(context.model_name) + "\"";
  extra.push_back(render_breaker_metrics(context.state->breaker().snapshot(),
                                         engines.empty() ? nullptr : &failures, label));
  if (const models::ModelRegistry* registry = context.state->models()) {
    extra.push_back(models::render_model_metrics(*registry));
    for (const models::ModelInfo& info : registry->list()) {
      const cache::ResponseCache* cache = registry->response_cache(info.name);
      if (cache == nullptr) continue;
      extra.push_back(
          cache->render_metrics("model_name=\"" + escape_label_value(info.name) + "\""));
    }
  } else if (const cache::ResponseCache* cache = context.state->response_cache()) {
    extra.push_back(cache->render_metrics(label));
  }
  response.body += models::merge_metric_families(extra, {});
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
