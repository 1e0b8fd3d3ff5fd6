// The operational routes: GET /health (liveness, from the watchdog), GET /ready (readiness by
// phase, the preloaded models and the circuit breaker), GET /metrics (Prometheus text: every
// loaded model's engine, the model registry, HTTP, process, GPU) and GET /openapi.json (the
// embedded API document). Thread ownership: handlers run on I/O threads and only read thread-safe
// state.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/gpu_metrics.h"

#include "server/http_server.h"
#include "server/router.h"
#include "server/server_state.h"

namespace autoglm::server {

struct OpsContext {
  ServerState* state = nullptr;
  const HttpServer* server = nullptr;  // for HTTP counters and gauges; may be set after add
  std::string model_name;              // the engine's label when the state has no registry
  const GpuMonitor* gpus = nullptr;    // null: no GPU metrics
  // With a model registry (state->models()): /ready also needs these models ready.
  std::vector<std::string> preloaded_models;
};

// `context` must outlive the router's use.
void register_ops_routes(Router& router, const OpsContext& context);

// The OpenAPI document of every route (src/server/openapi.json, embedded at build time).
std::string_view openapi_document();

}  // namespace autoglm::server
