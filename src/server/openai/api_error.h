// The OpenAI error shape and the HTTP status it travels with. Request mapping and handlers throw
// ApiError; the route wrapper turns it into {"error":{"message","type","param","code"}}.
// Messages are written for the client: they name the parameter at fault and never include file
// paths, addresses or engine internals (a 500 says only "internal error").
// Thread ownership: none (value type). Owner: the "openai" thread (src/server/openai).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

#include "core/json_util.h"
#include "server/http_types.h"

namespace autoglm::server::openai {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string type, std::optional<std::string> param,
           std::optional<std::string> code)
      : std::runtime_error(std::move(message)),
        status_(status),
        type_(std::move(type)),
        param_(std::move(param)),
        code_(std::move(code)) {}

  // 400 invalid_request_error naming `param` (empty: no single parameter is at fault).
  static ApiError invalid(const std::string& param, std::string message);

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::optional<std::string>& param() const { return param_; }
  const std::optional<std::string>& code() const { return code_; }

  // Extra response headers (Retry-After for 429).
  HttpHeaders headers;

 private:
  int status_;
  std::string type_;
  std::optional<std::string> param_;
  std::optional<std::string> code_;
};

// {"error":{"message","type","param","code"}}, param/code null when absent.
Json error_body(const ApiError& error);
// The whole HTTP response for `error`.
HttpResponse error_response(const ApiError& error);
// The error as one SSE event ("data: {...}\n\n"), for failures after a stream started.
std::string error_event(const ApiError& error);

}  // namespace autoglm::server::openai
