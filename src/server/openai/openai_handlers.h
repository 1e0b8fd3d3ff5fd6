// The OpenAI route handlers, one function per route, each answering through the Responder
// exactly once (errors in the OpenAI shape, see engine_errors.h). register_openai_routes
// (openai_routes.h) binds them to paths; tests call them directly too.
//   POST /v1/chat/completions, POST /v1/completions: generation (streamed or not).
//   GET  /v1/models: the one served model.
//   POST /tokenize: {"prompt"} or {"messages"} -> {"tokens", "count", "max_model_len"}.
//   POST /detokenize: {"tokens"} -> {"prompt"}.
// Thread ownership: called on an I/O thread; generation continues on the engine thread
// (generation_session.h). `model` must outlive every exchange. Owner: the "openai" thread.
#pragma once

#include <memory>

#include "server/http_types.h"
#include "server/openai/served_model.h"

namespace autoglm::server::openai {

void handle_chat_completions(const ServedModel& model, const HttpRequest& request,
                             std::shared_ptr<Responder> responder);
void handle_completions(const ServedModel& model, const HttpRequest& request,
                        std::shared_ptr<Responder> responder);
void handle_models(const ServedModel& model, const HttpRequest& request,
                   std::shared_ptr<Responder> responder);
void handle_tokenize(const ServedModel& model, const HttpRequest& request,
                     std::shared_ptr<Responder> responder);
void handle_detokenize(const ServedModel& model, const HttpRequest& request,
                       std::shared_ptr<Responder> responder);

}  // namespace autoglm::server::openai
