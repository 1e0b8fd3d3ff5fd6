// See api_error.h. Owner: the "openai" thread.
#include "server/openai/api_error.h"

namespace autoglm::server::openai {

ApiError ApiError::invalid(const std::string& param, std::string message) {
  return ApiError(400, std::move(message), "invalid_request_error",
                  param.empty() ? std::nullopt : std::optional<std::string>(param), std::nullopt);
}

Json error_body(const ApiError& error) {
  Json inner = Json::object();
  inner["message"] = error.what();
  inner["type"] = error.type();
  inner["param"] = error.param() ? Json(*error.param()) : Json(nullptr);
  inner["code"] = error.code() ? Json(*error.code()) : Json(nullptr);
  return Json{{"error", std::move(inner)}};
}

HttpResponse error_response(const ApiError& error) {
  HttpResponse response;
  response.status = error.status();
  response.headers = error.headers;
  // replace: a message quoting a client's bytes must still serialize (they were valid UTF-8
  // when parsed, but truncation elsewhere could split a character).
  response.body = error_body(error).dump(-1, ' ', false, Json::error_handler_t::replace);
  return response;
}

std::string error_event(const ApiError& error) {
  return "data: " + error_body(error).dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
}

}  // namespace autoglm::server::openai
