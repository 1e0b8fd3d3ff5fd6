// See model_admin_routes.h. Thread ownership: I/O threads, and the registry's threads for a
// load's answer.
#include "server/models/model_admin_routes.h"

#include <nlohmann/json.hpp>

#include "security/audit_sink.h"
#include "server/json_log.h"
#include "server/models/model_http.h"

namespace autoglm::server {
namespace {

using models::ModelError;
using models::ModelInfo;
using models::ModelRegistry;

HttpResponse json_response(const nlohmann::json& body) {
  HttpResponse response;
  response.body = body.dump();
  return response;
}

// The outcome's audit record (the request itself was recorded before the action ran).
void audit_outcome(ServerState& state, const HttpRequest& request, int http_status,
                   std::string detail) {
  security::AuditSink* sink = state.audit_sink();
  if (sink == nullptr) return;
  security::AuditEvent event;
  event.action = "admin";
  event.user_id = request.principal != nullptr ? request.principal->id : "anonymous";
  event.resource = request.method + " " + request.path;
  event.client_ip = request.client_ip;
  event.status = http_status < 400 ? "ok" : "error";
  event.http_status = http_status;
  event.trace_id = request.trace_id;
  event.detail = std::move(detail);
  if (!sink->record(event)) log_json(LogLevel::kError, "audit record lost", {{"action", "admin"}});
}

void answer(ServerState& state, const HttpRequest& request, Responder& responder,
            HttpResponse response, std::string detail) {
  audit_outcome(state, request, response.status, std::move(detail));
  responder.respond(std::move(response));
}

// Runs a synchronous admin action and answers with the entry or the error.
template <typename Action>
Handler admin_action(ModelRegistry& registry, ServerState& state, std::string verb, Action action) {
  return [&registry, &state, verb, action](const HttpRequest& request,
                                           std::shared_ptr<Responder> responder) {
    try {
      const ModelInfo info = action(registry);
      answer(state, request, *responder, json_response(model_info_json(info)),
             verb + " " + info.name);
    } catch (const ModelError& error) {
      answer(state, request, *responder, models::model_error_response(error, false),
             verb + " refused: " + models::http_of(error).code);
    }
  };
}

// POST .../load: the answer comes when the registry settles the wait (never on this thread's
// time, unless the model is ready already or the request fails at once).
Handler load_handler(ModelRegistry& registry, ServerState& state, std::string name,
                     std::chrono::milliseconds load_wait) {
  return [&registry, &state, name, load_wait](const HttpRequest& request,
                                              std::shared_ptr<Responder> responder) {
    try {
      registry.reset_failed(name);  // a failed model is retried on an admin's request
    } catch (const ModelError& error) {
      answer(state, request, *responder, models::model_error_response(error, false),
             "load refused: " + models::http_of(error).code);
      return;
    }
    auto copy = std::make_shared<HttpRequest>(request);
    registry.acquire_async(
        name, std::chrono::steady_clock::now() + load_wait,
        [&registry, &state, copy, responder, name](models::AcquireResult result) {
          if (result.error) {
            answer(state, *copy, *responder, models::model_error_response(*result.error, false),
                   "load failed: " + models::http_of(*result.error).code);
            return;
          }
          ModelInfo info = registry.info(name);
          info.leases -= 1;  // without this request's own lease, released below
          result.lease.reset();
          answer(state, *copy, *responder, json_response(model_info_json(info)), "load " + name);
        });
  };
}

void handle_list(ModelRegistry& registry, Responder& responder) {
  nlohmann::json data = nlohmann::json::array();
  for (const ModelInfo& info : registry.list()) data.push_back(model_info_json(info));
  responder.respond(json_response({{"object", "list"},
                                   {"data", std::move(data)},
                                   {"memory_budget_bytes", registry.memory_budget()},
                                   {"memory_in_use_bytes", registry.memory_in_use()}}));
}

}  // namespace

nlohmann::json model_info_json(const ModelInfo& info) {
  nlohmann::json entry{
      {"name", info.name},
      {"dir", info.dir},
      {"state", std::string(models::model_state_name(info.state))},
      {"pinned", info.pinned},
      {"bytes", info.bytes},
      {"leases", info.leases},
      {"last_used", info.last_used_unix},
      {"loaded_at", info.loaded_at_unix},
      {"loads", info.loads},
      {"evictions", info.evictions},
      {"error", info.error.empty() ? nlohmann::json() : nlohmann::json(info.error)}};
  return entry;
}

void register_model_admin_routes(Router& router, ModelRegistry& registry, ServerState& state,
                                 std::chrono::milliseconds load_wait) {
  router.add(
      "GET", "/admin/models",
      [&registry](const HttpRequest&, std::shared_ptr<Responder> responder) {
        handle_list(registry, *responder);
      },
      "/admin/models");
  // The router matches exact paths: one set of routes per configured name (names are checked
  // at start-up to be path-safe, models/model_spec.h).
  for (const std::string& name : registry.names()) {
    const std::string base = "/admin/models/" + name;
    router.add("POST", base + "/load", load_handler(registry, state, name, load_wait),
               "/admin/models/{name}/load");
    router.add("POST", base + "/unload",
               admin_action(registry, state, "unload",
                            [name](ModelRegistry& r) { return r.unload(name); }),
               "/admin/models/{name}/unload");
    router.add("POST", base + "/pin",
               admin_action(registry, state, "pin",
                            [name](ModelRegistry& r) { return r.set_pinned(name, true); }),
               "/admin/models/{name}/pin");
    router.add("POST", base + "/unpin",
               admin_action(registry, state, "unpin",
                            [name](ModelRegistry& r) { return r.set_pinned(name, false); }),
               "/admin/models/{name}/unpin");
  }
}

}  // namespace autoglm::server
