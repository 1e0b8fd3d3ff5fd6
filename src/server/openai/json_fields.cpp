// See json_fields.h. Owner: the "openai" thread.
#include "server/openai/json_fields.h"

#include <cmath>
#include <limits>

#include "server/openai/api_error.h"

namespace autoglm::server::openai {
namespace {

std::string format_number(double v) {
  std::string text = std::to_string(v);
  // to_string gives 6 decimals; trim trailing zeros for readable messages.
  while (text.find('.') != std::string::npos && (text.back() == '0' || text.back() == '.')) {
    const bool dot = text.back() == '.';
    text.pop_back();
    if (dot) break;
  }
  return text;
}

}  // namespace

std::string json_type_name(const Json& value) {
  switch (value.type()) {
    case Json::value_t::string:
      return "string";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::array:
      return "array";
    case Json::value_t::object:
      return "object";
    case Json::value_t::null:
      return "null";
    default:
      return "unsupported value";
  }
}

void wrong_type(const std::string& param, std::string_view expected, const Json& got) {
  throw ApiError::invalid(
      param, "'" + param + "' must be " + std::string(expected) + ", got " + json_type_name(got));
}

int64_t integer_value(const Json& value, const std::string& param, int64_t min, int64_t max) {
  const std::string range =
      "'" + param + "' must be between " + std::to_string(min) + " and " + std::to_string(max);
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    // Non-negative JSON integers parse as unsigned; both bounds still apply.
    if (v > static_cast<uint64_t>(max) || static_cast<int64_t>(v) < min) {
      throw ApiError::invalid(param, range);
    }
    return static_cast<int64_t>(v);
  }
  if (value.is_number_integer()) {
    const int64_t v = value.get<int64_t>();
    if (v < min || v > max) throw ApiError::invalid(param, range);
    return v;
  }
  if (value.is_number_float()) {
    const double v = value.get<double>();
    if (!std::isfinite(v) || std::trunc(v) != v) wrong_type(param, "an integer", value);
    // Compare as doubles: any double beyond int64's range fails here before the cast.
    if (v < static_cast<double>(min) || v > static_cast<double>(max)) {
      throw ApiError::invalid(param, range);
    }
    return static_cast<int64_t>(v);
  }
  wrong_type(param, "an integer", value);
}

double number_value(const Json& value, const std::string& param, double min, double max) {
  if (!value.is_number()) wrong_type(param, "a number", value);
  const double v = value.get<double>();
  if (!std::isfinite(v)) throw ApiError::invalid(param, "'" + param + "' must be finite");
  if (v < min || v > max) {
    throw ApiError::invalid(param, "'" + param + "' must be between " + format_number(min) +
                                       " and " + format_number(max) + ", got " + format_number(v));
  }
  return v;
}

FieldReader::FieldReader(const Json& object, std::string prefix)
    : object_(object), prefix_(std::move(prefix)) {}

const Json* FieldReader::get(std::string_view key) const {
  const auto it = object_.find(std::string(key));
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<bool> FieldReader::boolean(std::string_view key) const {
  const Json* v = get(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) wrong_type(param(key), "a boolean", *v);
  return v->get<bool>();
}

std::optional<double> FieldReader::number(std::string_view key, double min, double max) const {
  const Json* v = get(key);
  if (v == nullptr) return std::nullopt;
  return number_value(*v, param(key), min, max);
}

std::optional<int64_t> FieldReader::integer(std::string_view key, int64_t min, int64_t max) const {
  const Json* v = get(key);
  if (v == nullptr) return std::nullopt;
  return integer_value(*v, param(key), min, max);
}

std::optional<std::string> FieldReader::string(std::string_view key, size_t max_bytes) const {
  const Json* v = get(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) wrong_type(param(key), "a string", *v);
  const std::string& s = v->get_ref<const std::string&>();
  if (s.size() > max_bytes) {
    throw ApiError::invalid(
        param(key), "'" + param(key) + "' is longer than " + std::to_string(max_bytes) + " bytes");
  }
  return s;
}

}  // namespace autoglm::server::openai
