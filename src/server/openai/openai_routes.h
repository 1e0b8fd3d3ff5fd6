// Binds the OpenAI handlers (openai_handlers.h) to their paths on the server's Router:
//   POST /v1/chat/completions, POST /v1/completions, GET /v1/models, POST /tokenize,
//   POST /detokenize.
// Thread ownership: call once on the main thread before the server starts. `model` must stay
// alive and unmoved while the router is in use (handlers keep a reference to it).
// Owner: the "openai" thread.
#pragma once

#include "server/openai/served_model.h"
#include "server/router.h"

namespace autoglm::server::openai {

// Fills ServedModel's derived fields (complete_served_model) and adds the five routes.
void register_openai_routes(Router& router, ServedModel& model);

}  // namespace autoglm::server::openai
