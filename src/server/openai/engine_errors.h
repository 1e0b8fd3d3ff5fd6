// How engine outcomes become HTTP errors (documented in README.md):
//   RequestRejected kQueueFull / kDeadlineUnreachable -> 429 with Retry-After (>= 1 s);
//   kShuttingDown -> 503; kTooLong -> 400 code "context_length_exceeded" (the engine's message
//   gives the counts); Error kInvalidArgument -> 400; any other exception -> 500 "internal
//   error" with no detail. A request that ends badly: kTimeout -> 408, kCancelled (not by the
//   client: the engine stopped) -> 503, kError -> 500.
// Thread ownership: none (pure functions). Owner: the "openai" thread.
#pragma once

#include <exception>

#include "autoglm/engine.h"
#include "server/openai/api_error.h"

namespace autoglm::server::openai {

ApiError api_error_from_rejection(const RequestRejected& rejected);
// For an exception escaping engine.submit() or a tokenizer call: RequestRejected, Error, or
// anything else (500). `param` names the field for a 400.
ApiError api_error_from_exception(const std::exception& e, const std::string& param);
// For a request that ended with kTimeout, kCancelled or kError.
ApiError api_error_from_finish(FinishCause cause);

ApiError internal_error();
ApiError not_ready_error();
ApiError model_not_found(const std::string& model);

}  // namespace autoglm::server::openai
