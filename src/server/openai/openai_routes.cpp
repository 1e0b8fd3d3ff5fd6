// See openai_routes.h. Owner: the "openai" thread.
#include "server/openai/openai_routes.h"

#include <memory>

#include "server/openai/inference_audit.h"
#include "server/openai/openai_handlers.h"

namespace autoglm::server::openai {
namespace {

using HandlerFn = void (*)(const ServedModel&, const HttpRequest&, std::shared_ptr<Responder>);

Handler route_handler(const ServedModel& model, HandlerFn fn) {
  return [&model, fn](const HttpRequest& request, std::shared_ptr<Responder> responder) {
    fn(model, request, std::move(responder));
  };
}

// Inference routes leave one audit record per request (inference_audit.h).
Handler audited_route_handler(const ServedModel& model, HandlerFn fn) {
  return [&model, fn](const HttpRequest& request, std::shared_ptr<Responder> responder) {
    const InferenceAudit audit{model.audit_sink, model.audit_fail_closed, model.name};
    if (refuse_unaudited(audit, request, responder)) return;
    fn(model, request, audited_responder(audit, request, std::move(responder)));
  };
}

}  // namespace

void register_openai_routes(Router& router, ServedModel& model) {
  complete_served_model(model);
  router.add("POST", "/v1/chat/completions", audited_route_handler(model, handle_chat_completions),
             "/v1/chat/completions");
  router.add("POST", "/v1/completions", audited_route_handler(model, handle_completions),
             "/v1/completions");
  router.add("GET", "/v1/models", route_handler(model, handle_models), "/v1/models");
  router.add("POST", "/tokenize", route_handler(model, handle_tokenize), "/tokenize");
  router.add("POST", "/detokenize", route_handler(model, handle_detokenize), "/detokenize");
}

}  // namespace autoglm::server::openai
