// How a ModelError travels over HTTP, the same for the OpenAI routes and the admin routes:
//   unknown model 404 model_not_found; load failed 503 model_load_failed; not ready before
//   the deadline 503 model_loading with Retry-After; no room beside the models in use 503
//   model_memory_exhausted with Retry-After; larger than the whole budget 507 model_too_large;
//   an admin action the state forbids 409 model_conflict; shutting down 503.
// Thread ownership: pure functions, any thread.
#pragma once

#include <string>

#include "server/http_types.h"
#include "server/models/model_registry.h"

namespace autoglm::server::models {

struct ModelErrorHttp {
  int status = 503;
  std::string code;
  int retry_after_s = 0;  // 0: no Retry-After header
};

ModelErrorHttp http_of(const ModelError& error);

// The whole response in the OpenAI error shape. `client_safe`: a load failure's message names
// only the model (the reason may name files: admins see it in GET /admin/models and the log).
HttpResponse model_error_response(const ModelError& error, bool client_safe);

}  // namespace autoglm::server::models
