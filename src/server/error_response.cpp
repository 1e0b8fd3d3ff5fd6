// OpenAI-shaped error bodies (nlohmann::json does the string escaping).
// Thread ownership: pure functions, any thread.
#include "server/error_response.h"

#include <nlohmann/json.hpp>

namespace autoglm::server {

std::string_view error_type_for_status(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable_error";
    default:
      break;
  }
  return status >= 500 ? "server_error" : "invalid_request_error";
}

std::string error_body(std::string_view message, std::string_view type, std::string_view param,
                       std::string_view code) {
  auto nullable = [](std::string_view text) {
    return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(std::string(text));
  };
  nlohmann::json body = {{"error",
                          {{"message", std::string(message)},
                           {"type", std::string(type)},
                           {"param", nullable(param)},
                           {"code", nullable(code)}}}};
  // Replace invalid UTF-8 rather than throwing: messages may quote client input.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

HttpResponse error_response(int status, std::string_view message, std::string_view param,
                            std::string_view code, std::string_view type) {
  HttpResponse response;
  response.status = status;
  response.body =
      error_body(message, type.empty() ? error_type_for_status(status) : type, param, code);
  return response;
}

}  // namespace autoglm::server
