// Typed reads of request-body fields with OpenAI-style 400 errors: a wrong JSON type is named
// ("'n' must be an integer, got string"), numbers must be finite and in range, and JSON null
// counts as absent (clients send null for "not given"). Used by the request mapping.
// Thread ownership: none (pure functions). Owner: the "openai" thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/json_util.h"

namespace autoglm::server::openai {

// "string", "integer", "number", "boolean", "array", "object", "null".
std::string json_type_name(const Json& value);

// Throws ApiError 400 for `param`: "'<param>' must be <expected>, got <type>".
[[noreturn]] void wrong_type(const std::string& param, std::string_view expected, const Json& got);

// Reads from a JSON object; every accessor returns nullopt when the key is absent or null.
class FieldReader {
 public:
  // `prefix` is prepended to parameter names in errors ("messages[0]." ...).
  FieldReader(const Json& object, std::string prefix = "");

  const Json* get(std::string_view key) const;
  std::string param(std::string_view key) const { return prefix_ + std::string(key); }

  std::optional<bool> boolean(std::string_view key) const;
  // A finite number in [min, max] (integers accepted).
  std::optional<double> number(std::string_view key, double min, double max) const;
  // An integer in [min, max]; a float with an exact integer value is accepted.
  std::optional<int64_t> integer(std::string_view key, int64_t min, int64_t max) const;
  // A string of at most max_bytes bytes.
  std::optional<std::string> string(std::string_view key, size_t max_bytes) const;

 private:
  const Json& object_;
  std::string prefix_;
};

// The same checks on a bare value (array elements); `param` names it in errors.
int64_t integer_value(const Json& value, const std::string& param, int64_t min, int64_t max);
double number_value(const Json& value, const std::string& param, double min, double max);

}  // namespace autoglm::server::openai
