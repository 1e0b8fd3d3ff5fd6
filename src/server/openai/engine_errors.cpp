// See engine_errors.h. Owner: the "openai" thread.
#include "server/openai/engine_errors.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace autoglm::server::openai {

ApiError internal_error() {
  return ApiError(500, "internal error", "server_error", std::nullopt, std::nullopt);
}

ApiError not_ready_error() {
  return ApiError(503, "the server is not ready (loading, warming up or shutting down)",
                  "server_error", std::nullopt, "service_unavailable");
}

ApiError model_not_found(const std::string& model) {
  return ApiError(404, "the model '" + model + "' does not exist", "invalid_request_error", "model",
                  "model_not_found");
}

ApiError api_error_from_rejection(const RequestRejected& rejected) {
  using Reason = RequestRejected::Reason;
  switch (rejected.reason()) {
    case Reason::kQueueFull:
    case Reason::kDeadlineUnreachable: {
      ApiError error(429, std::string("the server is busy: ") + rejected.what(), "rate_limit_error",
                     std::nullopt, "queue_full");
      const double seconds = std::max(1.0, std::ceil(rejected.retry_after_s()));
      error.headers.emplace_back("Retry-After",
                                 std::to_string(static_cast<int64_t>(std::min(seconds, 3600.0))));
      return error;
    }
    case Reason::kShuttingDown:
      return ApiError(503, "the server is shutting down", "server_error", std::nullopt,
                      "service_unavailable");
    case Reason::kTooLong:
      return ApiError(400, rejected.what(), "invalid_request_error", "max_tokens",
                      "context_length_exceeded");
  }
  return internal_error();
}

ApiError api_error_from_exception(const std::exception& e, const std::string& param) {
  if (const auto* rejected = dynamic_cast<const RequestRejected*>(&e)) {
    return api_error_from_rejection(*rejected);
  }
  if (const auto* api = dynamic_cast<const ApiError*>(&e)) return *api;
  if (const auto* error = dynamic_cast<const Error*>(&e)) {
    // Invalid parameters and text the tokenizer refuses are the client's; anything else
    // (model, internal) is ours and must not leak detail.
    if (error->code() == ErrorCode::kInvalidArgument || error->code() == ErrorCode::kTokenizer) {
      return ApiError::invalid(param, error->what());
    }
  }
  return internal_error();
}

ApiError api_error_from_finish(FinishCause cause) {
  switch (cause) {
    case FinishCause::kTimeout:
      return ApiError(408, "the request timed out", "timeout_error", std::nullopt,
                      "request_timeout");
    case FinishCause::kCancelled:
      return ApiError(503, "the request was cancelled: the server is shutting down", "server_error",
                      std::nullopt, "service_unavailable");
    default:
      return internal_error();
  }
}

}  // namespace autoglm::server::openai
