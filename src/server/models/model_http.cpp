// See model_http.h. Thread ownership: pure functions, any thread.
#include "server/models/model_http.h"

#include "server/error_response.h"

namespace autoglm::server::models {

ModelErrorHttp http_of(const ModelError& error) {
  switch (error.kind()) {
    case ModelError::Kind::kUnknown:
      return {404, "model_not_found", 0};
    case ModelError::Kind::kLoadFailed:
      return {503, "model_load_failed", 0};
    case ModelError::Kind::kTimeout:
      return {503, "model_loading", 5};
    case ModelError::Kind::kNoRoom:
      return {503, "model_memory_exhausted", 5};
    case ModelError::Kind::kTooLarge:
      return {507, "model_too_large", 0};
    case ModelError::Kind::kConflict:
      return {409, "model_conflict", 0};
    case ModelError::Kind::kShutdown:
      return {503, "shutting_down", 0};
  }
  return {500, "internal_error", 0};
}

HttpResponse model_error_response(const ModelError& error, bool client_safe) {
  const ModelErrorHttp http = http_of(error);
  std::string message = error.what();
  if (client_safe && error.kind() == ModelError::Kind::kLoadFailed) {
    message = "model '" + error.model() + "' failed to load; retry later";
  }
  // Today's shape for an unknown model (server/openai/engine_errors.cpp model_not_found).
  const bool unknown = error.kind() == ModelError::Kind::kUnknown;
  if (unknown) message = "the model '" + error.model() + "' does not exist";
  HttpResponse response = error_response(http.status, message, "model", http.code,
                                         unknown ? "invalid_request_error" : "");
  if (http.retry_after_s > 0) {
    response.headers.emplace_back("retry-after", std::to_string(http.retry_after_s));
  }
  return response;
}

}  // namespace autoglm::server::models
