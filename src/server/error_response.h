// OpenAI-shaped error responses, `{"error":{"message","type","param","code"}}`, shared by every
// route (the HTTP layer's own 404/405/413/431/503 and the OpenAI handlers' 400/404/429).
// Thread ownership: pure functions, any thread.
#pragma once

#include <string>
#include <string_view>

#include "server/http_types.h"

namespace autoglm::server {

// The OpenAI `type` that goes with an HTTP status: "invalid_request_error" for 4xx,
// "server_error" for 5xx, "not_found_error" for 404, "rate_limit_error" for 429, ...
std::string_view error_type_for_status(int status);

// The JSON body. `param` and `code` are JSON null when empty.
std::string error_body(std::string_view message, std::string_view type, std::string_view param = {},
                       std::string_view code = {});

// A whole response with that body; `type` defaults to error_type_for_status(status).
HttpResponse error_response(int status, std::string_view message, std::string_view param = {},
                            std::string_view code = {}, std::string_view type = {});

}  // namespace autoglm::server
