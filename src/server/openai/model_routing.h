// The OpenAI routes over several models (server/models/model_registry.h): each request's
// "model" field (the default model when absent; /tokenize and /detokenize too) picks a registry
// entry per request. Unknown names are 404 model_not_found before anything else happens (the
// file system is never touched); a credential not allowed the model is 403; otherwise the
// registry hands over a lease, loading the model first when needed (the request waits at most
// model_load_wait, off the I/O thread), and the existing handler (openai_handlers.h) runs
// against a ServedModel view of that lease. The lease lives until the exchange ends, so the
// model is neither evicted nor destroyed under a running generation.
// GET /v1/models lists every configured model with its state ("status": "ready", "unloaded",
// "loading", ...) besides the OpenAI fields.
// Thread ownership: handlers run on I/O threads; a waiting request continues on the registry's
// loader or clock thread. `registry` must outlive the router's use. Owner: the models work.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>

#include "security/audit_sink.h"
#include "server/models/model_registry.h"
#include "server/openai/request_mapping.h"
#include "server/router.h"

namespace autoglm::server {
class QuotaGate;
}

namespace autoglm::server::openai {

// What every model's view shares (see ServedModel for each field).
struct RoutingSettings {
  MappingLimits limits;
  std::optional<std::chrono::milliseconds> request_timeout;
  const std::atomic<bool>* ready = nullptr;
  QuotaGate* quota = nullptr;
  security::AuditSink* audit_sink = nullptr;
  bool audit_fail_closed = false;
  std::chrono::milliseconds load_wait{120'000};  // a request's wait for its model's load
};

// Adds POST /v1/chat/completions, /v1/completions, /tokenize, /detokenize and GET /v1/models.
void register_openai_routes(Router& router, models::ModelRegistry& registry,
                            RoutingSettings settings);

}  // namespace autoglm::server::openai
