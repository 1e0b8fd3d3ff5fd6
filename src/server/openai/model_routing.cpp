// See model_routing.h. Owner: the models work (a seam in "openai" code).
#include "server/openai/model_routing.h"

#include <memory>
#include <utility>

#include "server/models/model_http.h"
#include "server/openai/api_error.h"
#include "server/openai/engine_errors.h"
#include "server/openai/inference_audit.h"
#include "server/openai/json_fields.h"
#include "server/openai/openai_handlers.h"
#include "server/openai/response_format.h"
#include "server/openai/served_model.h"

namespace autoglm::server::openai {
namespace {

using HandlerFn = void (*)(const ServedModel&, const HttpRequest&, std::shared_ptr<Responder>);

struct Routing {
  Routing(models::ModelRegistry& model_registry, RoutingSettings routing_settings)
      : registry(model_registry), settings(std::move(routing_settings)) {}
  models::ModelRegistry& registry;
  const RoutingSettings settings;
  const int64_t started_unix = unix_now();  // "created" of a model not loaded yet
};

// Forwards to the exchange's Responder and keeps the model's lease and view alive until the
// generation session lets go of it (the end of the exchange).
class LeasedResponder : public ForwardingResponder {
 public:
  LeasedResponder(std::shared_ptr<Responder> inner, std::shared_ptr<models::ModelLease> lease,
                  std::shared_ptr<const ServedModel> view)
      : ForwardingResponder(std::move(inner)), lease_(std::move(lease)), view_(std::move(view)) {}

 private:
  std::shared_ptr<models::ModelLease> lease_;
  std::shared_ptr<const ServedModel> view_;
};

std::shared_ptr<const ServedModel> make_view(const models::ModelLease& lease,
                                             const RoutingSettings& settings) {
  auto view = std::make_shared<ServedModel>();
  view->name = lease.name();
  view->engine = &lease.engine();
  view->chat_template = lease.chat_template();
  view->ready = settings.ready;
  view->limits = settings.limits;
  view->request_timeout = settings.request_timeout;
  view->quota = settings.quota;
  view->response_cache = lease.response_cache();
  view->created = lease.loaded_at_unix();
  view->audit_sink = settings.audit_sink;
  view->audit_fail_closed = settings.audit_fail_closed;
  complete_served_model(*view);
  return view;
}

// The body's "model" (nullopt when absent). A malformed body or a non-string model is 400 here.
std::optional<std::string> requested_model(const std::string& body) {
  const Json doc = parse_request_object(body);
  return FieldReader(doc).string("model", 256);
}

// Runs `fn` once the request's model is leased; every refusal is answered here.
Handler routed(std::shared_ptr<const Routing> routing, HandlerFn fn, bool audited) {
  return [routing, fn, audited](const HttpRequest& request, std::shared_ptr<Responder> responder) {
    std::string name = routing->registry.default_model();
    if (audited) {  // one audit record per inference exchange, refusals included
      const InferenceAudit audit{routing->settings.audit_sink, routing->settings.audit_fail_closed,
                                 name};
      if (refuse_unaudited(audit, request, responder)) return;
      responder = audited_responder(audit, request, std::move(responder));
    }
    try {
      if (auto requested = requested_model(request.body)) name = std::move(*requested);
    } catch (const ApiError& error) {
      responder->respond(error_response(error));
      return;
    }
    if (routing->settings.ready != nullptr && !routing->settings.ready->load()) {
      responder->respond(error_response(not_ready_error()));
      return;
    }
    if (!routing->registry.contains(name)) {
      responder->respond(error_response(model_not_found(name)));
      return;
    }
    responder->annotate("model", name);  // the access log's and the audit record's model
    if (request.principal && !request.principal->may_use_model(name)) {
      responder->respond(error_response(
          ApiError(403, "this credential may not use model '" + name + "'", "permission_error",
                   std::string("model"), std::string("model_not_allowed"))));
      return;
    }
    auto copy = std::make_shared<const HttpRequest>(request);
    routing->registry.acquire_async(
        name, std::chrono::steady_clock::now() + routing->settings.load_wait,
        [routing, fn, copy, responder](models::AcquireResult result) {
          if (result.error) {
            responder->respond(models::model_error_response(*result.error, true));
            return;
          }
          try {
            auto lease = std::make_shared<models::ModelLease>(std::move(*result.lease));
            auto view = make_view(*lease, routing->settings);
            fn(*view, *copy, std::make_shared<LeasedResponder>(responder, lease, view));
          } catch (const std::exception& error) {
            responder->respond(error_response(api_error_from_exception(error, "")));
          }
        });
  };
}

// GET /v1/models: every configured model the caller may use, with its state.
void handle_model_list(const Routing& routing, const HttpRequest& request, Responder& responder) {
  if (routing.settings.ready != nullptr && !routing.settings.ready->load()) {
    responder.respond(error_response(not_ready_error()));
    return;
  }
  const auto engines = routing.registry.loaded_engines();
  Json data = Json::array();
  for (const models::ModelInfo& info : routing.registry.list()) {
    if (request.principal && !request.principal->may_use_model(info.name)) continue;
    Json entry{{"id", info.name},
               {"object", "model"},
               {"created", info.loaded_at_unix > 0 ? info.loaded_at_unix : routing.started_unix},
               {"owned_by", "autoglm"},
               {"root", info.name},
               {"status", std::string(models::model_state_name(info.state))}};
    for (const auto& [name, engine] : engines) {
      if (name != info.name) continue;
      ServedModel sizes;  // the context limit the handlers apply (served_model.h)
      sizes.engine = engine.get();
      complete_served_model(sizes);
      entry["max_model_len"] = sizes.max_model_len;
    }
    data.push_back(std::move(entry));
  }
  HttpResponse response;
  response.body = json_text(Json{{"object", "list"}, {"data", std::move(data)}});
  responder.respond(std::move(response));
}

}  // namespace

void register_openai_routes(Router& router, models::ModelRegistry& registry,
                            RoutingSettings settings) {
  auto routing = std::make_shared<const Routing>(registry, std::move(settings));
  router.add("POST", "/v1/chat/completions", routed(routing, handle_chat_completions, true),
             "/v1/chat/completions");
  router.add("POST", "/v1/completions", routed(routing, handle_completions, true),
             "/v1/completions");
  router.add(
      "GET", "/v1/models",
      [routing](const HttpRequest& request, std::shared_ptr<Responder> responder) {
        handle_model_list(*routing, request, *responder);
      },
      "/v1/models");
  router.add("POST", "/tokenize", routed(routing, handle_tokenize, false), "/tokenize");
  router.add("POST", "/detokenize", routed(routing, handle_detokenize, false), "/detokenize");
}

}  // namespace autoglm::server::openai
